package detect

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// PolicyPort is a port of a NetworkPolicy rule that Cilium may read
// differently from the CNIs it replaces (check's network-policy-compat): a
// range (endPort), or a port given by name.
type PolicyPort struct {
	Policy NamespacedName `json:"policy"`
	// Direction is "ingress" or "egress".
	Direction string `json:"direction"`
	Protocol  string `json:"protocol"`
	// Port is the number, or the name; EndPort ends a range.
	Port    string `json:"port"`
	EndPort int32  `json:"endPort,omitempty"`
}

// Named says whether the port is given by name.
func (p PolicyPort) Named() bool {
	for _, r := range p.Port {
		if r < '0' || r > '9' {
			return true
		}
	}
	return false
}

// NamedPort is a container port name of the cluster's pods with one of
// its numbers: how many pods give the name that number, and the first.
type NamedPort struct {
	Name     string         `json:"name"`
	Protocol string         `json:"protocol"`
	Port     int32          `json:"port"`
	Pods     int            `json:"pods"`
	Example  NamespacedName `json:"example"`
}

// policyPortsOf lists the ranges and named ports of np's rules.
func policyPortsOf(np *networkingv1.NetworkPolicy) []PolicyPort {
	var out []PolicyPort
	name := NamespacedName{np.Namespace, np.Name}
	add := func(dir string, ports []networkingv1.NetworkPolicyPort) {
		for _, p := range ports {
			if p.Port == nil {
				continue
			}
			proto := "TCP"
			if p.Protocol != nil {
				proto = string(*p.Protocol)
			}
			pp := PolicyPort{Policy: name, Direction: dir, Protocol: proto, Port: p.Port.String()}
			if p.EndPort != nil {
				pp.EndPort = *p.EndPort
			}
			if pp.EndPort != 0 || pp.Named() {
				out = append(out, pp)
			}
		}
	}
	for _, r := range np.Spec.Ingress {
		add("ingress", r.Ports)
	}
	for _, r := range np.Spec.Egress {
		add("egress", r.Ports)
	}
	return out
}

// egressPortNames are the port names egress rules use.
func egressPortNames(ports []PolicyPort) map[string]bool {
	names := map[string]bool{}
	for _, p := range ports {
		if p.Direction == "egress" && p.Named() {
			names[p.Port] = true
		}
	}
	return names
}

// namedPortsOf counts, for each name in names, the numbers the pods'
// containers give it, by protocol, in a stable order.
func namedPortsOf(pods []corev1.Pod, names map[string]bool) []NamedPort {
	if len(names) == 0 {
		return nil
	}
	type key struct {
		name, proto string
		port        int32
	}
	seen := map[key]*NamedPort{}
	for i := range pods {
		p := &pods[i]
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
			for _, cp := range c.Ports {
				if !names[cp.Name] {
					continue
				}
				proto := string(cp.Protocol)
				if proto == "" {
					proto = "TCP"
				}
				k := key{cp.Name, proto, cp.ContainerPort}
				if seen[k] == nil {
					seen[k] = &NamedPort{Name: cp.Name, Protocol: proto, Port: cp.ContainerPort, Example: NamespacedName{p.Namespace, p.Name}}
				}
				seen[k].Pods++
			}
		}
	}
	out := make([]NamedPort, 0, len(seen))
	for _, n := range seen {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		return a.Port < b.Port
	})
	return out
}
