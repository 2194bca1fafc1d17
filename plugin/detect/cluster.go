package detect

// Cluster is what detection found. Its JSON form is part of `plan -o json`
// (see docs/plan-schema.md): add fields, never rename or remove them.
type Cluster struct {
	// Name is the cluster name Cilium will be given (cluster.name).
	Name       string `json:"name"`
	NameSource string `json:"nameSource"`
	// KubernetesVersion is the API server's gitVersion.
	KubernetesVersion string `json:"kubernetesVersion"`
	// APIServer is the server URL from the kubeconfig.
	APIServer string `json:"apiServer"`

	Nodes []Node `json:"nodes"`
	// Distribution is the Kubernetes distribution recognised from the
	// nodes (k3s, RKE2); nil for any other.
	Distribution *Distribution `json:"distribution,omitempty"`

	// CNI is the network provider to migrate from; nil when none supported
	// was found (then Problem says why).
	CNI *CNI `json:"cni,omitempty"`
	// CNIsSeen lists every network provider recognised, supported or not.
	CNIsSeen []SeenCNI `json:"cnisSeen"`
	// Problem is set when the cluster cannot be migrated by this version.
	Problem error `json:"-"`

	// PodCIDRs are the pod networks in use, each with where it was read.
	PodCIDRs []SourcedCIDR `json:"podCIDRs"`
	// ServiceCIDRs are the service networks, with where they were read.
	ServiceCIDRs []SourcedCIDR `json:"serviceCIDRs"`

	KubeProxy KubeProxy `json:"kubeProxy"`
	Cilium    Cilium    `json:"cilium"`

	NetworkPolicies []NamespacedName `json:"networkPolicies"`
	// PolicyIPBlocks are the NetworkPolicies' ipBlock peers.
	PolicyIPBlocks []PolicyIPBlock `json:"policyIPBlocks,omitempty"`
	// PolicyPorts are the NetworkPolicies' port ranges and named ports;
	// NamedPorts the numbers the cluster's pods give the names egress
	// rules use.
	PolicyPorts []PolicyPort `json:"policyPorts,omitempty"`
	NamedPorts  []NamedPort  `json:"namedPorts,omitempty"`
	// CalicoPolicies are Calico's own NetworkPolicies and
	// GlobalNetworkPolicies (namespace ""), which Cilium does not read.
	CalicoPolicies []NamespacedName `json:"calicoPolicies,omitempty"`
	// BlockingPDBs allow no disruption right now: draining a node that runs
	// one of their pods waits until the timeout.
	BlockingPDBs []PDB `json:"blockingPDBs"`
}

// Node is one node as the migration sees it.
type Node struct {
	Name          string   `json:"name"`
	InternalIP    string   `json:"internalIP"`
	PodCIDRs      []string `json:"podCIDRs"`
	ControlPlane  bool     `json:"controlPlane"`
	Ready         bool     `json:"ready"`
	Unschedulable bool     `json:"unschedulable"`
	// FlannelBackend is the node's flannel.alpha.coreos.com/backend-type
	// annotation, when flannel has run there.
	FlannelBackend  string `json:"flannelBackend,omitempty"`
	FlannelPublicIP string `json:"flannelPublicIP,omitempty"`
}

// CNI describes the network provider to migrate from.
type CNI struct {
	// Name is the provider: flannel, canal, calico, weave or kube-router.
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	DaemonSet string `json:"daemonSet"`
	ConfigMap string `json:"configMap,omitempty"`
	// Version is the image tag of its main container, when it has one.
	Version string `json:"version,omitempty"`
	// Network is the pod network the provider allocates from (several
	// comma-separated when it has several pools).
	Network string `json:"network"`
	// IPAM says who hands out pod addresses: "kubernetes" (node podCIDRs),
	// "calico" (Calico IPAM blocks from its IP pools), "weave" (Weave's
	// IPALLOC_RANGE), "unknown".
	IPAM    string  `json:"ipam"`
	Backend Backend `json:"backend"`
	// EnforcesPolicy says whether the provider enforces NetworkPolicy.
	EnforcesPolicy bool `json:"enforcesPolicy"`
	// IPMasq is flanneld's --ip-masq (flannel, and Canal through the
	// FLANNELD_IP_MASQ variable it sets from canal-config): flannel then
	// masquerades everything from its network that leaves it, Cilium's pods
	// included (docs/snat.md). nil when not read.
	IPMasq *bool `json:"ipMasq,omitempty"`
	// PortMap says the CNI's config chains the portmap plugin, which
	// serves pods' hostPorts today (read from the CNI config its installer
	// writes: flannel's cni-conf.json, Calico's and Canal's
	// cni_network_config, kube-router's cni-conf.json).
	PortMap bool `json:"portMap,omitempty"`
	// FlannelContainer is flanneld's container in the DaemonSet (flannel
	// and Canal), for advice that edits its flags; nil when not found.
	FlannelContainer *ContainerRef `json:"-"`

	// Install is how Calico was installed: "manifest" (calico-node
	// DaemonSet and calico-config from calico.yaml) or "operator" (the
	// Tigera operator and an Installation).
	Install string `json:"install,omitempty"`
	// Installation names the operator.tigera.io Installation.
	Installation string `json:"installation,omitempty"`
	// Pools are Calico's IP pools.
	Pools []IPPool `json:"pools,omitempty"`
	// Routing is how pod routes are shared between nodes besides any
	// tunnel: "bgp" (Calico's BIRD, kube-router --run-router).
	Routing string `json:"routing,omitempty"`
	// UDPPorts are every UDP port the provider's datapath uses on the nodes;
	// Cilium's tunnel port must be none of them.
	UDPPorts []int `json:"udpPorts,omitempty"`
	// NodeAddressAutodetection is how calico-node picks each node's IPv4
	// address (IP_AUTODETECTION_METHOD, or the Installation's
	// nodeAddressAutodetectionV4), as Calico writes it.
	NodeAddressAutodetection string `json:"nodeAddressAutodetection,omitempty"`
	// Dataplane is Calico's Linux dataplane: iptables, bpf, nftables, vpp.
	Dataplane string `json:"dataplane,omitempty"`
	// FelixMarkMask is felix's iptablesMarkMask when set (FelixConfiguration
	// or FELIX_IPTABLESMARKMASK); 0 for felix's default, 0xffff0000.
	FelixMarkMask uint32 `json:"felixMarkMask,omitempty"`
	// ServiceProxy is true when the provider proxies Services itself
	// (kube-router --run-service-proxy).
	ServiceProxy bool `json:"serviceProxy,omitempty"`
	// Override names the flags that chose or described the provider
	// (--from, --old-pod-cidr) instead of detection.
	Override string `json:"override,omitempty"`
	// ArchDaemonSets are all the per-architecture DaemonSets of an old
	// flannel install (kube-flannel-ds-amd64, -arm64, ...), DaemonSet
	// among them; empty for one DaemonSet.
	ArchDaemonSets []string `json:"archDaemonSets,omitempty"`
	// Embedded names the distribution whose binary runs the provider, when
	// it has no DaemonSet of its own ("k3s" for k3s's flannel).
	Embedded string `json:"embedded,omitempty"`
}

// Found reports whether detection found the provider (a DaemonSet, an
// Installation or a distribution running it), not only --from naming it.
func (c *CNI) Found() bool {
	return c.DaemonSet != "" || c.Installation != "" || c.Embedded != ""
}

// IPPool is one of Calico's IP pools.
type IPPool struct {
	Name string `json:"name"`
	CIDR string `json:"cidr"`
	// Encapsulation: vxlan, vxlan-cross-subnet, ipip, ipip-cross-subnet or
	// none (routed by BGP, or not at all).
	Encapsulation string `json:"encapsulation"`
	BlockSize     int    `json:"blockSize,omitempty"`
	NATOutgoing   bool   `json:"natOutgoing"`
	Disabled      bool   `json:"disabled,omitempty"`
	// Source says where the pool was read: an IPPool object, the
	// Installation, or calico-node's environment (the pool it creates when
	// it first starts).
	Source string `json:"source"`
}

// ContainerRef is a container of a DaemonSet's pod template: its name,
// index and command line.
type ContainerRef struct {
	Name          string
	Index         int
	Command, Args []string
}

// Backend is the provider's encapsulation.
type Backend struct {
	// Type as the provider names it: vxlan, host-gw, wireguard, udp, ...
	Type string `json:"type"`
	// Port is the UDP port of the tunnel, 0 when the backend has none.
	Port int `json:"port,omitempty"`
	// PortDefaulted is true when Port is the provider's default, not set.
	PortDefaulted bool `json:"portDefaulted,omitempty"`
	VNI           int  `json:"vni,omitempty"`
	MTU           int  `json:"mtu,omitempty"`
	// Encryption names the provider's encryption of pod traffic, if on.
	Encryption string `json:"encryption,omitempty"`
}

// SeenCNI is a network provider recognised in the cluster.
type SeenCNI struct {
	Name   string `json:"name"`
	Object string `json:"object"`
}

// SourcedCIDR is a network and where it was read.
type SourcedCIDR struct {
	CIDR   string `json:"cidr"`
	Source string `json:"source"`
	// Guessed is true when the CIDR is an inference, not a setting.
	Guessed bool `json:"guessed,omitempty"`
}

// KubeProxy describes kube-proxy.
type KubeProxy struct {
	Present bool `json:"present"`
	// Kind is "DaemonSet" or "static pods".
	Kind        string `json:"kind,omitempty"`
	Object      string `json:"object,omitempty"`
	Mode        string `json:"mode,omitempty"`
	ClusterCIDR string `json:"clusterCIDR,omitempty"`
	// APIServer is the API server URL of kube-proxy's own kubeconfig
	// (kubeadm's kube-proxy ConfigMap, kubeconfig.conf): an address every
	// node reaches without the kubernetes Service, which kube-proxy
	// itself provides.
	APIServer string `json:"apiServer,omitempty"`
}

// Cilium describes an installed Cilium, if any.
type Cilium struct {
	Installed bool   `json:"installed"`
	Namespace string `json:"namespace,omitempty"`
	DaemonSet string `json:"daemonSet,omitempty"`
	Version   string `json:"version,omitempty"`
	// MigrationMode is true when Cilium runs beside the old CNI with
	// custom-cni-conf on (the state after installing values-initial.yaml).
	MigrationMode bool     `json:"migrationMode"`
	PodCIDRs      []string `json:"podCIDRs,omitempty"`
	TunnelPort    int      `json:"tunnelPort,omitempty"`
	// TunnelProtocol is cilium-config's tunnel-protocol (or the older tunnel).
	TunnelProtocol string `json:"tunnelProtocol,omitempty"`
	// MaskSize is cilium-config's cluster-pool-ipv4-mask-size.
	MaskSize int `json:"clusterPoolMaskSize,omitempty"`
	// ChainingMode is cilium-config's cni-chaining-mode ("portmap" when
	// values set cni.chainingMode=portmap for hostPorts).
	ChainingMode string `json:"cniChainingMode,omitempty"`
	// PolicyEnforcement is cilium-config's enable-policy ("default",
	// "always" or "never"; empty when unset, which Cilium reads as
	// "default").
	PolicyEnforcement string `json:"policyEnforcement,omitempty"`
	// PolicyAudit is cilium-config's policy-audit-mode: Cilium reports the
	// drops its policies would make and lets the packets through.
	PolicyAudit   bool  `json:"policyAudit,omitempty"`
	AgentsReady   int32 `json:"agentsReady"`
	AgentsDesired int32 `json:"agentsDesired"`
}

// PDB is a PodDisruptionBudget that blocks evictions.
type PDB struct {
	Namespace    string `json:"namespace"`
	Name         string `json:"name"`
	ExpectedPods int32  `json:"expectedPods"`
	// DisruptionsAllowed is 0 for a blocking PDB.
	DisruptionsAllowed int32 `json:"disruptionsAllowed"`
}

// ControlPlaneNodes returns the names of the control-plane nodes.
func (c *Cluster) ControlPlaneNodes() []string {
	var out []string
	for _, n := range c.Nodes {
		if n.ControlPlane {
			out = append(out, n.Name)
		}
	}
	return out
}
