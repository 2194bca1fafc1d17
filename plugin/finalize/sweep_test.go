package finalize

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/sourcecni"
)

// fakeTools writes stand-ins for ip, iptables-nft-save, iptables-nft-restore
// and ipset into dir: they answer from the state of a node that ran canal
// and Cilium, and log every call (and the restore's input) to dir/calls.
func fakeTools(t *testing.T, dir string) {
	t.Helper()
	tools := map[string]string{
		"ip": `case "$*" in
"-o link show") printf '%s\n' '1: lo: <LOOPBACK,UP>' '2: eth0@if6: <BROADCAST>' '3: flannel.1: <BROADCAST>' \
  '4: cali0123456789a@if3: <BROADCAST>' '5: cilium_host@cilium_net: <BROADCAST>' '6: lxc0123456789ab@if9: <BROADCAST>' '7: calico-typo: <BROADCAST>' ;;
"-4 route show proto 80") echo "blackhole 10.244.1.0/26 proto 80" ;;
esac
echo "ip $*" >>"$CALLS"`,
		"iptables-nft-save": `echo "save $*" >>"$CALLS"
case "$*" in
"-t filter") cat <<'EOF'
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
:cali-FORWARD - [0:0]
:cali-from-wl-dispatch - [0:0]
:FLANNEL-FWD - [0:0]
-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A INPUT -g cali-INPUT-missing
-A cali-FORWARD -j cali-from-wl-dispatch
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
EOF
;;
"-t nat") printf '%s\n' '*nat' ':POSTROUTING ACCEPT [0:0]' ':KUBE-POSTROUTING - [0:0]' '-A POSTROUTING -j KUBE-POSTROUTING' 'COMMIT' ;;
esac`,
		"iptables-nft-restore": `echo "restore $*" >>"$CALLS"; cat >>"$CALLS"`,
		"ipset": `case "$1" in
list) printf '%s\n' cali40all-ipam-pools cilium_node_set_v4 cali40this-host ;;
*) echo "ipset $*" >>"$CALLS" ;;
esac`,
	}
	for name, body := range tools {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/bash\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSweepScript runs canal's sweep script against stand-ins of the
// node's tools: it removes canal's links (not Cilium's, not a name that
// only starts like Calico's veths), felix's routes, the cali- and FLANNEL-
// chains with the rules that jump to them (and nothing of kube-proxy's),
// Calico's ipsets, canal's files and directories, and says so line by line.
func TestSweepScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	src, err := sourcecni.Named("canal")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin, host := filepath.Join(dir, "bin"), filepath.Join(dir, "host")
	for _, d := range []string{bin, host + "/cni", host + "/var/lib/calico", host + "/run/flannel"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"05-cilium.conflist", "10-canal.conflist.cilium_bak", "calico-kubeconfig"} {
		if err := os.WriteFile(filepath.Join(host, "cni", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fakeTools(t, bin)
	calls := filepath.Join(dir, "calls")
	// flanneld still runs for a moment: the sweep waits for it.
	proc := filepath.Join(dir, "proc")
	for pid, comm := range map[string]string{"1": "bash", "42": "flanneld", "43": "cilium-agent"} {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(comm+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		_ = os.RemoveAll(filepath.Join(proc, "42"))
	}()
	start := time.Now()
	cmd := exec.Command("bash", "-c", SweepScript(*src.Node.Sweep))
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "SWEEP_HOST=" + host, "CALLS=" + calls, "TMPDIR=" + dir, "SWEEP_PROC=" + proc}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the script failed: %v\n%s", err, out)
	}
	if time.Since(start) < 1500*time.Millisecond {
		t.Errorf("the sweep did not wait for flanneld to exit (%v)", time.Since(start))
	}
	if strings.Contains(string(out), "failed") {
		t.Errorf("output:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{
		"removed link flannel.1",
		"removed link cali0123456789a",
		"removed 3 iptables chains of table filter (nft): cali-FORWARD cali-from-wl-dispatch FLANNEL-FWD ",
		"removed ipset cali40all-ipam-pools",
		"removed ipset cali40this-host",
		"removed file 10-canal.conflist.cilium_bak",
		"removed file calico-kubeconfig",
		"removed directory /var/lib/calico",
		"removed directory /run/flannel",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("output:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	log, _ := os.ReadFile(calls)
	for _, w := range []string{
		"ip link delete flannel.1", "ip link delete cali0123456789a",
		"restore --noflush\n*filter\n" +
			`-D FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD` + "\n" +
			`-D FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD` + "\n" +
			"-F cali-FORWARD\n-F cali-from-wl-dispatch\n-F FLANNEL-FWD\n-X cali-FORWARD\n-X cali-from-wl-dispatch\n-X FLANNEL-FWD\nCOMMIT\n",
		"ipset destroy cali40all-ipam-pools",
	} {
		if !strings.Contains(string(log), w) {
			t.Errorf("calls lack %q:\n%s", w, log)
		}
	}
	for _, never := range []string{"delete lxc", "delete cilium", "delete calico-typo", "KUBE-", "cilium_node_set_v4", "restore --noflush\n*nat"} {
		if strings.Contains(string(log), never) {
			t.Errorf("calls touch %q:\n%s", never, log)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(host, "cni")); len(left) != 1 || left[0].Name() != "05-cilium.conflist" {
		t.Errorf("CNI directory after the sweep: %v", left)
	}
	// The Job around it.
	j := SweepJob("kube-system", "worker-1", "quay.io/cilium/cilium:v1.18.11", "/etc/cni/net.d", "true", time.Minute)
	spec := j.Spec.Template.Spec
	if j.Name != "cni-migrate-sweep-worker-1" || spec.NodeName != "worker-1" || !spec.HostNetwork || !*spec.Containers[0].SecurityContext.Privileged ||
		spec.Volumes[0].HostPath.Path != "/etc/cni/net.d" || *j.Spec.BackoffLimit != 0 {
		t.Errorf("job %+v", j)
	}
	if n := SweepName(strings.Repeat("n", 80)); len(n) > 63 {
		t.Errorf("SweepName too long: %s", n)
	}
}

// TestSweepScriptFelixRoutes: Calico's sweep deletes felix's routes
// (protocol 80, its blackhole routes among them).
func TestSweepScriptFelixRoutes(t *testing.T) {
	src, err := sourcecni.Named("calico")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	fakeTools(t, bin)
	cmd := exec.Command("bash", "-c", SweepScript(*src.Node.Sweep))
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "SWEEP_HOST=" + filepath.Join(dir, "host"), "CALLS=" + filepath.Join(dir, "calls"), "TMPDIR=" + dir, "SWEEP_PROC=" + filepath.Join(dir, "proc")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "removed route blackhole 10.244.1.0/26 proto 80") {
		t.Errorf("output:\n%s", out)
	}
	r := SweepResult{Removed: []string{"link vxlan.calico", "route blackhole 10.244.1.0/26 proto 80", "49 iptables chains of table filter (nft): a b", "3 iptables chains of table nat (nft): c", "ipset cali40a", "file calico-kubeconfig", "directory /run/calico"}}
	if got, want := r.Summary(), "removed 1 link (vxlan.calico), 1 route, 52 iptables chains (filter, nat; nft), 1 ipset, 1 file (calico-kubeconfig), 1 directory (/run/calico)"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if got := (SweepResult{}).Summary(); got != "nothing was left" {
		t.Errorf("empty Summary() = %q", got)
	}
}

// sweptCluster is upgradedCluster with Cilium's DaemonSet in full, the
// migration lock, every permission granted, and sweep Jobs that end as
// the kubelet would end them: succeeded, or failed when fail says so.
func sweptCluster(t *testing.T, fail bool) (*fake.Clientset, memNotes, Options, *bytes.Buffer) {
	t.Helper()
	objs := upgradedCluster()
	for i, o := range objs {
		if ds, ok := o.(*appsv1.DaemonSet); ok && ds.Name == "cilium" {
			ds.Spec.Template.Spec.Containers = []corev1.Container{{Name: "cilium-agent", Image: "quay.io/cilium/cilium:v1.18.11"}}
			ds.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "etc-cni-netd", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/rancher/k3s/agent/etc/cni/net.d"}}}}
			objs[i] = ds
		}
	}
	objs = append(objs, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cni-migrate-rollout"}})
	kc := fake.NewClientset(objs...)
	kc.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		r.Status.Allowed = true
		return true, r, nil
	})
	kc.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		j := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job)
		if fail {
			j.Status.Failed = 1
		} else {
			j.Status.Succeeded = 1
		}
		return false, nil, nil
	})
	notes := memNotes{}
	var out bytes.Buffer
	opts := Options{Out: &out, NodeConfigName: "cilium-default", Label: "io.cilium.migration/cilium-default=true",
		RemoveOldCNI: true, KeepState: true, Timeout: 5 * time.Second,
		Lock: func(ctx context.Context) (context.Context, Notes, func(), error) { return ctx, notes, func() {}, nil }}
	return kc, notes, opts, &out
}

func flannelCluster() *detect.Cluster {
	return &detect.Cluster{
		Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", DaemonSet: "cilium"},
		CNI:    &detect.CNI{Name: "flannel", Namespace: "kube-flannel", DaemonSet: "kube-flannel-ds", ConfigMap: "kube-flannel-cfg"},
	}
}

// TestRunSweepsNodes: finalize --remove-old-cni deletes the old CNI's
// objects, then runs a sweep Job on each node in the agent's image with the
// node's CNI directory Cilium mounts, says what it removed instead of what
// stays, deletes the Jobs, and clears its note; --keep-node-leftovers
// skips it and says what stays.
func TestRunSweepsNodes(t *testing.T) {
	ctx := context.Background()
	kc, notes, opts, out := sweptCluster(t, false)
	var created []*batchv1.Job
	kc.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		created = append(created, a.(k8stesting.CreateAction).GetObject().(*batchv1.Job).DeepCopy())
		return false, nil, nil
	})
	if err := Run(ctx, &kube.Clients{Kube: kc}, flannelCluster(), opts); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"removing what flannel left on the 1 node (a Job cni-migrate-sweep-NODE per node in kube-system, image quay.io/cilium/cilium:v1.18.11):\n  w-1: nothing was left\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), "What stays on the nodes") {
		t.Errorf("said what stays after sweeping it:\n%s", out)
	}
	if len(created) != 1 || created[0].Spec.Template.Spec.NodeName != "w-1" || created[0].Spec.Template.Spec.Volumes[0].HostPath.Path != "/var/lib/rancher/k3s/agent/etc/cni/net.d" ||
		!strings.Contains(created[0].Spec.Template.Spec.Containers[0].Command[2], "FLANNEL-") {
		t.Errorf("jobs created: %+v", created)
	}
	if jobs, _ := kc.BatchV1().Jobs("kube-system").List(ctx, metav1.ListOptions{}); len(jobs.Items) != 0 {
		t.Errorf("%d sweep Jobs left", len(jobs.Items))
	}
	if notes[SweepNote] != "" {
		t.Errorf("sweep note left: %v", notes)
	}

	kc, _, opts, out = sweptCluster(t, false)
	opts.KeepNodeLeftovers = true
	if err := Run(ctx, &kube.Clients{Kube: kc}, flannelCluster(), opts); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(out.String(), "removing what") || !strings.Contains(out.String(), "What stays on the nodes") {
		t.Errorf("--keep-node-leftovers:\n%s", out)
	}
}

// TestRunSweepFails: a node whose sweep Job fails stops finalize with exit
// 20 naming it and what to remove by hand; the note stays, and the next run
// (the old CNI no longer found) sweeps again.
func TestRunSweepFails(t *testing.T) {
	ctx := context.Background()
	kc, notes, opts, out := sweptCluster(t, true)
	err := Run(ctx, &kube.Clients{Kube: kc}, flannelCluster(), opts)
	if errs.Code(err) != errs.SweepFailed || !strings.Contains(err.Error(), "w-1") || !strings.Contains(err.Error(), "iptables-save | grep -v FLANNEL") {
		t.Fatalf("err %v, want exit 20 naming w-1 and the commands by hand\n%s", err, out)
	}
	if notes[SweepNote] != "flannel" {
		t.Errorf("notes %v", notes)
	}
	if !strings.Contains(out.String(), "w-1: nothing was left; Job kube-system/cni-migrate-sweep-w-1 failed") {
		t.Errorf("said:\n%s", out)
	}
	// The next run: flannel is gone (not detected), the note names it.
	kc2, _, opts2, out2 := sweptCluster(t, false)
	opts2.Lock = func(ctx context.Context) (context.Context, Notes, func(), error) { return ctx, notes, func() {}, nil }
	lease, _ := kc2.CoordinationV1().Leases("kube-system").Get(ctx, "cni-migrate-rollout", metav1.GetOptions{})
	lease.Annotations = map[string]string{SweepNote: "flannel"}
	if _, err := kc2.CoordinationV1().Leases("kube-system").Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = kc2.AppsV1().DaemonSets("kube-flannel").Delete(ctx, "kube-flannel-ds", metav1.DeleteOptions{})
	c := &detect.Cluster{Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", DaemonSet: "cilium"}}
	if err := Run(ctx, &kube.Clients{Kube: kc2}, c, opts2); err != nil {
		t.Fatalf("%v\n%s", err, out2)
	}
	if !strings.Contains(out2.String(), "removing what flannel left on the 1 node") || notes[SweepNote] != "" {
		t.Errorf("the run after: notes %v, said:\n%s", notes, out2)
	}
}
