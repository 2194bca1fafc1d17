package proposal

import (
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/values"
)

// GenerateValues resolves the proposal for the cluster, refuses an unsafe
// one, and generates the initial and final values with the user's on top.
func GenerateValues(c *detect.Cluster, opts Options, user map[string]any, userFile string) (*Proposal, *values.Doc, *values.Doc, []string, error) {
	p, err := Propose(c, opts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if unsafe := Safety(c, p); len(unsafe) > 0 {
		return nil, nil, nil, nil, unsafe[0]
	}
	in := values.Input{
		Version:              p.Version,
		PodCIDR:              p.PodCIDR,
		MaskSize:             p.MaskSize,
		TunnelProtocol:       p.TunnelProtocol,
		TunnelPort:           p.TunnelPort,
		ClusterName:          p.ClusterName,
		KubeProxyReplacement: p.KubeProxyReplacement,
		K8sServiceHost:       p.K8sServiceHost,
		K8sServicePort:       p.K8sServicePort,
		PortMapChaining:      p.PortMapChaining,
		OperatorReplicas:     p.OperatorReplicas,
		User:                 user,
		UserFile:             userFile,
	}
	in.Strategy, in.IPv4NativeRoutingCIDR = p.Strategy, p.IPv4NativeRoutingCIDR
	in.CNIConfPath, in.CNIBinPath = p.CNIConfPath, p.CNIBinPath
	in.PolicyBridge, in.PolicyAudit = p.PolicyBridge, p.PolicyAudit
	initial, final, warnings, err := values.Generate(in)
	return p, initial, final, warnings, err
}
