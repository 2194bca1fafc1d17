package datapath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	e2e "github.com/cni-migrate/kubectl-cni-migrate/test/e2e"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/monitor"
)

// ciliumVersion asks the built plugin which Cilium release it installs
// when the user names none (`version -o json`): the lab runs that one
// (hack/datapath/build.sh builds the same default), so the release users
// get and the release the lab proves cannot drift apart.
func ciliumVersion(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(e2e.PluginPath(t), "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("kubectl-cni_migrate version -o json: %v", err)
	}
	var v struct {
		Cilium struct {
			Default string `json:"default"`
		} `json:"cilium"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.Cilium.Default == "" {
		t.Fatalf("kubectl-cni_migrate version -o json named no default Cilium (%v):\n%s", err, out)
	}
	return v.Cilium.Default
}

// labValues are merged on top of the plugin's values (kubectl cni-migrate
// values -f): the locally built images, and what this machine cannot run
// (see docs/datapath.md): no Envoy (C++, not buildable here), no socket-LB
// (it attaches to the host-wide cgroup root, i.e. every process of the
// machine), one operator replica (2 cores), and no CAP_SYS_RESOURCE for the
// agent's containers (the machine's own bounding set lacks it, so runc
// cannot grant it; the agent needs it only for the memlock rlimit, which
// kernels from 5.11 on do not use for BPF). And Cilium's health probes at
// their shortest interval (connectivityProbeFrequencyRatio 0: a round every
// 20 s on 3 nodes instead of 2 min), so that waitCiliumHealth reads a round
// made after finalize's restart within seconds, not minutes; charts before
// 1.18 ignore the value.
func labValues(version string) string {
	return fmt.Sprintf(`image:
  repository: %[1]s
  tag: v%[3]s
  useDigest: false
  pullPolicy: IfNotPresent
operator:
  replicas: 1
  image:
    repository: %[2]s
    tag: v%[3]s
    useDigest: false
    pullPolicy: IfNotPresent
envoy:
  enabled: false
l7Proxy: false
socketLB:
  enabled: false
connectivityProbeFrequencyRatio: 0
securityContext:
  capabilities:
    ciliumAgent: [CHOWN, KILL, NET_ADMIN, NET_RAW, IPC_LOCK, SYS_MODULE, SYS_ADMIN, DAC_OVERRIDE, FOWNER, SETGID, SETUID]
    cleanCiliumState: [NET_ADMIN, SYS_MODULE, SYS_ADMIN]
`, lab.Images.CiliumRepository, lab.Images.OperatorRepository, version)
}

// plugin runs `kubectl cni-migrate ARGS` against the lab, logging its
// output, and returns the output and the exit code.
func plugin(t testing.TB, ctx context.Context, l *lab.Lab, args ...string) (string, int) {
	t.Helper()
	dir := filepath.Dir(e2e.PluginPath(t))
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	cmd := l.Cluster.Command(kubectl, append([]string{"cni-migrate"}, args...)...)
	cmd.Env = append(cmd.Env, "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "NO_COLOR=1")
	t0 := time.Now()
	out, err := cluster.RunCommand(ctx, cmd)
	code := 0
	if err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
	}
	t.Logf("$ kubectl cni-migrate %s  (exit %d, %v)\n%s", strings.Join(args, " "), code, time.Since(t0).Round(time.Millisecond), out)
	transcript("$ kubectl cni-migrate %s\n%s(exit %d after %v)\n", strings.Join(args, " "), out, code, time.Since(t0).Round(time.Second))
	return string(out), code
}

// transcript appends to E2E_DEMO_TRANSCRIPT, when set, what a person
// watching `make demo` follows: the plugin's commands with their output,
// and the parts of the run.
func transcript(format string, args ...any) {
	path := os.Getenv("E2E_DEMO_TRANSCRIPT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, format, args...)
}

func mustPlugin(t testing.TB, ctx context.Context, l *lab.Lab, args ...string) string {
	t.Helper()
	out, code := plugin(t, ctx, l, args...)
	if code != 0 {
		t.Fatalf("kubectl cni-migrate %s: exit %d", strings.Join(args, " "), code)
	}
	return out
}

// migration is one migration the lab proves, from one source CNI.
type migration struct {
	source string
	// fault, when set, is the node whose firewall drops Cilium's tunnel
	// port when the rollout starts: the connectivity gate must stop the
	// rollout after its first batch, leave that node and the ones after
	// it untouched, and the same rollout resumes green once the rule is
	// gone (the matrices it printed go to connectivity.md).
	fault string
	// rollback, with fault, is the node the stopped rollout migrated: it
	// is rolled back to the old CNI and the resumed rollout migrates it
	// again.
	rollback string
	// suites runs Kubernetes' network conformance tests (suite.go) with
	// one worker on Cilium (after the stopped rollout) and after finalize.
	suites bool
	// netpol runs Kubernetes' NetworkPolicy tests (netpolSuite) before
	// the migration, with worker-1 on Cilium (a rollout of that node
	// alone, then the rollout of the rest) and after finalize: each test
	// must end as it did before the migration.
	netpol bool
	// inPlace runs seed 000's one-shot method (--strategy in-place):
	// Cilium takes every node's CNI config at its install and the rollout
	// restarts each pod still on the old network, namespace by namespace.
	inPlace bool
}

// name names the subtest and its results page: the source, with
// "-in-place" for the one-shot method.
func (m migration) name() string {
	if m.inPlace {
		return m.source + "-in-place"
	}
	return m.source
}

// strategy are the plugin's flags for the migration's method.
func (m migration) strategy() []string {
	if m.inPlace {
		return []string{"--strategy", "in-place"}
	}
	return nil
}

// migrations are the lab's migrations: Flannel on three nodes with the
// gate's fault, Calico (with Kubernetes' NetworkPolicy tests before, half
// and after) and Canal (which enforce NetworkPolicies) on two, and Flannel,
// Calico and Canal again with the one-shot method. make test-datapath runs
// all but calico-in-place and canal-in-place by default
// (DATAPATH_SOURCES): they pass (docs/datapath.md), but with them the
// runs took 57 min of this 2-core machine, and make test would go past
// CI's 90 minutes.
var migrations = []migration{
	{source: "flannel", fault: "worker-2", rollback: "worker-1", suites: true},
	{source: "calico", netpol: true},
	{source: "canal"},
	{source: "flannel", inPlace: true},
	{source: "calico", inPlace: true},
	{source: "canal", inPlace: true},
}

// TestDemo is `make demo` on a machine that can run the lab: Flannel to
// Cilium on three real nodes, node by node, under the monitor, with the
// results written to E2E_DATAPATH_REPORT_DIR (hack/demo-real.sh prints
// them).
func TestDemo(t *testing.T) {
	need(t)
	e2e.PluginPath(t)
	migrate(t, migration{source: "flannel"})
}

// TestDatapathMigration migrates a real cluster from each source CNI to a
// real Cilium with the built plugin while the monitor probes every pod
// pair, Service and NetworkPolicy flow, and writes the downtime figures:
// the report goes to the log, to LAB_DIR/report.md and, with
// E2E_DATAPATH_REPORT_DIR=DIR, to DIR/datapath-results-SOURCE.md with its
// timeline DIR/datapath-timeline-SOURCE.svg (make datapath-report writes
// them into docs/). Each source is a subtest (-run
// 'TestDatapathMigration/calico').
func TestDatapathMigration(t *testing.T) {
	need(t)
	e2e.PluginPath(t)
	// Last in the log (CI shows its tail): what failed in each run.
	rec := &failures{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("what failed, run by run:\n%s", rec)
		}
	})
	for _, m := range migrations {
		t.Run(m.name(), func(t *testing.T) { migrate(recT{t, rec}, m) })
	}
}

func migrate(t testing.TB, m migration) {
	src, err := lab.SourceNamed(m.source)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runBudget())
	defer cancel()
	l := startLab(t, ctx, lab.Options{Nodes: src.Nodes, Calico: src.Calico, CiliumVersion: ciliumVersion(t)})
	c := l.Cluster
	installSource(t, ctx, l, src)
	if err := l.Workloads(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Monitor(ctx, probeInterval, probeTimeout, src.Policies); err != nil {
		t.Fatal(err)
	}
	if err := fixture.WaitWorkloadsReady(ctx, c, 5*time.Minute, lab.AppsNamespace, lab.MonitorNamespace, lab.PolicyNamespace, "kube-system", src.Namespace); err != nil {
		t.Fatal(err)
	}
	tl := newTimeline()
	waitMonitorGreen(t, ctx, l, 5*time.Second, 2*time.Minute)
	tl.Mark(src.Name + " only")
	time.Sleep(settle)
	var suites []suiteRun
	if m.netpol {
		suites = append(suites, runSuiteIn(t, ctx, l, tl, netpol(), "Before the migration"))
	}

	work := filepath.Join(l.Dir, "migration")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	// The in-place method restarts pods, not nodes: their evictions are
	// the windows. In every run the watch also sees the DaemonSet pods a
	// node's reboot gives a new address (their old one is gone).
	pw := newPodWatch()
	pctx, stopPods := context.WithCancel(ctx)
	podsWatched := make(chan struct{})
	go func() { pw.Watch(pctx, c.Client); close(podsWatched) }()
	defer func() { stopPods(); <-podsWatched }()
	followPlan(t, ctx, l, tl.Mark, m.strategy()...)
	// A source that enforces NetworkPolicies keeps them in force on both
	// sides from the install on (docs/policy-continuity.md): Cilium
	// enforces on its pods, knows the old pods by the bridge's
	// CiliumEndpoints, and Calico's own policies are translated first.
	// That is values' default for those sources, without a flag.
	bridged := src.Enforces
	userValues, advice := ciliumBeside(t, ctx, l, work, tl.Mark, m.strategy()...)
	if got := strings.Contains(advice, "policy-bridge --deploy"); got != bridged {
		t.Fatalf("values advised the policy bridge: %v, want %v (%s enforces policies: %v; in-place: %v):\n%s", got, bridged, src.Name, src.Enforces, m.inPlace, advice)
	}
	if bridged {
		tl.Mark("policy bridge")
		deployBridge(t, ctx, l, src.Policies.Calico)
	}
	nets := networks(t, filepath.Join(work, "values-initial.yaml"), src.OldNetwork)
	// What the agents drop, to set beside any probe that failed.
	dctx, stopDrops := context.WithCancel(ctx)
	defer stopDrops()
	drops, err := recordDrops(dctx, l, filepath.Join(l.Dir, "cilium-drops.log"))
	if err != nil {
		t.Fatal(err)
	}
	var defaults map[string]string
	if !m.inPlace {
		mustPlugin(t, ctx, l, "nodeconfig", "--apply")
		defaults = nodeConfigDefaults(t, ctx, l)
	}
	time.Sleep(settle)

	// The node watch starts before the rollout (nodes' windows begin with
	// its first cordon). Each node is checked as soon as the rollout is
	// done with it (while it goes on with the next), and all of them again
	// at the end.
	var checks sync.WaitGroup
	tl.onDone = func(name string) {
		if n := l.Node(name); n != nil {
			checks.Add(1)
			go func() { defer checks.Done(); checkMigratedNode(t, ctx, l, src, n, defaults) }()
		}
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { tl.Watch(wctx, c.Client); close(watched) }()
	defer func() { stopWatch(); <-watched }()
	tl.Mark("rollout")
	var gate *gateRecord
	var health []healthRun
	if m.fault != "" {
		gate = gateFault(t, ctx, l, tl, work, m.fault)
		if m.suites {
			tl.Mark("conformance tests (one worker on Cilium)")
			end := tl.Fault("", suiteWindow)
			suites = append(suites, runSuite(ctx, l, conformanceSuite, "With one worker on Cilium"))
			end()
			health = append(health, waitCiliumHealth(ctx, l, "one worker on Cilium", healthTimeout))
			t.Logf("conformance tests with one worker on Cilium:\n%s", suiteMarkdown(suites))
		}
		if m.rollback != "" {
			rollBack(t, ctx, l, src, tl, m.rollback)
		}
	}
	// The NetworkPolicy tests on the half-migrated cluster: the rollout of
	// worker-1 alone, then the rollout of the rest.
	var first *rolloutSummary
	if m.netpol {
		out := mustPlugin(t, ctx, l, append(rolloutArgs(l), "-l", "kubernetes.io/hostname=worker-1", "-o", "json")...)
		s, err := parseRollout(out)
		if err != nil || len(s.Nodes) != 1 {
			t.Fatalf("rollout of worker-1: %v:\n%s", err, out)
		}
		first = &s
		suites = append(suites, runSuiteIn(t, ctx, l, tl, netpol(), "With worker-1 on Cilium"))
	}
	// Gated on the plugin's own connectivity matrix: it must be green
	// before the first node and after each one.
	rollout := append(rolloutArgs(l), "-o", "json")
	if m.inPlace {
		rollout = []string{"rollout", "--strategy", "in-place", "--restart-timeout", "5m", "-o", "json"}
	}
	out := mustPlugin(t, ctx, l, rollout...)
	if gate != nil {
		if !strings.Contains(out, "green") {
			t.Errorf("the resumed rollout did not pass its gates:\n%s", out)
		}
		gate.record("The same rollout again, the rule removed", strings.Join(rollout, " "), gateLines(out), 0)
	}
	summary, err := parseRollout(out)
	if err != nil {
		t.Errorf("rollout -o json: %v:\n%s", err, out)
	}
	if gate != nil {
		summary.Nodes = append(gate.rollout.Nodes, summary.Nodes...)
	}
	if first != nil {
		summary.Nodes = append(first.Nodes, summary.Nodes...)
	}
	// The watch sees the last uncordon a moment after the rollout returns.
	for i := 0; tl.Ended() < len(l.Nodes) && i < 100; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if tl.Ended() < len(l.Nodes) {
		t.Errorf("the timeline saw %d of %d nodes migrated:\n%s", tl.Ended(), len(l.Nodes), tl)
	}
	checks.Wait()
	for _, n := range l.Nodes {
		checkMigratedNode(t, ctx, l, src, n, defaults)
	}
	// Before finalize's helm upgrade restarts them.
	var window string
	if m.inPlace {
		window = restartsMarkdown(pw.Restarts(nets.Old))
	} else {
		window = windowMarkdown(summary, readAgentStarts(ctx, l))
	}
	t.Logf("the nodes' windows:\n%s", window)
	mustPlugin(t, ctx, l, "status")
	if gate != nil {
		out := mustPlugin(t, ctx, l, "connectivity", "--image", lab.Images.Agnhost)
		gate.record("After the migration", "connectivity", out, 0)
		mustPlugin(t, ctx, l, "connectivity", "--cleanup")
		gate.write(t, l)
	}
	if src.Policies.Calico && !bridged {
		// What plan's calico-policies check tells the user to do before
		// finalize: the plugin's translation (the lab's two Calico policies
		// translate to what the lab wrote by hand before: port-8083's Deny
		// of every peer after its Allow is left out, as Cilium's deny would
		// win over the Allow).
		tl.Mark("Calico's policies rewritten for Cilium")
		if out, code := plugin(t, ctx, l, "finalize", "--dry-run=client", "--output-dir", work); code != 15 || !strings.Contains(out, "calico-policies --apply") {
			t.Errorf("finalize before the translation was applied: exit %d, want 15 naming calico-policies --apply:\n%s", code, out)
		}
		mustPlugin(t, ctx, l, "calico-policies")
		mustPlugin(t, ctx, l, "calico-policies", "--apply")
	}
	// From a source that enforces no policy (Flannel), Cilium audited the
	// policies through the migration: before finalize, policy-report names
	// the lab's denied flows, and none it allows.
	if src.Policies.Kubernetes && !src.Enforces {
		tl.Mark("policy report")
		checkPolicyReport(t, mustPlugin(t, ctx, l, "policy-report", "--for", "30s", "-o", "json"))
	}
	// While both networks are up: the nodes' own addresses, to name a
	// rewritten source address in the report.
	nets.Names = nodeAddresses(t, ctx, l)
	time.Sleep(settle)

	tl.Mark("finalize")
	final := mustPlugin(t, ctx, l, "finalize", "--yes", "--remove-old-cni", "--output-dir", work,
		"--chart", fixture.CiliumChart(c, l.CiliumVersion()), "--helm", c.Bin("helm"), "-f", userValues)
	// finalize removes the bridge first (its node rules' DaemonSet runs
	// where the migration label is absent, which finalize takes off).
	if bridged && !strings.Contains(final, "removed the policy bridge: daemonset/cni-migrate-node-rules") {
		t.Errorf("finalize did not remove the policy bridge:\n%s", final)
	}
	if src.Policies.Calico && !strings.Contains(final, "their Cilium translation is in the cluster") {
		t.Errorf("finalize did not say Calico's policies are translated:\n%s", final)
	}
	checkFinalized(t, ctx, l, src)
	mustPlugin(t, ctx, l, "status")
	tl.Mark("after finalize")
	time.Sleep(settle)
	health = append(health, waitCiliumHealth(ctx, l, "after finalize", healthTimeout))
	if !health[len(health)-1].healthy() {
		t.Errorf("Cilium's health after finalize:%s", healthMarkdown(health[len(health)-1:]))
		f := filepath.Join(l.Dir, "health-diagnostics.txt")
		if err := os.WriteFile(f, []byte(healthDiagnostics(ctx, l)), 0o644); err == nil {
			t.Logf("routes, links, endpoints, ipcache of every node and agent: %s", f)
		}
	}
	if m.suites {
		tl.Mark("conformance tests (after finalize)")
		end := tl.Fault("", suiteWindow)
		suites = append(suites, runSuite(ctx, l, conformanceSuite, "After finalize"))
		end()
		// After finalize the cluster is Cilium's alone: every test must
		// pass but the known failures (suite.go), each named with its
		// cause; one of those that passes fails the test too, so that it
		// leaves the list.
		last := suites[len(suites)-1]
		if passed, _, _, missing := last.counts(); last.Err != "" || len(missing) > 0 || passed == 0 {
			t.Errorf("conformance tests after finalize: %s", suiteMarkdown(suites[len(suites)-1:]))
		}
		for _, r := range last.Results {
			why, known := conformanceSuite.Known[r.Name]
			switch {
			case r.State != "passed" && r.State != "skipped" && !known:
				t.Errorf("conformance test after finalize: %s: %s: %s", r.Name, r.State, r.Failure)
			case r.State != "passed" && known:
				t.Logf("conformance test after finalize: %s: %s (known: %s)", r.Name, r.State, why)
			case r.State == "passed" && known:
				t.Errorf("conformance test after finalize: %s passed: remove it from conformanceSuite.Known", r.Name)
			}
		}
	}
	if m.netpol {
		suites = append(suites, runSuiteIn(t, ctx, l, tl, netpol(), "After finalize"))
		for _, e := range sameVerdicts(suites, netpol()) {
			t.Errorf("NetworkPolicy tests: %s", e)
		}
	}
	end := time.Now()
	left := checkLeftovers(t, ctx, l, src, final)
	stopWatch()
	<-watched
	stopDrops()
	t.Logf("timeline:\n%s", tl)

	stopPods()
	<-podsWatched
	suitesMD := healthMarkdown(health)
	if len(suites) > 0 {
		suitesMD += suiteMarkdown(suites)
	}
	report(t, l, m, src, nets, tl, pw.Windows(nets.Old, tl.Windows()), end, drops.stop(), left+window+suitesMD)
}

// followPlan runs plan as a user would before installing Cilium and
// follows its advice where it gives the commands to run (a check's
// commands in plan -o json): for Calico its node address autodetection
// (cilium/cilium#31273), for Canal flanneld's masquerading; then plan must
// find nothing left to FAIL.
func followPlan(t testing.TB, ctx context.Context, l *lab.Lab, mark func(string), strategy ...string) {
	t.Helper()
	type check struct {
		ID, Status, Fix string
		Commands        []string
	}
	read := func() []check {
		out, code := plugin(t, ctx, l, append([]string{"plan", "-o", "json"}, strategy...)...)
		if code != 0 && code != 3 {
			t.Fatalf("plan: exit %d", code)
		}
		var plan struct {
			Checks []check `json:"checks"`
		}
		// The JSON on stdout, then (exit 3) the error line on stderr.
		if i := strings.Index(out, "{"); i < 0 || json.NewDecoder(strings.NewReader(out[i:])).Decode(&plan) != nil {
			t.Fatalf("plan -o json printed no plan:\n%s", out)
		}
		return plan.Checks
	}
	for _, ch := range read() {
		if ch.Status == "PASS" || len(ch.Commands) == 0 {
			continue
		}
		mark("plan's advice: " + ch.ID)
		for _, cmd := range ch.Commands {
			c := exec.CommandContext(ctx, "bash", "-c", cmd)
			c.Env = append(os.Environ(), "KUBECONFIG="+l.Cluster.Kubeconfig)
			b, err := c.CombinedOutput()
			t.Logf("plan's %s advice: $ %s\n%s", ch.ID, cmd, b)
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
		}
	}
	for _, ch := range read() {
		if ch.Status == "FAIL" {
			t.Errorf("plan still FAILs %s after its advice was followed: %s", ch.ID, ch.Fix)
		}
	}
	mustPlugin(t, ctx, l, append([]string{"plan"}, strategy...)...)
}

// ciliumBeside runs plan and values (with labValues on top) into work and
// installs Cilium with the plugin's values-initial.yaml beside the old CNI,
// as a user would; mark (optional) is told when the helm install begins.
// It returns the path of the user values file and what values printed.
func ciliumBeside(t testing.TB, ctx context.Context, l *lab.Lab, work string, mark func(string), strategy ...string) (string, string) {
	t.Helper()
	c := l.Cluster
	mustPlugin(t, ctx, l, append([]string{"plan"}, strategy...)...)
	userValues := filepath.Join(work, "lab-values.yaml")
	cv := l.CiliumVersion()
	if err := os.WriteFile(userValues, []byte(labValues(cv)), 0o644); err != nil {
		t.Fatal(err)
	}
	// No --cilium-version, as a user runs it: values must pick the default
	// the lab was built for, and say so in its next step.
	out := mustPlugin(t, ctx, l, append([]string{"values", "-f", userValues, "--output-dir", work}, strategy...)...)
	if !strings.Contains(out, "helm install cilium cilium/cilium --version "+cv+" ") {
		t.Fatalf("values did not advise Cilium %s, the plugin's default:\n%s", cv, out)
	}
	if err := fixture.CiliumCRDs(ctx, c, cv); err != nil {
		t.Fatal(err)
	}
	if mark != nil {
		what := "helm install (Cilium beside the old CNI)"
		if len(strategy) > 0 {
			what = "helm install (Cilium takes every node's CNI config)"
		}
		mark(what)
	}
	t0 := time.Now()
	if out, err := fixture.Helm(ctx, c, "install", "cilium", fixture.CiliumChart(c, cv), "-n", "kube-system",
		"-f", filepath.Join(work, "values-initial.yaml"), "--wait", "--timeout", "10m"); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	t.Logf("Cilium %s installed beside the old CNI in %v", cv, time.Since(t0).Round(time.Second))
	return userValues, out
}

// deployBridge does what values advises for a source that enforces
// policies, before the first node: Calico's own policies translated
// (calico), and the policy bridge deployed; --deploy returns once it is
// Ready.
func deployBridge(t testing.TB, ctx context.Context, l *lab.Lab, calico bool) {
	t.Helper()
	if calico {
		mustPlugin(t, ctx, l, "calico-policies", "--apply")
	}
	mustPlugin(t, ctx, l, "policy-bridge", "--deploy", "--image", lab.Images.Plugin, "--interval", "2s")
}

// probeInterval and probeTimeout are the monitor's. The timeout is 3s,
// not 1s: the lab's nodes share the machine's 2 cores, and while the
// Cilium agents compile their BPF programs (clang, at every agent start)
// probe latencies reached 1.8s with no packet lost; 3s is also what a
// connection needs when its first two SYNs are lost, so a probe fails only
// when the datapath does. settle is how long the test lets the monitor run
// between the parts of the migration (so each phase has probes of its own).
const (
	probeInterval = "500ms"
	probeTimeout  = "3s"
	probeTimeoutD = 3 * time.Second
	settle        = 15 * time.Second
)

// networks reads Cilium's pool from the plugin's values; old is the
// source's pod network.
func networks(t testing.TB, valuesFile string, old netip.Prefix) monitor.Networks {
	t.Helper()
	b, err := os.ReadFile(valuesFile)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		IPAM struct {
			Operator struct {
				Pool []string `json:"clusterPoolIPv4PodCIDRList"`
			} `json:"operator"`
		} `json:"ipam"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var nets monitor.Networks
	for _, p := range v.IPAM.Operator.Pool {
		nets.New = append(nets.New, netip.MustParsePrefix(p))
	}
	if len(nets.New) == 0 {
		t.Fatalf("%s: no ipam.operator.clusterPoolIPv4PodCIDRList", valuesFile)
	}
	nets.Old = []netip.Prefix{old}
	return nets
}

// rollBack rolls node back to the old CNI with the plugin, as docs/rollback.md
// tells a user to: the reboot command first restores the old CNI's config
// on the node (rollback prints those commands). Then the node's pods must
// be back on the old network, its conflists as before the migration, and
// the monitor green. The rollback is a window of the node; the node's
// migration is forgotten by the timeline, so that the resumed rollout's is
// recorded anew.
func rollBack(t testing.TB, ctx context.Context, l *lab.Lab, src lab.Source, tl *timeline, node string) {
	t.Helper()
	n := l.Node(node)
	tl.Mark("rollback " + node)
	end := tl.Fault(node, "rollback: cordon, drain, reboot")
	restore := fmt.Sprintf("rm -f /etc/cni/net.d/05-cilium.conflist; mv -n /etc/cni/net.d/%[1]s.cilium_bak /etc/cni/net.d/%[1]s", src.Conflist)
	out := mustPlugin(t, ctx, l, "rollback", node, "--reboot-command", l.OnNodeCommand(restore),
		"--probe-image", lab.Images.Agnhost, "--reboot-timeout", "5m", "--agent-timeout", "5m", "-o", "json")
	if !strings.Contains(out, `"rolled-back"`) {
		t.Errorf("rollback %s did not report rolled-back:\n%s", node, out)
	}
	end()
	tl.Forget(node)
	ls, err := n.Exec(ctx, "ls", "/etc/cni/net.d")
	if err != nil {
		t.Fatal(err)
	}
	files := strings.Fields(string(ls))
	t.Logf("%s after the rollback: /etc/cni/net.d: %s", node, strings.Join(files, " "))
	if !slices.Contains(files, src.Conflist) || slices.Contains(files, "05-cilium.conflist") || slices.Contains(files, src.Conflist+".cilium_bak") {
		t.Errorf("%s after the rollback: /etc/cni/net.d holds %v, want %s and no Cilium conflist", node, files, src.Conflist)
	}
	// The node's DaemonSet pods get their new sandboxes (and addresses)
	// from its kubelet after the reboot, which may be after the rollback
	// uncordoned it (seen: three pods without an address 1 s after): a
	// pod not on the old network yet is waited for, up to a minute.
	var pods *corev1.PodList
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		var err error
		if pods, err = l.Cluster.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node}); err != nil {
			t.Fatal(err)
		}
		pending := false
		for _, p := range pods.Items {
			ip, err := netip.ParseAddr(p.Status.PodIP)
			pending = pending || (!p.Spec.HostNetwork && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && (err != nil || !src.OldNetwork.Contains(ip)))
		}
		if !pending || time.Now().After(deadline) {
			break
		}
	}
	back := 0
	for _, p := range pods.Items {
		if p.Spec.HostNetwork || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		if ip, err := netip.ParseAddr(p.Status.PodIP); err != nil || !src.OldNetwork.Contains(ip) {
			t.Errorf("%s after the rollback: pod %s/%s has %s, not an address of %s", node, p.Namespace, p.Name, p.Status.PodIP, src.OldNetwork)
			continue
		}
		back++
	}
	if back == 0 {
		t.Errorf("%s after the rollback: no pod on the old network", node)
	}
	waitMonitorGreen(t, ctx, l, 5*time.Second, 2*time.Minute)
	tl.Mark("rollout (resumed)")
}

// nodeAddresses names every node's IPv4 addresses by their interface
// (flannel.1, cilium_host, eth0, ...).
func nodeAddresses(t testing.TB, ctx context.Context, l *lab.Lab) map[netip.Addr]string {
	t.Helper()
	names := map[netip.Addr]string{}
	for _, n := range l.Nodes {
		out, err := n.Exec(ctx, "ip", "-4", "-o", "addr", "show")
		if err != nil {
			t.Errorf("%s: %v", n.Name, err)
			continue
		}
		// "4: flannel.1    inet 10.244.1.0/32 scope global flannel.1 ..."
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 4 || f[2] != "inet" {
				continue
			}
			if p, err := netip.ParsePrefix(f[3]); err == nil && !p.Addr().IsLoopback() {
				names[p.Addr()] = strings.TrimSuffix(f[1], ":")
			}
		}
	}
	return names
}

// report analyses the monitor's probes, writes the figures and fails the
// test for every failed probe no disruption window explains.
func report(t testing.TB, l *lab.Lab, m migration, src lab.Source, nets monitor.Networks, tl *timeline, pods []monitor.Window, end time.Time, drops []drop, left string) {
	t.Helper()
	probes, err := monitor.Load(l.MonitorDir)
	if err != nil {
		t.Fatal(err)
	}
	var kept []monitor.Probe
	phases := tl.Phases(end)
	if len(phases) == 0 {
		t.Fatal("no phases recorded")
	}
	for _, p := range probes {
		if !p.T.Before(phases[0].Start) && p.T.Before(end) {
			kept = append(kept, p)
		}
	}
	// A timeout while the machine's CPU was starved (the probe could not
	// answer itself over loopback in 500ms) is the lab's, not the
	// datapath's: such windows are listed in the report with the rest.
	windows := append(append(tl.Windows(), pods...), monitor.Starved(kept, monitor.StarvedAfter, probeTimeoutD)...)
	rep := monitor.Analyze(kept, nets, phases, windows)
	workers := len(l.Nodes) - 1
	svgName := "datapath-timeline-" + m.name() + ".svg"
	method, rows := "`rollout --batch 1 --gate connectivity`", "a row per node with its window (cordon to uncordon)"
	if m.inPlace {
		method, rows = "the one-shot method (`values --strategy in-place`, `rollout --strategy in-place`)", "a row per node with a green tick for each pod restarted there"
	}
	md := fmt.Sprintf("%s to Cilium %s, %d nodes (1 control plane, %d worker%s), %s, probes every %s with a %s timeout (policy probes every second).\n\n"+
		"![The run's timeline: each node's disruption window, the phases, and every failed probe](%s)\n\n"+
		"The timeline: %s, the phases above, and a mark for each failed probe at its start on its source node's row "+
		"(grey: explained by a window, red: unexplained; policy probes of denied flows that got through in orange).\n\n%s%s%s",
		src.Title, l.CiliumVersion(), len(l.Nodes), workers, plural(workers), method, probeInterval, probeTimeout, svgName, rows,
		rep.Markdown(), left, dropsMarkdown(drops, rep.Unexplained(), probeTimeoutD))
	t.Logf("downtime report:\n%s", md)
	svg := monitor.Timeline(kept, rep, phases, windows, l.NodeNames())
	dirs := []string{l.Dir}
	if d := os.Getenv("E2E_DATAPATH_REPORT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		for name, data := range map[string][]byte{"datapath-results-" + m.name() + ".md": []byte(md), svgName: svg} {
			if err := os.WriteFile(filepath.Join(d, name), data, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	if js, err := rep.JSON(); err == nil {
		_ = os.WriteFile(filepath.Join(l.Dir, "report.json"), js, 0o644)
	}
	if len(kept) == 0 {
		t.Fatal("the monitor recorded no probes")
	}
	// The probes crossed between the networks both ways while the cluster
	// was half migrated.
	crossed := map[string]int{}
	for _, d := range rep.Directions {
		crossed[d.Direction] = d.OK
	}
	// The one-shot method restarts the monitor's pods together (their
	// namespace at once): they never straddle the two networks.
	directions := []string{"old->new", "new->old", "new->new"}
	if m.inPlace {
		directions = []string{"new->new"}
	}
	for _, d := range directions {
		if crossed[d] == 0 {
			t.Errorf("no successful %s pod probe: the cluster was never half migrated under the monitor", d)
		}
	}
	if src.Policies.Kubernetes && len(rep.Policy) == 0 {
		t.Error("no policy probe was recorded")
	}
	// With the policy bridge (a source that enforces policies, either
	// method), no denied flow gets through outside a node's own
	// migration: from the install to the end of finalize.
	if src.Enforces {
		for _, p := range rep.Policy {
			if p.LetThrough > 0 && !strings.HasPrefix(p.Phase, "rollout: ") {
				t.Errorf("policies in force: %d of %d denied %s flows got through in the phase %q", p.LetThrough, p.Denied, p.Direction, p.Phase)
			}
		}
	}
	// The users' verdict: the well-run application never failed a client
	// outside its node's window (its failures are also among the
	// unexplained below).
	if a := rep.App; a.Sent == 0 {
		t.Error("no probe of the application's Service was recorded")
	} else if a.Unexplained > 0 {
		t.Errorf("the application failed %d of %d requests from clients outside any window (%d more while the client was starved)", a.Unexplained, a.Sent, a.Starved)
	}
	un := rep.Unexplained()
	for i, p := range un {
		if i == 20 {
			t.Errorf("... and %d more", len(un)-20)
			break
		}
		what := p.Kind
		if p.Policy != "" {
			what += " " + p.Policy
		}
		t.Errorf("unexplained failure: %s %s (%s) -> %s %s: %s", p.T.Format("15:04:05.000"), p.SrcPod, p.SrcNode, what, p.Dst, p.Err)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// checkMigratedNode checks (from any goroutine: it never stops the test)
// what a migrated node must show: its pods on
// Cilium's pool, Cilium's conflist in place of Flannel's (renamed, not
// deleted), and the agent running with the CiliumNodeConfig's settings
// (the configuration cilium-dbg build-config resolved for the node, which
// the agent reads) and healthy by cilium-dbg status.
func checkMigratedNode(t testing.TB, ctx context.Context, l *lab.Lab, src lab.Source, n *lab.Node, defaults map[string]string) {
	t.Helper()
	// A pod the node's reboot restarts in place (a DaemonSet's, which no
	// drain moves) can be Running with no address for a moment while the
	// kubelet makes its new sandbox (seen once, 2026-12-07): such a pod is
	// asked about again, for up to a minute; an address outside Cilium's
	// pool fails at once.
	agent := ""
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
		pods, err := l.Cluster.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name})
		if err != nil {
			t.Errorf("%s: %v", n.Name, err)
			return
		}
		var unaddressed, wrong []string
		for _, p := range pods.Items {
			if p.Labels["k8s-app"] == "cilium" && p.Namespace == "kube-system" {
				agent = p.Name
			}
			if p.Spec.HostNetwork || p.Status.Phase != corev1.PodRunning {
				continue
			}
			if p.Status.PodIP == "" {
				unaddressed = append(unaddressed, p.Namespace+"/"+p.Name)
			} else if !strings.HasPrefix(p.Status.PodIP, "10.245.") {
				wrong = append(wrong, fmt.Sprintf("pod %s/%s has %s, not an address of Cilium's pool", p.Namespace, p.Name, p.Status.PodIP))
			}
		}
		for _, w := range wrong {
			t.Errorf("%s: %s", n.Name, w)
		}
		if len(unaddressed) == 0 || len(wrong) > 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Errorf("%s: pods Running with no address after a minute: %s", n.Name, strings.Join(unaddressed, ", "))
			break
		}
	}
	ls, err := n.Exec(ctx, "ls", "/etc/cni/net.d")
	if err != nil {
		t.Error(err)
	}
	files := strings.Fields(string(ls))
	t.Logf("%s: /etc/cni/net.d: %s", n.Name, strings.Join(files, " "))
	if !slices.Contains(files, "05-cilium.conflist") {
		t.Errorf("%s: no 05-cilium.conflist", n.Name)
	}
	if slices.Contains(files, src.Conflist) || !slices.Contains(files, src.Conflist+".cilium_bak") {
		t.Errorf("%s: %s was not renamed to %[2]s.cilium_bak", n.Name, src.Conflist)
	}
	if agent == "" {
		t.Errorf("%s: no Cilium agent pod", n.Name)
		return
	}
	got := agentConfig(t, ctx, l, agent, slices.Collect(maps.Keys(defaults)))
	for k, want := range defaults {
		if got[k] != want {
			t.Errorf("%s: agent %s runs with %s=%q, the CiliumNodeConfig sets %q", n.Name, agent, k, got[k], want)
		}
	}
	if out, err := l.Cluster.Kubectl(ctx, "-n", "kube-system", "exec", agent, "-c", "cilium-agent", "--", "cilium-dbg", "status", "--brief"); err != nil {
		t.Errorf("%s: cilium-dbg status: %v\n%s", n.Name, err, out)
	}
}

// nodeConfigDefaults reads the settings of the one CiliumNodeConfig that
// nodeconfig --apply made.
func nodeConfigDefaults(t testing.TB, ctx context.Context, l *lab.Lab) map[string]string {
	t.Helper()
	cnc, err := l.Cluster.Kubectl(ctx, "get", "ciliumnodeconfigs.cilium.io", "-n", "kube-system", "-o", "json")
	if err != nil {
		t.Fatalf("get CiliumNodeConfigs: %v\n%s", err, cnc)
	}
	var list struct {
		Items []struct {
			Spec struct {
				Defaults map[string]string `json:"defaults"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal(cnc, &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("want one CiliumNodeConfig: %v\n%s", err, cnc)
	}
	return list.Items[0].Spec.Defaults
}

// agentConfig reads the agent's resolved configuration (the directory
// cilium-dbg build-config writes in the agent pod's config init container).
func agentConfig(t testing.TB, ctx context.Context, l *lab.Lab, pod string, keys []string) map[string]string {
	t.Helper()
	slices.Sort(keys)
	script := `for k in "$@"; do printf '%s=%s\n' "$k" "$(cat /tmp/cilium/config-map/$k 2>/dev/null)"; done`
	// The exec goes through the node's kubelet, which once refused the API
	// server's connection for a moment right after the node's migration
	// ended (dial tcp NODE:10250: connection refused; a second later it
	// answered): try for 30 s, logging each refusal.
	var out []byte
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err = l.Cluster.Kubectl(ctx, append([]string{"-n", "kube-system", "exec", pod, "-c", "cilium-agent", "--", "sh", "-c", script, "sh"}, keys...)...)
		if err == nil || time.Now().After(deadline) || !strings.Contains(string(out), ":10250: connect: connection refused") {
			break
		}
		t.Logf("read the agent's configuration: the kubelet refused the exec, again in 2s: %s", strings.TrimSpace(string(out)))
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		t.Errorf("read the agent's configuration: %v\n%s", err, out)
		return nil
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	return got
}

// checkFinalized checks what finalize must leave: no CiliumNodeConfig, no
// DaemonSet of the old CNI, and every agent running with the final values
// (Cilium writes its own conflist: custom-cni-conf false) and healthy.
func checkFinalized(t testing.TB, ctx context.Context, l *lab.Lab, src lab.Source) {
	t.Helper()
	if out, err := l.Cluster.Kubectl(ctx, "get", "ciliumnodeconfigs.cilium.io", "-A", "-o", "name"); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("CiliumNodeConfigs left after finalize: %v %s", err, out)
	}
	if _, err := l.Cluster.Client.AppsV1().DaemonSets(src.Namespace).Get(ctx, src.DaemonSet, metav1.GetOptions{}); err == nil {
		t.Errorf("DaemonSet %s/%s is still there after finalize --remove-old-cni", src.Namespace, src.DaemonSet)
	}
	pods, err := l.Cluster.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=cilium"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != len(l.Nodes) {
		t.Errorf("%d Cilium agents after finalize, want %d", len(pods.Items), len(l.Nodes))
	}
	for _, p := range pods.Items {
		got := agentConfig(t, ctx, l, p.Name, []string{"custom-cni-conf", "write-cni-conf-when-ready"})
		if got["custom-cni-conf"] != "false" {
			t.Errorf("agent %s on %s runs with custom-cni-conf=%q after finalize, want false", p.Name, p.Spec.NodeName, got["custom-cni-conf"])
		}
		if out, err := l.Cluster.Kubectl(ctx, "-n", "kube-system", "exec", p.Name, "-c", "cilium-agent", "--", "cilium-dbg", "status", "--brief"); err != nil {
			t.Errorf("agent %s on %s: cilium-dbg status: %v\n%s", p.Name, p.Spec.NodeName, err, out)
		}
	}
}

// checkLeftovers reads what of the old CNI is left on each node after
// finalize (interfaces, routes, iptables chains, ipsets, CNI files) and
// returns it as a report section; finalize --remove-old-cni sweeps the
// nodes, so anything left fails the test.
func checkLeftovers(t testing.TB, ctx context.Context, l *lab.Lab, src lab.Source, finalize string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("\n### What of the old CNI is left on the nodes after finalize\n\n")
	if i := strings.Index(finalize, "removing what "); i >= 0 {
		sweep := finalize[i:]
		if j := strings.Index(sweep, "\nremoved the migration label"); j >= 0 {
			sweep = sweep[:j]
		}
		fmt.Fprintf(&b, "finalize --remove-old-cni said:\n\n```\n%s\n```\n\nThen, read on the nodes (interfaces, IPv4 routes, iptables chains of both backends, ipsets, /etc/cni/net.d):\n\n", strings.TrimSpace(sweep))
	} else {
		t.Errorf("finalize --remove-old-cni did not sweep the nodes:\n%s", finalize)
	}
	found := false
	for _, n := range l.Nodes {
		st, err := n.State(ctx)
		if err != nil {
			t.Errorf("%s: %v", n.Name, err)
			continue
		}
		left := src.Leftovers.Of(st, src.OldNetwork)
		if len(left) == 0 {
			fmt.Fprintf(&b, "- %s: nothing\n", n.Name)
			continue
		}
		found = true
		fmt.Fprintf(&b, "- %s: %s\n", n.Name, strings.Join(left, "; "))
		t.Errorf("%s: left after finalize: %s", n.Name, strings.Join(left, "; "))
	}
	if found {
		t.Logf("finalize said:\n%s", finalize)
	}
	return b.String()
}
