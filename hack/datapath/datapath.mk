# Real-datapath lab targets; included by the top-level Makefile.
#
#   make datapath-tools   install the Debian packages the lab runs (containerd,
#                         runc, CNI plugins, debootstrap, ...) and build
#                         kubelet, kube-proxy, agnhost, flanneld, the flannel
#                         CNI plugin, CoreDNS, Cilium and the images' Debian
#                         rootfs into $(E2E_CACHE)/datapath (stamped, built once)
#   make test-datapath    the real-datapath tests (test/e2e/datapath; root)
#   make datapath-report  the migration and gate tests, writing their figures
#                         to docs/datapath-results.md and
#                         docs/connectivity-results.md

DATAPATH_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
DATAPATH_TEST_FLAGS ?=

.PHONY: datapath-tools test-datapath datapath-report

datapath-tools:
	bash $(DATAPATH_MK_DIR)/deps.sh
	E2E_CACHE=$(E2E_CACHE) bash $(DATAPATH_MK_DIR)/build.sh

test-datapath: e2e-tools datapath-tools $(BIN)
	cd $(E2E_ROOT)/test/e2e && GOWORK=off E2E_DATAPATH=1 E2E_CACHE=$(E2E_CACHE) PLUGIN_BIN_DIR=$(abspath $(dir $(BIN))) \
		go test -count=1 -timeout 80m -v $(DATAPATH_TEST_FLAGS) ./datapath/

datapath-report: e2e-tools datapath-tools $(BIN)
	cd $(E2E_ROOT)/test/e2e && GOWORK=off E2E_DATAPATH=1 E2E_CACHE=$(E2E_CACHE) PLUGIN_BIN_DIR=$(abspath $(dir $(BIN))) \
		E2E_DATAPATH_REPORT=$(abspath $(E2E_ROOT))/docs/datapath-results.md \
		E2E_CONNECTIVITY_REPORT=$(abspath $(E2E_ROOT))/docs/connectivity-results.md \
		go test -count=1 -timeout 80m -v -run '^TestDatapath(Migration|Gate)$$' ./datapath/
