# Real-datapath lab targets; included by the top-level Makefile.
#
#   make datapath-tools   install the Debian packages the lab runs (containerd,
#                         runc, CNI plugins, debootstrap, ...) and build
#                         kubelet, kube-proxy, agnhost, flanneld, the flannel
#                         CNI plugin, CoreDNS, Cilium, Calico and the images'
#                         Debian rootfs into $(E2E_CACHE)/datapath (stamped,
#                         built once)
#   make test-datapath    the real-datapath tests (test/e2e/datapath; root):
#                         a migration from each source CNI (Flannel, Calico,
#                         Canal); DATAPATH_SOURCES="calico canal" picks some
#   make datapath-report  the same, writing their figures into docs/:
#                         datapath-results-SOURCE.md, datapath-timeline-SOURCE.svg
#                         and connectivity-results.md

DATAPATH_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
DATAPATH_TEST_FLAGS ?=
# calico-in-place and canal-in-place (the one-shot method from Calico and
# Canal, policies kept in force) run when named: DATAPATH_SOURCES=
# "calico-in-place canal-in-place" (about 4 min each; all six sources took
# 57 min, which make test cannot hold within CI's 90 yet).
DATAPATH_SOURCES    ?= flannel calico canal flannel-in-place
# go test's limit: E2E_NETPOL=all (the 45 Netpol tests, three runs of
# 12-14 min on the Calico lab) needs more than the default sources.
DATAPATH_TIMEOUT    ?= $(if $(filter all,$(E2E_NETPOL)),150m,80m)
# TestNodeRulesGuard (no subtests) runs whatever the sources: the policy
# bridge's node rules in network namespaces of its own, seconds.
DATAPATH_RUN        := -run '^(TestDatapathMigration|TestNodeRulesGuard)$$/^($(subst $(eval) ,|,$(strip $(DATAPATH_SOURCES))))$$'

.PHONY: datapath-tools test-datapath datapath-report

datapath-tools:
	bash $(DATAPATH_MK_DIR)/deps.sh
	E2E_CACHE=$(E2E_CACHE) bash $(DATAPATH_MK_DIR)/build.sh

test-datapath: e2e-tools datapath-tools $(BIN)
	cd $(E2E_ROOT)/test/e2e && GOWORK=off E2E_DATAPATH=1 E2E_CACHE=$(E2E_CACHE) PLUGIN_BIN_DIR=$(abspath $(dir $(BIN))) \
		go test -count=1 -timeout $(DATAPATH_TIMEOUT) -v $(DATAPATH_RUN) $(DATAPATH_TEST_FLAGS) ./datapath/

datapath-report: e2e-tools datapath-tools $(BIN)
	cd $(E2E_ROOT)/test/e2e && GOWORK=off E2E_DATAPATH=1 E2E_CACHE=$(E2E_CACHE) PLUGIN_BIN_DIR=$(abspath $(dir $(BIN))) \
		E2E_DATAPATH_REPORT_DIR=$(abspath $(E2E_ROOT))/docs \
		go test -count=1 -timeout $(DATAPATH_TIMEOUT) -v $(DATAPATH_RUN) $(DATAPATH_TEST_FLAGS) ./datapath/

# A lab to look at by hand: SOURCE's cluster with the workloads and the
# monitor, kept for HOLD (1h) or until Ctrl-C; the log prints its KUBECONFIG.
# MIGRATE=worker-1 also installs Cilium beside the old CNI and migrates
# those nodes (comma-separated) with the plugin: the half-migrated cluster.
.PHONY: lab-hold
lab-hold: e2e-tools datapath-tools $(BIN)
	cd $(E2E_ROOT)/test/e2e && GOWORK=off E2E_DATAPATH=1 E2E_CACHE=$(E2E_CACHE) PLUGIN_BIN_DIR=$(abspath $(dir $(BIN))) \
		E2E_LAB_HOLD=$(or $(SOURCE),flannel) E2E_LAB_HOLD_FOR=$(or $(HOLD),1h) E2E_LAB_HOLD_MIGRATE=$(MIGRATE) \
		go test -count=1 -timeout 0 -v -run '^TestLabHold$$' ./datapath/
