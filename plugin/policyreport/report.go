package policyreport

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// Observed is a verdict as one node's agent printed it, when it was read.
type Observed struct {
	Node string
	At   time.Time
	Verdict
}

// Endpoint is a Cilium endpoint of a node: the pod it is.
type Endpoint struct {
	// NodeIP is the node's address as the endpoint records it
	// (status.networking.node); ID its endpoint ID there.
	NodeIP    string
	ID        int
	Namespace string
	Name      string
}

// Inventory is what the report names the flows' ends with.
type Inventory struct {
	// NodeIPs maps each agent's node name to its address.
	NodeIPs   map[string]string
	Endpoints []Endpoint
	Pods      []corev1.Pod
	// NodeAddrs maps each node's name to its InternalIP (as detection
	// read them).
	NodeAddrs map[string]string
	Policies  []networkingv1.NetworkPolicy
}

// Flow is one kind of connection the policies deny: the pod whose policy
// denies it, the other end, the destination port, and how often and when
// it was seen.
type Flow struct {
	// Direction is "ingress" (Pod is the server) or "egress" (Pod is
	// the client).
	Direction string `json:"direction"`
	Pod       string `json:"pod"`
	Node      string `json:"node"`
	// Peer is the other end: a pod (namespace/name), "node NAME", or a
	// reserved identity and its address.
	Peer     string `json:"peer"`
	PeerAddr string `json:"peerAddress"`
	// Port is the destination port and protocol ("5432/tcp", "icmp").
	Port  string    `json:"port"`
	Count int       `json:"count"`
	First time.Time `json:"firstSeen"`
	Last  time.Time `json:"lastSeen"`
	// Action is "audit" (audit mode: let through, reported) or "deny"
	// (dropped now).
	Action string `json:"action"`
	// Policies are the NetworkPolicies that select Pod in Direction (one
	// of them, at least, leaves the flow out).
	Policies []string `json:"policies"`
}

// Report is the output of `kubectl cni-migrate policy-report`.
type Report struct {
	metav1.TypeMeta `json:",inline"`
	// Since and Until bound the time the agents were read.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Nodes are those whose agents were read; Verdicts how many verdicts
	// they printed, Denied how many of them deny.
	Nodes    []string `json:"nodes"`
	Verdicts int      `json:"verdicts"`
	Denied   int      `json:"denied"`
	Flows    []Flow   `json:"flows"`
	// NotAudited counts the pods that run on no read agent's endpoints
	// (still on the old network): their policies were not judged.
	NotAudited int `json:"podsNotAudited"`
}

// DeepCopyObject makes Report a runtime.Object for kubectl's printers.
func (r *Report) DeepCopyObject() runtime.Object {
	data, err := json.Marshal(r)
	if err != nil {
		panic(err) // Report is plain data: marshalling cannot fail
	}
	out := &Report{}
	if err := json.Unmarshal(data, out); err != nil {
		panic(err)
	}
	return out
}

// reserved names Cilium's reserved identities.
var reserved = map[uint32]string{
	1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init",
	6: "remote-node", 7: "kube-apiserver", 8: "ingress", 9: "world-ipv4", 10: "world-ipv6",
}

// Build turns what the agents printed into the report.
func Build(obs []Observed, inv Inventory, since, until time.Time) Report {
	r := Report{TypeMeta: metav1.TypeMeta{APIVersion: "cni-migrate.io/v1alpha1", Kind: "PolicyReport"}, Since: since.UTC(), Until: until.UTC(), Flows: []Flow{}}
	for n := range inv.NodeIPs {
		r.Nodes = append(r.Nodes, n)
	}
	sort.Strings(r.Nodes)

	eps := map[string]Endpoint{}
	audited := map[string]bool{}
	for _, e := range inv.Endpoints {
		eps[fmt.Sprintf("%s/%d", e.NodeIP, e.ID)] = e
		audited[e.Namespace+"/"+e.Name] = true
	}
	byIP := map[netip.Addr]string{}
	podLabels := map[string]map[string]string{}
	for i := range inv.Pods {
		p := &inv.Pods[i]
		podLabels[p.Namespace+"/"+p.Name] = p.Labels
		if p.Spec.HostNetwork {
			continue
		}
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err == nil {
				byIP[a] = p.Namespace + "/" + p.Name
			}
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && !audited[p.Namespace+"/"+p.Name] {
			r.NotAudited++
		}
	}
	for name, addr := range inv.NodeAddrs {
		if ip, err := netip.ParseAddr(addr); err == nil {
			byIP[ip] = "node " + name
		}
	}

	type key struct{ dir, pod, peer, port, action string }
	flows := map[key]*Flow{}
	for _, o := range obs {
		r.Verdicts++
		if !o.Denied() {
			continue
		}
		r.Denied++
		ep, ok := eps[fmt.Sprintf("%s/%d", inv.NodeIPs[o.Node], o.Endpoint)]
		pod := fmt.Sprintf("endpoint %d on %s", o.Endpoint, o.Node)
		if ok {
			pod = ep.Namespace + "/" + ep.Name
		}
		dir, remote := "egress", o.Dst.Addr()
		if o.Ingress {
			dir, remote = "ingress", o.Src.Addr()
		}
		peer := byIP[remote]
		if name, ok := reserved[o.Remote]; ok && (peer == "" || strings.HasPrefix(peer, "node ")) {
			if peer == "" {
				peer = name
			} else {
				peer += " (" + name + ")"
			}
		}
		if peer == "" {
			peer = fmt.Sprintf("identity %d", o.Remote)
		}
		port := o.L4
		if o.Dst.Port() != 0 {
			port = fmt.Sprintf("%d/%s", o.Dst.Port(), o.L4)
		}
		k := key{dir, pod, peer, port, o.Action}
		f := flows[k]
		if f == nil {
			f = &Flow{Direction: dir, Pod: pod, Node: o.Node, Peer: peer, PeerAddr: remote.String(), Port: port, First: o.At.UTC(), Action: o.Action}
			if ok {
				f.Policies = selecting(inv.Policies, ep.Namespace, podLabels[pod], dir)
			}
			flows[k] = f
		}
		f.Count++
		if o.At.Before(f.First) {
			f.First = o.At.UTC()
		}
		if o.At.After(f.Last) {
			f.Last = o.At.UTC()
		}
	}
	for _, f := range flows {
		if f.Policies == nil {
			f.Policies = []string{}
		}
		r.Flows = append(r.Flows, *f)
	}
	sort.Slice(r.Flows, func(i, j int) bool {
		a, b := r.Flows[i], r.Flows[j]
		if a.Pod != b.Pod {
			return a.Pod < b.Pod
		}
		if a.Direction != b.Direction {
			return a.Direction < b.Direction
		}
		if a.Peer != b.Peer {
			return a.Peer < b.Peer
		}
		return a.Port < b.Port
	})
	return r
}

// selecting names the NetworkPolicies of namespace ns that select a pod
// with these labels for the direction (policyTypes, or Kubernetes'
// default: Ingress always, Egress when the policy has egress rules).
func selecting(policies []networkingv1.NetworkPolicy, ns string, podLabels map[string]string, dir string) []string {
	out := []string{}
	for i := range policies {
		np := &policies[i]
		if np.Namespace != ns {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(labels.Set(podLabels)) {
			continue
		}
		if appliesTo(np, dir) {
			out = append(out, np.Namespace+"/"+np.Name)
		}
	}
	return out
}

func appliesTo(np *networkingv1.NetworkPolicy, dir string) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return dir == "ingress" || len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		if strings.EqualFold(string(t), dir) {
			return true
		}
	}
	return false
}
