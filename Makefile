# kubectl cni-migrate
#
#   make build        build bin/kubectl-cni_migrate
#   make install      install the plugin and its completion helper into GOBIN
#   make test         every test: lint, unit tests, doc checks, end-to-end tests
#   make demo         migrate a local cluster end to end: real nodes where the
#                     machine allows it (demo-real), else simulated (demo-sim)
#   make lint         gofmt, go mod tidy, go vet and golangci-lint (pinned)
#   make dist         release archives for krew (see hack/release.mk)
#   make image        the plugin's image for policy-bridge --deploy (see hack/release.mk)
#   make docs         regenerate docs/reference (and check the README's flag tables)
#
# Tools are pinned here or in hack/e2e; nothing needs to be installed by hand
# besides Go (and kubectl, which the e2e tests and the demo drive).

SHELL      := bash
.SHELLFLAGS := -eu -o pipefail -c

MODULE     := github.com/cni-migrate/kubectl-cni-migrate
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE       ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS    := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
GO         ?= go
GOBIN      ?= $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)
BIN        := bin/kubectl-cni_migrate
COMPLETION := cmd/kubectl-cni_migrate/kubectl_complete-cni_migrate
KUBECTL    ?= kubectl

export GOWORK := off
# One set of build flags for every build, test, vet and lint here and for
# the tools hack/ builds (which pass the same): cgo off and paths trimmed.
# The Go build cache then compiles once the packages they share (Kubernetes'
# client libraries of one version), and its entries do not depend on the
# clone's path (a fresh clone's vet and lint reuse them).
export CGO_ENABLED := 0
export GOFLAGS := $(strip -trimpath $(filter-out -trimpath,$(GOFLAGS)))

.PHONY: all build install test unit unit-go unit-fuzz fuzz lint check-docs docs demo clean

all: build

include hack/e2e/e2e.mk
include hack/release.mk
include hack/datapath/datapath.mk

build: $(BIN)

# Always relinked (go build is incremental) so the stamped version is right.
.PHONY: $(BIN)
$(BIN):
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kubectl-cni_migrate

install: build
	install -d $(GOBIN)
	install -m 0755 $(BIN) $(GOBIN)/kubectl-cni_migrate
	install -m 0755 $(COMPLETION) $(GOBIN)/kubectl_complete-cni_migrate
	@echo "installed kubectl-cni_migrate and kubectl_complete-cni_migrate into $(GOBIN)"

# The Go modules of the repository (each linted and checked tidy).
MODULES       := . test/e2e test/krew hack/lint hack/image
GOLANGCI_LINT := $(E2E_CACHE)/bin/golangci-lint-$(shell sed -n 's/^require github.com\/golangci\/golangci-lint\/v2 //p' hack/lint/go.mod)

lint: $(GOLANGCI_LINT)
	@out=$$(gofmt -l cmd plugin test hack); if [ -n "$$out" ]; then echo "not gofmt-formatted: $$out"; exit 1; fi
	@for m in $(MODULES); do \
		if ! d=$$(cd $$m && $(GO) mod tidy -diff 2>&1); then echo "$$m: go.mod/go.sum are not tidy (run go mod tidy there):"; echo "$$d"; exit 1; fi; \
	done
	$(GO) vet ./...
	cd test/e2e && $(GO) vet ./...
	cd test/krew && $(GO) vet ./...
	cd hack/image && $(GO) vet ./...
	$(GOLANGCI_LINT) run ./...
	cd test/e2e && $(GOLANGCI_LINT) run -c ../../.golangci.yml ./...
	cd test/krew && $(GOLANGCI_LINT) run -c ../../.golangci.yml ./...
	cd hack/image && $(GOLANGCI_LINT) run -c ../../.golangci.yml ./...

# golangci-lint, pinned by hack/lint/go.mod, built once per machine.
$(GOLANGCI_LINT): hack/lint/go.mod hack/lint/go.sum
	cd hack/lint && $(GO) build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

unit: unit-go unit-fuzz

unit-go:
	$(GO) test -count=1 ./...

unit-fuzz:
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(UNIT_FUZZTIME)

# Go fuzz tests of the parsers of outside input (func Fuzz... in plugin/):
# each runs FUZZTIME (`make fuzz FUZZTIME=5m` for a long run); `make unit`
# runs each briefly (UNIT_FUZZTIME), after their seed corpora ran as tests.
# A failing input is kept in the package's testdata/fuzz and replayed by
# every later `go test`.
# UNIT_FUZZTIME is a count of runs, not a duration: with a duration, Go
# before 1.27 can fail a target with a bare "context deadline exceeded" as
# the time runs out (golang/go#75804, a race in the fuzzing coordinator;
# seen here in make unit on a fresh clone, 2026-12-07). With 2000 runs a
# target took 0.1 to 5 s on 2 cores, and detect's FuzzAnalyzeFields 21 s,
# as it did with 500 (its time goes before the first run); 500 keeps the
# step as brief as the 3 s were.
FUZZTIME ?= 30s
UNIT_FUZZTIME ?= 500x
fuzz:
	@for pkg in $$($(GO) list ./plugin/...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			nice -n 10 $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# The docs that are checked against the code (exit codes, plan schema) are
# tested by the unit tests; this target only says so for discoverability.
check-docs:
	$(GO) test -count=1 -run 'TestDocs' ./...

# The command reference (docs/reference) is generated from the cobra tree;
# TestDocsReference (a unit test) fails when it is stale or a README flag
# table disagrees with the commands.
docs:
	$(GO) run ./hack/gendocs -out docs/reference -readme README.md

# make test: lint and the unit tests, the control-plane tools, then at once
# the kwok suite, the krew and image tests, the fuzzing and the lab's tools (a cold
# machine builds those for about 18 minutes while the kwok suite, idle
# most of the time, runs beside them; the builds and the fuzzing run
# niced, so the suite's control planes come first), then the lab alone:
# its nodes need the whole machine.
test: lint
	$(MAKE) --no-print-directory unit-go
	$(MAKE) --no-print-directory e2e-tools
	$(MAKE) --no-print-directory -j4 --output-sync=line test-e2e test-krew test-image unit-fuzz datapath-tools
	$(MAKE) --no-print-directory test-datapath


# make demo: the real thing where this machine allows it (root, network
# namespaces, VXLAN: hack/demo-real.sh --check), else the simulation.
# demo-real: three real nodes moved from Flannel to Cilium under the
# monitor, its downtime tables and timeline printed at the end (the first
# run builds the lab's tools, about 25 minutes). demo-sim: the quick one, a
# simulated cluster (real control plane, kwok nodes, simulated Cilium).
.PHONY: demo-sim demo-real
demo:
	@if bash hack/demo-real.sh --check; then $(MAKE) --no-print-directory demo-real; \
	else echo "running the simulated demo instead (make demo-sim)"; $(MAKE) --no-print-directory demo-sim; fi

demo-real: build e2e-tools datapath-tools
	E2E_CACHE=$(E2E_CACHE) BIN_DIR=$(abspath bin) DEMO_DIR=$(abspath _out/demo-real) E2E_ROOT=$(abspath $(E2E_ROOT)) \
		bash hack/demo-real.sh

demo-sim: build e2e-tools e2e-cluster-bin
	KUBECTL=$(KUBECTL) E2E_CACHE=$(E2E_CACHE) E2E_CLUSTER_BIN=$(E2E_CLUSTER_BIN) BIN_DIR=$(abspath bin) \
		DEMO_DIR=$(abspath _out/demo) KEEP=$(KEEP) bash hack/demo.sh

# Measures `kubectl cni-migrate status` against `kubectl get pods -A -o json` on
# a kwok cluster: 1000 nodes and 30000 pods by default (about 20 minutes on 2
# cores); BENCH_NODES=50 BENCH_PODS=1500 for a quick run; see
# test/e2e/cmd/bench-status for the other BENCH_* settings. Not part of `make test`.
# --help cold start of the plugin (alone and through kubectl) against
# `kubectl version --client`; BENCH_RUNS=50. Not part of `make test`.
.PHONY: bench-help
bench-help: build
	KUBECTL=$(KUBECTL) bash hack/bench/help.sh $(BIN) $(or $(BENCH_RUNS),50)

# Measures `rollout --batch 20 --reboot=skip` against the guide's per-node
# loop of kubectl commands (20 workers, one after the other) on a kwok
# cluster of 200 nodes and 6000 pods, in the same run as the status figures
# (bench-status); BENCH_NODES, BENCH_PODS, BENCH_BATCH, BENCH_GUIDE_NODES
# change the sizes. About 15 minutes on 2 cores. Not part of `make test`.
.PHONY: bench-rollout
bench-rollout: build e2e-tools
	cd test/e2e && GOWORK=off E2E_CACHE=$(E2E_CACHE) PLUGIN_BIN_DIR=$(abspath $(dir $(BIN))) \
		BENCH_ROLLOUT=1 BENCH_NODES=$(or $(BENCH_NODES),200) BENCH_PODS=$(or $(BENCH_PODS),6000) BENCH_MIGRATED=0 \
		$(GO) run ./cmd/bench-status

.PHONY: bench-status
bench-status: build e2e-tools
	cd test/e2e && GOWORK=off E2E_CACHE=$(E2E_CACHE) PLUGIN_BIN_DIR=$(abspath $(dir $(BIN))) $(GO) run ./cmd/bench-status

clean:
	rm -rf bin dist _out
