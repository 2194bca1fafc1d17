package e2e

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	cepGVR = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumendpoints"}
	cidGVR = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumidentities"}
)

// TestPolicyBridge runs `kubectl cni-migrate policy-bridge` on a cluster
// with worker-1 migrated: every running pod still on the old network gets
// a CiliumEndpoint (stored under Cilium's real CRD schema) with its node's
// address and the identity of its labels; Cilium's own endpoints are left
// alone; a deleted endpoint is written again, a deleted pod's goes, and
// --remove leaves nothing of the bridge's.
func TestPolicyBridge(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := migrationCluster(t, 3)
	runNode(t, c, "nodeconfig", "--apply").expect(t, 0)
	relaxPDBs(t, ctx, c, "payments", "db")
	runNode(t, c, "node", "worker-1", "--reboot-command="+rebootScript(t)+" {{.Node}}").expect(t, 0)
	pool := netip.MustParsePrefix(ciliumPool)

	// From Flannel the values audit policies (no bridge needed by node);
	// policy-report reads the agents through exec, which the simulated
	// nodes do not serve: a one-line error naming the agents, exit 5.
	if cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cilium-config", metav1.GetOptions{}); err != nil ||
		cm.Data["enable-policy"] != "default" || cm.Data["policy-audit-mode"] != "true" {
		t.Fatalf("cilium-config from Flannel's values: %v %v", err, cm.Data)
	}
	runNode(t, c, "policy-report", "--for", "2s").expect(t, 5, "reading the policy verdicts of 3 Cilium agents for 2s", "error: reading the policy verdicts of cilium-")

	list := func(gvr schema.GroupVersionResource, sel string) []unstructured.Unstructured {
		t.Helper()
		l, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	// A pod on Cilium, whose endpoint the simulated agent writes.
	onCilium := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "on-cilium", Namespace: "default", Labels: map[string]string{"app": "on-cilium"}},
		Spec: corev1.PodSpec{NodeName: "worker-1", Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, onCilium, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	theirs := 0
	for i := 0; i < 300 && theirs == 0; i++ {
		time.Sleep(100 * time.Millisecond)
		theirs = len(list(cepGVR, "app.kubernetes.io/managed-by!=cni-migrate"))
	}
	if theirs == 0 {
		t.Fatal("no CiliumEndpoint of Cilium's own (the simulated agent writes one for each pod on worker-1)")
	}

	r := runNode(t, c, "policy-bridge", "--once").expect(t, 0, "pods on the old network have their CiliumEndpoint", "ciliumidentity.cilium.io/")
	pods, err := c.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		if p.Spec.HostNetwork || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || p.DeletionTimestamp != nil {
			continue
		}
		if !pool.Contains(netip.MustParseAddr(p.Status.PodIP)) {
			old[p.Namespace+"/"+p.Name] = p
		}
	}
	if len(old) == 0 {
		t.Fatal("no pod on the old network")
	}
	ours := list(cepGVR, "app.kubernetes.io/managed-by=cni-migrate")
	if len(ours) != len(old) {
		t.Fatalf("%d CiliumEndpoints of the bridge's for %d pods on the old network:\n%s", len(ours), len(old), r.stderr)
	}
	ids := map[int64]map[string]string{}
	for _, it := range list(cidGVR, "") {
		l, _, _ := unstructured.NestedStringMap(it.Object, "security-labels")
		id, err := strconv.ParseInt(it.GetName(), 10, 64)
		if err != nil {
			t.Fatalf("CiliumIdentity %q: %v", it.GetName(), err)
		}
		ids[id] = l
	}
	for _, e := range ours {
		p, ok := old[e.GetNamespace()+"/"+e.GetName()]
		if !ok {
			t.Errorf("CiliumEndpoint %s/%s for no pod on the old network", e.GetNamespace(), e.GetName())
			continue
		}
		node, _, _ := unstructured.NestedString(e.Object, "status", "networking", "node")
		addr, _, _ := unstructured.NestedSlice(e.Object, "status", "networking", "addressing")
		id, _, _ := unstructured.NestedInt64(e.Object, "status", "identity", "id")
		owners := e.GetOwnerReferences()
		if node != p.Status.HostIP || len(addr) != 1 || addr[0].(map[string]any)["ipv4"] != p.Status.PodIP ||
			len(owners) != 1 || owners[0].UID != p.UID {
			t.Errorf("CiliumEndpoint %s/%s: node %q addressing %v owners %v; pod on %s with %s", p.Namespace, p.Name, node, addr, owners, p.Status.HostIP, p.Status.PodIP)
		}
		labels, ok := ids[id]
		if !ok {
			t.Errorf("CiliumEndpoint %s/%s names identity %d, which does not exist", p.Namespace, p.Name, id)
			continue
		}
		if labels["k8s:io.kubernetes.pod.namespace"] != p.Namespace {
			t.Errorf("identity %d of %s/%s: %v", id, p.Namespace, p.Name, labels)
		}
		// The labels policies select by are there; those Cilium leaves
		// out of identities are not.
		if v, ok := p.Labels["app"]; ok && labels["k8s:app"] != v {
			t.Errorf("identity %d of %s/%s lacks k8s:app=%s: %v", id, p.Namespace, p.Name, v, labels)
		}
		for _, k := range []string{"pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index"} {
			if _, ok := labels["k8s:"+k]; ok {
				t.Errorf("identity %d of %s/%s has %s, which Cilium leaves out: %v", id, p.Namespace, p.Name, k, labels)
			}
		}
	}
	if n := len(list(cepGVR, "app.kubernetes.io/managed-by!=cni-migrate")); n != theirs {
		t.Errorf("Cilium's own endpoints: %d before, %d after", theirs, n)
	}

	// status reports the bridge's endpoints, apart from Cilium's own.
	st := runNode(t, c, "status", "-o", "json").expect(t, 0)
	var report struct {
		PolicyBridge *struct {
			Endpoints int `json:"endpoints"`
		} `json:"policyBridge"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &report); err != nil || report.PolicyBridge == nil || report.PolicyBridge.Endpoints != len(ours) {
		t.Errorf("status -o json: policyBridge %+v (%v), want %d endpoints", report.PolicyBridge, err, len(ours))
	}

	// Nothing changed: a second round writes nothing.
	if r := runNode(t, c, "policy-bridge", "--once").expect(t, 0); strings.Contains(r.stderr, "written") || strings.Contains(r.stderr, "created") {
		t.Errorf("a second round wrote again:\n%s", r.stderr)
	}
	// An agent restart deletes the endpoints of its node: written again.
	victim := ours[0]
	if err := c.Dynamic.Resource(cepGVR).Namespace(victim.GetNamespace()).Delete(ctx, victim.GetName(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	runNode(t, c, "policy-bridge", "--once").expect(t, 0, "ciliumendpoint.cilium.io/"+victim.GetName()+" -n "+victim.GetNamespace()+" written")

	// Running (not --once), the bridge reads watched caches: an endpoint
	// deleted meanwhile is written again within a round.
	running := startPlugin(t, c, nil, "policy-bridge", "--interval", "1s")
	running.waitFor(t, "pods on the old network have their CiliumEndpoint", time.Minute)
	if err := c.Dynamic.Resource(cepGVR).Namespace(victim.GetNamespace()).Delete(ctx, victim.GetName(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	running.waitFor(t, "ciliumendpoint.cilium.io/"+victim.GetName()+" -n "+victim.GetNamespace()+" written", time.Minute)
	_ = syscall.Kill(-running.cmd.Process.Pid, syscall.SIGTERM)
	running.wait(t, time.Minute)

	// --remove leaves no endpoint of the bridge's; Cilium's own stay, and
	// so do the identities (a pod on Cilium may carry one now).
	runNode(t, c, "policy-bridge", "--remove").expect(t, 0)
	if n := len(list(cepGVR, "app.kubernetes.io/managed-by=cni-migrate")); n != 0 {
		t.Errorf("%d endpoints of the bridge's left after --remove", n)
	}
	if n := len(list(cepGVR, "app.kubernetes.io/managed-by!=cni-migrate")); n != theirs {
		t.Errorf("--remove touched Cilium's own endpoints: %d before, %d after", theirs, n)
	}

	// --deploy: the bridge and the node rules in the cluster, valid for
	// the API server; the rules are flannel's (no felix), on every node.
	// --undeploy removes them.
	dep := runNode(t, c, "policy-bridge", "--deploy", "--image", "example.com/kubectl-cni-migrate:test").expect(t, 0, "the node rules (10.244.0.0/16, felix: false)")
	for _, want := range []string{"serviceaccount/cni-migrate-policy-bridge serverside-applied", "clusterrole/cni-migrate-policy-bridge serverside-applied",
		"deployment/cni-migrate-policy-bridge serverside-applied", "configmap/cni-migrate-node-rules serverside-applied", "daemonset/cni-migrate-node-rules serverside-applied"} {
		if !strings.Contains(dep.stdout, want) {
			t.Errorf("--deploy printed no %q:\n%s", want, dep.stdout)
		}
	}
	cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cni-migrate-node-rules", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc := cm.Data["rules.sh"]; !strings.Contains(sc, `"-s 10.244.0.0/16 -d 10.245.0.0/16 -m comment --comment cni-migrate:no-nat:1 -j RETURN"`) || strings.Contains(sc, "-j cali-FORWARD\"") {
		t.Errorf("flannel's node rules:\n%s", sc)
	}
	ds, err := c.Client.AppsV1().DaemonSets("kube-system").Get(ctx, "cni-migrate-node-rules", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Spec.Template.Spec.Affinity != nil || len(ds.Spec.Template.Spec.NodeSelector) != 0 {
		t.Errorf("node rules not on every node: %+v %v", ds.Spec.Template.Spec.Affinity, ds.Spec.Template.Spec.NodeSelector)
	}
	runNode(t, c, "policy-bridge", "--undeploy").expect(t, 0)
	if _, err := c.Client.AppsV1().Deployments("kube-system").Get(ctx, "cni-migrate-policy-bridge", metav1.GetOptions{}); err == nil {
		t.Error("the bridge's Deployment is still there after --undeploy")
	}
	if _, err := c.Client.RbacV1().ClusterRoles().Get(ctx, "cni-migrate-policy-bridge", metav1.GetOptions{}); err == nil {
		t.Error("the bridge's ClusterRole is still there after --undeploy")
	}
}
