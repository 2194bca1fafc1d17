package migrate

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestProbeName(t *testing.T) {
	long := strings.Repeat("node.", 40) + "x"
	for _, node := range []string{"worker-1", "ip-10-0-1-5.eu-west-1.compute.internal", long, strings.Repeat("a", 45), strings.Repeat("a", 46)} {
		n := ProbeName(node)
		if len(n) > 63 {
			t.Errorf("ProbeName(%q) = %q is longer than 63", node, n)
		}
		if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
			t.Errorf("ProbeName(%q) = %q: %v", node, n, msgs)
		}
		if msgs := validation.IsValidLabelValue(n); len(msgs) > 0 {
			t.Errorf("ProbeName(%q) = %q is not a label value: %v", node, n, msgs)
		}
		if ProbeName(node) != n {
			t.Error("not stable")
		}
	}
	if ProbeName(long) == ProbeName(long+"y") {
		t.Error("long names collide")
	}
	if ProbeName("worker-1") != "cni-migrate-probe-worker-1" {
		t.Error(ProbeName("worker-1"))
	}
}

func TestProbeJob(t *testing.T) {
	j := ProbeJob("kube-system", "worker-1", "img:1", 90*time.Second, "")
	ps := j.Spec.Template.Spec
	if ps.NodeName != "worker-1" || ps.RestartPolicy != corev1.RestartPolicyNever || len(ps.Tolerations) != 1 ||
		ps.Tolerations[0].Operator != corev1.TolerationOpExists || ps.Tolerations[0].Key != "" || ps.Tolerations[0].Effect != "" {
		t.Errorf("pod spec %+v", ps)
	}
	if *j.Spec.BackoffLimit != 0 || *j.Spec.ActiveDeadlineSeconds != 90 || ps.Containers[0].Image != "img:1" {
		t.Errorf("job spec %+v", j.Spec)
	}
	if !strings.Contains(strings.Join(ps.Containers[0].Command, " "), "KUBERNETES_SERVICE_HOST") {
		t.Error("probe does not reach the API server")
	}
}

func TestInPool(t *testing.T) {
	pool, err := ParsePool([]string{"10.245.0.0/16", " 172.20.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{
		"10.245.1.2": true, "10.244.1.2": false, "172.20.9.9": true, "": false, "garbage": false,
		"::ffff:10.245.0.1": true, "fd00::1": false,
	} {
		if InPool(ip, pool) != want {
			t.Errorf("InPool(%q) = %v", ip, !want)
		}
	}
	if _, err := ParsePool([]string{"10.245.0.0"}); err == nil {
		t.Error("ParsePool accepted an address")
	}
	if poolString([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}) != "10.0.0.0/8" {
		t.Error("poolString")
	}
}
