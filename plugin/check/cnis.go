package check

import (
	"fmt"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/sourcecni"
)

// Check IDs of the checks only some source CNIs get.
const (
	// IDNodeAddress: how calico-node picks each node's address once Cilium
	// adds its cilium_host interface (Calico only).
	IDNodeAddress = sourcecni.CheckNodeAddress
	// IDCalicoPolicies: Calico's own policy resources (Calico and Canal).
	IDCalicoPolicies = sourcecni.CheckCalicoPolicies
	// IDCanalMasquerade: Canal's flanneld masquerades migrated pods'
	// traffic to Canal's pods (Canal only).
	IDCanalMasquerade = sourcecni.CheckCanalMasquerade
	// IDServiceProxy: the old CNI proxies Services itself (kube-router).
	IDServiceProxy = "service-proxy"
)

// cniCheck says which provider the migration starts from.
func cniCheck(c *detect.Cluster) Result {
	if c.Problem != nil {
		return fromErr(IDCNI, c.Problem)
	}
	cni := c.CNI
	v := ""
	if cni.Version != "" {
		v = " " + cni.Version
	}
	var others []string
	for _, s := range c.CNIsSeen {
		if s.Name != cni.Name && s.Name != "cilium" {
			others = append(others, s.Name+" ("+s.Object+")")
		}
	}
	also := ""
	if len(others) > 0 {
		also = "; also seen, left alone: " + strings.Join(others, ", ")
	}
	switch {
	case !cni.Found():
		return warn(IDCNI, fmt.Sprintf("%s named by %s, not found under its usual names: network %s%s", cni.Name, cni.Override, cni.Network, also),
			"make sure --old-pod-cidr lists every pod network the old CNI uses; finalize --remove-old-cni will not know its objects")
	case cni.Embedded != "":
		return pass(IDCNI, fmt.Sprintf("%s%s found (built into %s, no DaemonSet: %s), network %s%s", cni.Name, v, cni.Embedded, embeddedEvidence(c), cni.Network, also))
	case cni.Install == "operator":
		return pass(IDCNI, fmt.Sprintf("%s%s found (Tigera operator, Installation %s; calico-node in %s), network %s%s", cni.Name, v, cni.Installation, cni.Namespace, cni.Network, also))
	}
	msg := fmt.Sprintf("%s%s found (DaemonSet %s/%s), network %s", cni.Name, v, cni.Namespace, cni.DaemonSet, cni.Network)
	if cni.Override != "" {
		msg += " (" + cni.Override + ")"
	}
	return pass(IDCNI, msg+also)
}

// embeddedEvidence is what showed a provider built into the distribution.
func embeddedEvidence(c *detect.Cluster) string {
	for _, s := range c.CNIsSeen {
		if s.Name == c.CNI.Name {
			return s.Object
		}
	}
	return "its node annotations"
}

// backendCheck judges the old CNI's encapsulation against the guide's
// tested path: a VXLAN overlay on a UDP port of its own (each CNI's
// registry entry says how).
func backendCheck(cni *detect.CNI) Result {
	if !cni.Found() {
		return warn(IDBackend, cni.Name+"'s backend was not read (named by "+cni.Override+")",
			fmt.Sprintf("make sure Cilium's tunnel port is not one %s uses (defaults: %s), else pass --tunnel-port", cni.Name, portList(cni.UDPPorts)))
	}
	src, err := sourcecni.For(cni)
	if err != nil {
		return fromErr(IDBackend, err)
	}
	return fromFinding(IDBackend, src.Checks.Backend(cni))
}

// fromFinding turns a registry check's finding into a Result; id is used
// when the finding names none.
func fromFinding(id string, f sourcecni.Finding) Result {
	if f.ID != "" {
		id = f.ID
	}
	return Result{ID: id, Status: Status(f.Level), Message: f.Message, Fix: f.Fix, Commands: f.Commands}
}

// cniChecks are the checks that only some source CNIs need: those of its
// registry entry, and the service-proxy check for a CNI that proxies
// Services. A CNI only named by --from gets none.
func cniChecks(c *detect.Cluster, p *proposal.Proposal) []Result {
	cni := c.CNI
	if cni == nil || !cni.Found() {
		return nil
	}
	src, err := sourcecni.For(cni)
	if err != nil {
		return nil // backendCheck fails with the error
	}
	var out []Result
	for _, check := range src.Checks.Extra {
		out = append(out, fromFinding("", check(c, p)))
	}
	if cni.ServiceProxy {
		out = append(out, serviceProxyCheck(c, p))
	}
	return out
}

func serviceProxyCheck(c *detect.Cluster, p *proposal.Proposal) Result {
	msg := c.CNI.Name + " proxies Services itself (--run-service-proxy, IPVS)"
	if p != nil && p.KubeProxyReplacement {
		msg += fmt.Sprintf(": Cilium replaces it (kubeProxyReplacement, API server %s:%d) for migrated pods while its IPVS rules keep serving the others until finalize", p.K8sServiceHost, p.K8sServicePort)
	} else {
		msg += " beside kube-proxy: outside the guide's tested path"
	}
	return warn(IDServiceProxy, msg,
		"keep "+c.CNI.Name+" running until finalize; afterwards reboot the nodes to clear its IPVS services and kube-dummy-if")
}

func portList(ports []int) string {
	if len(ports) == 0 {
		return "none"
	}
	var s []string
	for _, p := range ports {
		s = append(s, fmt.Sprint(p))
	}
	return strings.Join(s, ", ")
}
