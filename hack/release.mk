# Release targets; included by the top-level Makefile, which defines GO,
# VERSION, COMMIT, COMPLETION and KUBECTL (and E2E_CACHE through e2e.mk).
#
#   make dist                  cross-compiled archives for krew + sha256sums.txt in dist/
#   make krew-manifest VERSION=v1.2.3 [BASE_URL=https://...]
#                              dist/cni-migrate.yaml from krew/cni-migrate.yaml
#   make krew-tools            build krew and validate-krew-manifest into $(E2E_CACHE)/krew/bin
#   make test-krew             validate the manifest and install the plugin with krew itself
#   make image VERSION=v1.2.3 [IMAGE_PUSH=1]
#                              the plugin's image for policy-bridge --deploy (hack/image):
#                              dist/image (an OCI layout), and pushed to $(IMAGE_REPO):VERSION
#   make test-image            hack/image's tests, the plugin run out of its image included

DIST_DIR       ?= dist
DIST_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
# Archive entries and the build date carry the commit's time, so a clean
# checkout always packs the same archives.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DIST_DATE      := $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r $(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
DIST_LDFLAGS    = -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DIST_DATE)
DIST_BUILD_DIR ?= _out/dist-bin
BASE_URL       ?=
KREW_BIN_DIR   := $(E2E_CACHE)/krew/bin
KREW_TEST_DIR  := $(abspath _out/krew-test)
# A prerelease that no real release uses; the test checks that the plugin
# krew installs reports it.
KREW_TEST_VERSION := v0.0.0-krewtest

.PHONY: dist krew-manifest krew-tools test-krew image test-image

# The plugin's image: the repository policy-bridge --deploy defaults to
# (plugin/cmd/policybridge.go), its platforms, and where make image builds
# their binaries (hack/image reads BIN_DIR/linux_ARCH/kubectl-cni_migrate).
IMAGE_REPO      ?= ghcr.io/cni-migrate/kubectl-cni-migrate
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
IMAGE_BIN_DIR   ?= _out/image-bin
IMAGE_TEST_DIR  := $(abspath _out/image-test)
IMAGE_TEST_VERSION := v0.0.0-imagetest
comma := ,

# build_bins DIR,PLATFORMS: the release binaries, DIR/OS_ARCH/kubectl-cni_migrate[.exe]
# (the layout hack/dist and hack/image read). One go build per platform, all
# at once: warm, they only link (about twice as fast as one after the other
# on 2 cores).
define build_bins
	rm -rf $(1)
	@pids=; for p in $(2); do \
		os=$${p%/*}; arch=$${p#*/}; exe=; if [ $$os = windows ]; then exe=.exe; fi; \
		echo "build $$os/$$arch ($(VERSION))"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(DIST_LDFLAGS)' \
			-o $(1)/$${os}_$$arch/kubectl-cni_migrate$$exe ./cmd/kubectl-cni_migrate & pids="$$pids $$!"; \
	done; rc=0; for pid in $$pids; do wait $$pid || rc=1; done; exit $$rc
endef

dist:
	rm -f $(DIST_DIR)/kubectl-cni_migrate_* $(DIST_DIR)/sha256sums.txt $(DIST_DIR)/cni-migrate.yaml
	$(call build_bins,$(DIST_BUILD_DIR),$(DIST_PLATFORMS))
	$(GO) run ./hack/dist -in $(DIST_BUILD_DIR) -out $(DIST_DIR) -license LICENSE -completion $(COMPLETION) \
		-mtime $(SOURCE_DATE_EPOCH) $(DIST_PLATFORMS)
	@cat $(DIST_DIR)/sha256sums.txt

# Rebuilds dist first so that the binaries carry VERSION.
krew-manifest: dist
	$(GO) run ./hack/krewmanifest -template krew/cni-migrate.yaml -version $(VERSION) -dist $(DIST_DIR) \
		$(if $(BASE_URL),-base-url $(BASE_URL)) -o $(DIST_DIR)/cni-migrate.yaml

krew-tools:
	E2E_CACHE=$(E2E_CACHE) bash hack/e2e/build-tools.sh krew

# The archives test-krew installs from are packed exactly as make dist packs
# them, for every platform of the manifest, but only this machine's binary is
# built (the one krew installs and kubectl runs): the other platforms'
# archives carry it under their names, which is all validate-krew-manifest
# looks at (it unpacks each platform's archive and checks its files; it runs
# none). Cross-compiling the other four took about 5 minutes of a cold make
# test; make dist builds them for a release.
test-krew: krew-tools
	rm -rf $(KREW_TEST_DIR)/bin $(KREW_TEST_DIR)/dist
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(KREW_TEST_VERSION) -X main.commit=$(COMMIT) -X main.date=$(DIST_DATE)' \
		-o $(KREW_TEST_DIR)/host/kubectl-cni_migrate ./cmd/kubectl-cni_migrate
	@for p in $(DIST_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; exe=; if [ $$os = windows ]; then exe=.exe; fi; \
		mkdir -p $(KREW_TEST_DIR)/bin/$${os}_$$arch; \
		cp $(KREW_TEST_DIR)/host/kubectl-cni_migrate $(KREW_TEST_DIR)/bin/$${os}_$$arch/kubectl-cni_migrate$$exe; \
	done
	$(GO) run ./hack/dist -in $(KREW_TEST_DIR)/bin -out $(KREW_TEST_DIR)/dist -license LICENSE -completion $(COMPLETION) \
		-mtime $(SOURCE_DATE_EPOCH) $(DIST_PLATFORMS)
	$(GO) build -o $(KREW_TEST_DIR)/krewmanifest ./hack/krewmanifest
	cd test/krew && KREW_BIN_DIR=$(KREW_BIN_DIR) DIST_DIR=$(KREW_TEST_DIR)/dist \
		KREW_MANIFEST_RENDERER=$(KREW_TEST_DIR)/krewmanifest KREW_TEMPLATE=$(abspath krew/cni-migrate.yaml) \
		PLUGIN_VERSION=$(KREW_TEST_VERSION) KUBECTL=$(KUBECTL) $(GO) test -count=1 -timeout 10m $(KREW_TEST_FLAGS) ./...

# The registry's credentials come from the Docker config (docker login, or
# docker/login-action in .github/workflows/release.yaml).
image:
	$(call build_bins,$(IMAGE_BIN_DIR),$(IMAGE_PLATFORMS))
	cd hack/image && $(GO) run . -bin-dir $(abspath $(IMAGE_BIN_DIR)) -platforms $(subst $(eval) ,$(comma),$(strip $(IMAGE_PLATFORMS))) \
		-version $(VERSION) -revision $(COMMIT) -mtime $(SOURCE_DATE_EPOCH) -oci-layout $(abspath $(DIST_DIR))/image \
		$(if $(filter 1,$(IMAGE_PUSH)),-push $(IMAGE_REPO):$(VERSION))

# Only this machine's binary is built (as in test-krew): TestRealBinary
# pushes an image of it to an in-memory registry on 127.0.0.1, pulls it
# back and runs the plugin out of it.
test-image:
	rm -rf $(IMAGE_TEST_DIR)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(IMAGE_TEST_VERSION) -X main.commit=$(COMMIT) -X main.date=$(DIST_DATE)' \
		-o $(IMAGE_TEST_DIR)/linux_$$($(GO) env GOARCH)/kubectl-cni_migrate ./cmd/kubectl-cni_migrate
	cd hack/image && IMAGE_TEST_BIN_DIR=$(IMAGE_TEST_DIR) IMAGE_TEST_VERSION=$(IMAGE_TEST_VERSION) $(GO) test -count=1 -timeout 10m ./...
