package datapath

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab"
)

// conformance are the tests of Kubernetes' own e2e suite (v1.34.4, built
// as e2e-network.test) the lab runs: its [sig-network] [Conformance] tests
// that exercise the datapath and need no internet (DNS, pod to pod, node
// to pod, Services of every type, session affinity, HostPort, the API
// server's proxy to pods and Services), and NoSNAT, the network model's
// rule that pods reach each other with their own addresses. Left out, and
// why: the API-only ones (EndpointSlice, EndpointSliceMirroring, Ingress,
// IngressClass, ServiceCIDR and IPAddress API operations, Service status
// and collection and Endpoint lifecycle), which no CNI changes, the two
// EndpointSlice tests that run nginx (not built here), and "Service
// endpoints latency" (200 Services, minutes on 2 cores, a control-plane
// figure).
var conformance = []string{
	"[sig-network] DNS should provide /etc/hosts entries for the cluster [Conformance]",
	"[sig-network] DNS should provide DNS for ExternalName services [Conformance]",
	"[sig-network] DNS should provide DNS for pods for Hostname [Conformance]",
	"[sig-network] DNS should provide DNS for pods for Subdomain [Conformance]",
	"[sig-network] DNS should provide DNS for services [Conformance]",
	"[sig-network] DNS should provide DNS for the cluster [Conformance]",
	"[sig-network] DNS should resolve DNS of partial qualified names for services [LinuxOnly] [Conformance]",
	"[sig-network] DNS should support configurable pod DNS nameservers [Conformance]",
	"[sig-network] HostPort validates that there is no conflict between pods with same hostPort but different hostIP and protocol [LinuxOnly] [Conformance]",
	"[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http [NodeConformance] [Conformance]",
	"[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: udp [NodeConformance] [Conformance]",
	"[sig-network] Networking Granular Checks: Pods should function for node-pod communication: http [LinuxOnly] [NodeConformance] [Conformance]",
	"[sig-network] Networking Granular Checks: Pods should function for node-pod communication: udp [LinuxOnly] [NodeConformance] [Conformance]",
	"[sig-network] Proxy version v1 A set of valid responses are returned for both pod and service Proxy [Conformance]",
	"[sig-network] Proxy version v1 A set of valid responses are returned for both pod and service ProxyWithPath [Conformance]",
	"[sig-network] Proxy version v1 should proxy through a service and a pod [Conformance]",
	"[sig-network] Services should be able to change the type from ClusterIP to ExternalName [Conformance]",
	"[sig-network] Services should be able to change the type from ExternalName to ClusterIP [Conformance]",
	"[sig-network] Services should be able to change the type from ExternalName to NodePort [Conformance]",
	"[sig-network] Services should be able to change the type from NodePort to ExternalName [Conformance]",
	"[sig-network] Services should be able to create a functioning NodePort service [Conformance]",
	"[sig-network] Services should be able to switch session affinity for NodePort service [LinuxOnly] [Conformance]",
	"[sig-network] Services should be able to switch session affinity for service with type clusterIP [LinuxOnly] [Conformance]",
	"[sig-network] Services should have session affinity work for NodePort service [LinuxOnly] [Conformance]",
	"[sig-network] Services should have session affinity work for service with type clusterIP [LinuxOnly] [Conformance]",
	"[sig-network] Services should provide secure master service [Conformance]",
	"[sig-network] Services should serve a basic endpoint from pods [Conformance]",
	"[sig-network] Services should serve endpoints on same port and different protocols [Conformance]",
	"[sig-network] Services should serve multiport endpoints from pods [Conformance]",
	"[sig-network] NoSNAT Should be able to send traffic between Pods without SNAT",
}

// specResult is one test of a suite run.
type specResult struct {
	Name    string
	State   string // passed, failed, skipped, ...
	Seconds float64
	Failure string
}

// suiteRun is one run of the conformance tests.
type suiteRun struct {
	When    string
	Results []specResult
	Took    time.Duration
	// Err is why the suite did not run or report.
	Err string
}

// ginkgoReport is the part of ginkgo's JSON report read here.
type ginkgoReport []struct {
	SpecReports []struct {
		ContainerHierarchyTexts []string
		LeafNodeText            string
		LeafNodeType            string
		State                   string
		RunTime                 time.Duration
		Failure                 struct {
			Message string
		}
	}
}

// runConformance runs the conformance tests against the lab, with the
// lab's images (KUBE_TEST_REPO_LIST), and returns their results.
func runConformance(ctx context.Context, l *lab.Lab, when string) suiteRun {
	run := suiteRun{When: when}
	dir := filepath.Join(l.Dir, "e2e-"+strings.NewReplacer(" ", "-", "(", "", ")", "", ",", "").Replace(when))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		run.Err = err.Error()
		return run
	}
	repoList := filepath.Join(dir, "repo-list.yaml")
	if err := os.WriteFile(repoList, []byte(lab.E2ERepoList), 0o644); err != nil {
		run.Err = err.Error()
		return run
	}
	focus := make([]string, len(conformance))
	for i, n := range conformance {
		focus[i] = regexp.QuoteMeta(n)
	}
	report := filepath.Join(dir, "report.json")
	bin := filepath.Join(l.Cache(), "datapath", "bin", "e2e-network.test")
	cmd := exec.CommandContext(ctx, bin,
		"--kubeconfig="+l.Cluster.Kubeconfig, "--provider=local",
		"--ginkgo.focus=^("+strings.Join(focus, "|")+")$",
		"--ginkgo.json-report="+report, "--ginkgo.no-color", "--ginkgo.timeout=30m",
		"--report-dir="+dir, "--e2e-output-dir="+dir,
		// The lab's system pods are all up; its nodes are its own.
		"--minStartupPods=0", "--system-pods-startup-timeout=2m", "--allowed-not-ready-nodes=0")
	cmd.Env = append(os.Environ(), "KUBE_TEST_REPO_LIST="+repoList, "KUBECONFIG="+l.Cluster.Kubeconfig)
	cmd.Dir = dir
	logf, err := os.Create(filepath.Join(dir, "e2e.log"))
	if err != nil {
		run.Err = err.Error()
		return run
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	t0 := time.Now()
	runErr := cmd.Run()
	run.Took = time.Since(t0)
	data, err := os.ReadFile(report)
	if err != nil {
		run.Err = fmt.Sprintf("no report (%v; the suite: %v; its log: %s)", err, runErr, logf.Name())
		return run
	}
	var rep ginkgoReport
	if err := json.Unmarshal(data, &rep); err != nil {
		run.Err = fmt.Sprintf("report %s: %v", report, err)
		return run
	}
	for _, s := range rep {
		for _, sp := range s.SpecReports {
			if sp.LeafNodeType != "It" {
				continue
			}
			name := strings.Join(append(slices.Clone(sp.ContainerHierarchyTexts), sp.LeafNodeText), " ")
			if sp.State == "skipped" && !slices.Contains(conformance, name) {
				continue // not focused
			}
			msg := sp.Failure.Message
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i]
			}
			run.Results = append(run.Results, specResult{Name: name, State: sp.State, Seconds: sp.RunTime.Seconds(), Failure: msg})
		}
	}
	slices.SortFunc(run.Results, func(a, b specResult) int { return strings.Compare(a.Name, b.Name) })
	return run
}

// counts returns how many tests passed, failed (any state but passed and
// skipped) and were skipped, and the focused tests that did not run.
func (r suiteRun) counts() (passed, failed, skipped int, missing []string) {
	seen := map[string]bool{}
	for _, s := range r.Results {
		seen[s.Name] = true
		switch s.State {
		case "passed":
			passed++
		case "skipped":
			skipped++
		default:
			failed++
		}
	}
	for _, n := range conformance {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	return passed, failed, skipped, missing
}

// suiteMarkdown is the results page's section on the suites' runs.
func suiteMarkdown(runs []suiteRun) string {
	var b strings.Builder
	b.WriteString("\n### Kubernetes' own network conformance tests\n\n")
	fmt.Fprintf(&b, "`e2e.test` of Kubernetes v1.34.4 (its network tests only, `hack/datapath/e2e-network`), with the lab's images (`KUBE_TEST_REPO_LIST`), focused on %d tests: the [sig-network] [Conformance] tests that exercise the datapath, and NoSNAT (the list and what is left out: `conformance` in test/e2e/datapath/suite.go).\n\n", len(conformance))
	for _, r := range runs {
		passed, failed, skipped, missing := r.counts()
		fmt.Fprintf(&b, "**%s**: ", r.When)
		if r.Err != "" {
			fmt.Fprintf(&b, "did not run: %s\n\n", r.Err)
			continue
		}
		fmt.Fprintf(&b, "%d passed, %d failed, %d skipped, %d not run, in %s.\n\n", passed, failed, skipped, len(missing), r.Took.Round(time.Second))
		b.WriteString("| test | result | s |\n|---|---|---:|\n")
		for _, s := range r.Results {
			res := s.State
			if s.Failure != "" {
				res += ": " + s.Failure
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f |\n", strings.ReplaceAll(s.Name, "|", "\\|"), strings.ReplaceAll(res, "|", "\\|"), s.Seconds)
		}
		for _, m := range missing {
			fmt.Fprintf(&b, "| %s | not run | |\n", m)
		}
		b.WriteString("\n")
	}
	return b.String()
}
