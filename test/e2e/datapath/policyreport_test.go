package datapath

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab"
)

// reportFlow is the part of policy-report's flows the lab reads.
type reportFlow struct {
	Direction, Pod, Peer, Port, Action string
	Count                              int
	Policies                           []string
}

// checkPolicyReport reads `policy-report -o json` (the JSON between the
// progress lines on stderr) and checks it against the lab's Kubernetes
// policy flows: each denied one is there, audited, and no allowed one is.
func checkPolicyReport(t testing.TB, out string) {
	t.Helper()
	start, end := strings.Index(out, "\n{"), strings.LastIndex(out, "\n}")
	if start < 0 || end < start {
		t.Fatalf("policy-report printed no JSON:\n%s", out)
	}
	var rep struct {
		Kind  string       `json:"kind"`
		Flows []reportFlow `json:"flows"`
	}
	if err := json.Unmarshal([]byte(out[start+1:end+2]), &rep); err != nil || rep.Kind != "PolicyReport" {
		t.Fatalf("policy-report JSON (%v):\n%s", err, out)
	}
	pns, mns := lab.PolicyNamespace+"/", lab.MonitorNamespace+"/"
	find := func(dir, pod, peer, port string) *reportFlow {
		for i, f := range rep.Flows {
			if f.Direction == dir && strings.HasPrefix(f.Pod, pod) && strings.HasPrefix(f.Peer, peer) && f.Port == port {
				return &rep.Flows[i]
			}
		}
		return nil
	}
	for _, want := range []struct {
		flow, dir, pod, peer, port string
		policy                     string
	}{
		{"np-pod-selector/server", "ingress", pns + "server-", pns + "server-", "8080/tcp", pns + "default-deny-ingress"},
		{"np-namespace-selector/client", "ingress", pns + "server-", pns + "client-", "8081/tcp", pns + "default-deny-ingress"},
		{"np-egress/client", "egress", pns + "client-", mns, "8080/tcp", pns + "client-egress"},
	} {
		f := find(want.dir, want.pod, want.peer, want.port)
		switch {
		case f == nil:
			t.Errorf("policy-report does not name the denied flow %s (%s of %s* from/to %s*, %s):\n%s", want.flow, want.dir, want.pod, want.peer, want.port, out)
		case f.Action != "audit" || f.Count == 0:
			t.Errorf("policy-report: %s %+v, want audited", want.flow, *f)
		case !contains(f.Policies, want.policy):
			t.Errorf("policy-report: %s names the policies %v, want %s among them", want.flow, f.Policies, want.policy)
		}
	}
	for _, allowed := range []struct{ flow, pod, peer, port string }{
		{"np-pod-selector/client", pns + "server-", pns + "client-", "8080/tcp"},
		{"np-namespace-selector/monitor", pns + "server-", mns, "8081/tcp"},
	} {
		if f := find("ingress", allowed.pod, allowed.peer, allowed.port); f != nil {
			t.Errorf("policy-report names %s, which the policies allow: %+v", allowed.flow, *f)
		}
	}
	t.Logf("policy-report: %d flows the policies will deny at finalize", len(rep.Flows))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
