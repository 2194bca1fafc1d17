# End-to-end test targets; included by the top-level Makefile, which defines
# BIN (the built plugin binary, bin/kubectl-cni_migrate).
#
#   make e2e-tools   build etcd, kube-apiserver, kube-controller-manager,
#                    kube-scheduler, kwok, helm and stage the Cilium charts,
#                    CRDs and the flannel manifest into $(E2E_CACHE)
#   make e2e-up      start a standalone demo cluster in $(E2E_DIR)
#                    (E2E_NODES, E2E_CILIUM, E2E_VALUES optional)
#   make e2e-down    stop it
#   make test-e2e    run the e2e tests (test/e2e, a separate Go module)

E2E_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
E2E_ROOT   := $(abspath $(E2E_MK_DIR)/../..)
E2E_CACHE  ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kubectl-cni-migrate
E2E_DIR    ?= $(E2E_ROOT)/_out/e2e-cluster
E2E_NODES  ?= 3
E2E_CILIUM ?=
E2E_VALUES ?=
E2E_CLUSTER_BIN := $(E2E_CACHE)/bin/e2e-cluster
E2E_TEST_FLAGS ?=
# The kwok suite's tests each start a control plane of their own on free
# ports, so they run E2E_PARALLEL at a time (1: one after another).
E2E_PARALLEL   ?= 2

.PHONY: e2e-tools e2e-cluster-bin e2e-up e2e-down test-e2e

e2e-tools:
	E2E_CACHE=$(E2E_CACHE) bash $(E2E_MK_DIR)/build-tools.sh

# Rebuilt every time (go build is incremental): it is tiny.
e2e-cluster-bin:
	cd $(E2E_ROOT)/test/e2e && GOWORK=off go build -o $(E2E_CLUSTER_BIN) ./cmd/e2e-cluster

e2e-up: e2e-tools e2e-cluster-bin
	E2E_CACHE=$(E2E_CACHE) $(E2E_CLUSTER_BIN) up --dir $(E2E_DIR) --nodes $(E2E_NODES) \
		$(if $(E2E_CILIUM),--cilium $(E2E_CILIUM)) $(if $(E2E_VALUES),--values $(abspath $(E2E_VALUES)))
	@echo "export KUBECONFIG=$(E2E_DIR)/kubeconfig"

e2e-down:
	@if [ -x $(E2E_CLUSTER_BIN) ]; then $(E2E_CLUSTER_BIN) down --dir $(E2E_DIR); \
	else cd $(E2E_ROOT)/test/e2e && GOWORK=off go run ./cmd/e2e-cluster down --dir $(E2E_DIR); fi

test-e2e: e2e-tools $(BIN)
	cd $(E2E_ROOT)/test/e2e && GOWORK=off E2E_CACHE=$(E2E_CACHE) PLUGIN_BIN_DIR=$(abspath $(dir $(BIN))) \
		go test -count=1 -timeout 40m -parallel $(E2E_PARALLEL) $(E2E_TEST_FLAGS) ./...
