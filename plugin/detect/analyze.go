package detect

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Well-known names.
const (
	LabelControlPlane = "node-role.kubernetes.io/control-plane"
	labelMaster       = "node-role.kubernetes.io/master"

	annFlannelBackendType = "flannel.alpha.coreos.com/backend-type"
	annFlannelPublicIP    = "flannel.alpha.coreos.com/public-ip"
	annFlannelBackendData = "flannel.alpha.coreos.com/backend-data"
)

// Analyze turns a Snapshot into a Cluster. It never fails: what it cannot
// make sense of is left out, and a cluster it cannot migrate gets Problem.
func Analyze(s *Snapshot) *Cluster { return AnalyzeWith(s, Override{}) }

// AnalyzeWith is Analyze with the user's word on the old CNI (--from,
// --old-pod-cidr) over detection's.
func AnalyzeWith(s *Snapshot, ov Override) *Cluster {
	c := &Cluster{
		KubernetesVersion: s.ServerVersion,
		APIServer:         s.APIServerURL,
		Nodes:             []Node{},
		CNIsSeen:          []SeenCNI{},
		PodCIDRs:          []SourcedCIDR{},
		ServiceCIDRs:      []SourcedCIDR{},
		NetworkPolicies:   s.NetworkPolicies,
		PolicyIPBlocks:    s.PolicyIPBlocks,
		PolicyPorts:       s.PolicyPorts,
		NamedPorts:        s.NamedPorts,
		BlockingPDBs:      []PDB{},
	}
	if c.NetworkPolicies == nil {
		c.NetworkPolicies = []NamespacedName{}
	}
	kubeadm := parseKubeadm(s.ConfigMap("kube-system", "kubeadm-config"))

	c.Name, c.NameSource = kubeadm.ClusterName, "kubeadm-config ClusterConfiguration.clusterName"
	if c.Name == "" {
		c.Name, c.NameSource = s.KubeconfigCluster, "kubeconfig cluster name"
	}

	for i := range s.Nodes {
		c.Nodes = append(c.Nodes, analyzeNode(&s.Nodes[i]))
	}
	sort.Slice(c.Nodes, func(i, j int) bool { return c.Nodes[i].Name < c.Nodes[j].Name })
	c.Distribution = analyzeDistribution(s)

	var cniCIDRs []SourcedCIDR
	c.CNI, cniCIDRs, c.Problem = chooseProvider(s, c, findProviders(s, c), ov)
	if d, ok := detectorOf(c.CNI); ok && d.CalicoResources {
		c.CalicoPolicies = s.CalicoPolicies
	}

	// Pod networks: the CNI's own, then what the control plane says.
	addCIDR := func(list *[]SourcedCIDR, cidr, source string, guessed bool) {
		for _, p := range strings.Split(cidr, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			for _, have := range *list {
				if have.CIDR == p {
					return
				}
			}
			*list = append(*list, SourcedCIDR{CIDR: p, Source: source, Guessed: guessed})
		}
	}
	for _, pc := range cniCIDRs {
		addCIDR(&c.PodCIDRs, pc.CIDR, pc.Source, pc.Guessed)
	}
	if v := staticPodFlag(s.SystemPods, "kube-controller-manager", "--cluster-cidr"); v != "" {
		addCIDR(&c.PodCIDRs, v, "kube-controller-manager --cluster-cidr", false)
	}
	addCIDR(&c.PodCIDRs, kubeadm.PodSubnet, "kubeadm-config networking.podSubnet", false)
	for _, n := range c.Nodes {
		for _, pc := range n.PodCIDRs {
			if !coveredBy(pc, c.PodCIDRs) {
				addCIDR(&c.PodCIDRs, pc, "node "+n.Name+" spec.podCIDRs", false)
			}
		}
	}

	// A provider that takes pod addresses from the nodes' podCIDRs and has
	// no network setting of its own (kube-router) uses the control plane's.
	if c.CNI != nil && c.CNI.Network == "" && c.CNI.IPAM == "kubernetes" {
		var nets []string
		for _, pc := range c.PodCIDRs {
			nets = append(nets, pc.CIDR)
		}
		c.CNI.Network = strings.Join(nets, ",")
	}

	// Service networks, from the most to the least authoritative source.
	switch {
	case len(s.ServiceCIDRs) > 0:
		for _, sc := range s.ServiceCIDRs {
			addCIDR(&c.ServiceCIDRs, sc, "ServiceCIDR objects", false)
		}
	case staticPodFlag(s.SystemPods, "kube-apiserver", "--service-cluster-ip-range") != "":
		addCIDR(&c.ServiceCIDRs, staticPodFlag(s.SystemPods, "kube-apiserver", "--service-cluster-ip-range"),
			"kube-apiserver --service-cluster-ip-range", false)
	case kubeadm.ServiceSubnet != "":
		addCIDR(&c.ServiceCIDRs, kubeadm.ServiceSubnet, "kubeadm-config networking.serviceSubnet", false)
	case c.Distribution != nil && c.Distribution.Name == DistroK3s && c.Distribution.Flag("service-cidr") != "":
		addCIDR(&c.ServiceCIDRs, c.Distribution.Flag("service-cidr"), "k3s --service-cidr (k3s.io/node-args)", false)
	case c.Distribution != nil && c.Distribution.Name == DistroK3s:
		addCIDR(&c.ServiceCIDRs, K3sDefaultServiceCIDR, "k3s's default --service-cidr (not in k3s.io/node-args)", false)
	case s.KubernetesServiceIP != "":
		if a, err := netip.ParseAddr(s.KubernetesServiceIP); err == nil && a.Is4() {
			// The first address of the range: assume the widest range the
			// API server allows for IPv4 (a /12) so nothing inside it is used.
			p, _ := a.Prefix(12)
			addCIDR(&c.ServiceCIDRs, p.String(), "guessed from the kubernetes Service ClusterIP "+s.KubernetesServiceIP, true)
		}
	}

	c.KubeProxy = analyzeKubeProxy(s)
	if d := c.Distribution; !c.KubeProxy.Present && d != nil && d.Name == DistroK3s && d.Flag("disable-kube-proxy") != "true" {
		// k3s runs kube-proxy in its own process unless --disable-kube-proxy.
		c.KubeProxy = KubeProxy{Present: true, Kind: KubeProxyEmbeddedK3s, Object: "(the k3s process on every node)", Mode: "iptables", ClusterCIDR: d.Flag("cluster-cidr")}
		if c.KubeProxy.ClusterCIDR == "" {
			c.KubeProxy.ClusterCIDR = K3sDefaultClusterCIDR
		}
	}

	for _, p := range s.PDBs {
		if p.Status.DisruptionsAllowed == 0 && p.Status.ExpectedPods > 0 {
			c.BlockingPDBs = append(c.BlockingPDBs, PDB{
				Namespace: p.Namespace, Name: p.Name,
				ExpectedPods: p.Status.ExpectedPods, DisruptionsAllowed: p.Status.DisruptionsAllowed,
			})
		}
	}
	return c
}

func analyzeNode(n *corev1.Node) Node {
	out := Node{
		Name:          n.Name,
		PodCIDRs:      n.Spec.PodCIDRs,
		Unschedulable: n.Spec.Unschedulable,
	}
	if len(out.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
		out.PodCIDRs = []string{n.Spec.PodCIDR}
	}
	if out.PodCIDRs == nil {
		out.PodCIDRs = []string{}
	}
	_, cp := n.Labels[LabelControlPlane]
	_, master := n.Labels[labelMaster]
	out.ControlPlane = cp || master
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && out.InternalIP == "" {
			out.InternalIP = a.Address
		}
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			out.Ready = cond.Status == corev1.ConditionTrue
		}
	}
	out.FlannelBackend = n.Annotations[annFlannelBackendType]
	out.FlannelPublicIP = n.Annotations[annFlannelPublicIP]
	return out
}

func isCiliumDS(ds *appsv1.DaemonSet) bool {
	if ds.Labels["k8s-app"] == "cilium" || ds.Spec.Selector != nil && ds.Spec.Selector.MatchLabels["k8s-app"] == "cilium" {
		return true
	}
	return ds.Name == "cilium"
}

func mountedConfigMaps(ds *appsv1.DaemonSet) []string {
	var out []string
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			out = append(out, v.ConfigMap.Name)
		}
	}
	return out
}

// imageTag returns the tag of an image reference, without any digest.
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return ""
	}
	return image[i+1:]
}

func analyzeCilium(s *Snapshot, ds *appsv1.DaemonSet, c *Cilium) {
	c.Installed, c.Namespace, c.DaemonSet = true, ds.Namespace, ds.Name
	for _, ctr := range ds.Spec.Template.Spec.Containers {
		if strings.Contains(ctr.Image, "cilium/cilium") || ctr.Name == "cilium-agent" {
			c.Version = strings.TrimPrefix(imageTag(ctr.Image), "v")
			break
		}
	}
	c.AgentsReady, c.AgentsDesired = ds.Status.NumberReady, ds.Status.DesiredNumberScheduled
	if cm := s.ConfigMap(ds.Namespace, "cilium-config"); cm != nil {
		c.MigrationMode = cm.Data["custom-cni-conf"] == "true"
		c.PodCIDRs = append(c.PodCIDRs, strings.Fields(strings.ReplaceAll(cm.Data["cluster-pool-ipv4-cidr"], ",", " "))...)
		c.TunnelPort, _ = strconv.Atoi(cm.Data["tunnel-port"])
		c.MaskSize, _ = strconv.Atoi(cm.Data["cluster-pool-ipv4-mask-size"])
		c.TunnelProtocol = cm.Data["tunnel-protocol"]
		c.ChainingMode = cm.Data["cni-chaining-mode"]
		c.PolicyEnforcement = cm.Data["enable-policy"]
		c.PolicyAudit = cm.Data["policy-audit-mode"] == "true"
		if c.TunnelProtocol == "" && cm.Data["routing-mode"] != "native" {
			c.TunnelProtocol = cm.Data["tunnel"] // Cilium < 1.15
		}
	}
}

func analyzeKubeProxy(s *Snapshot) KubeProxy {
	kp := KubeProxy{}
	var args []string
	for i := range s.DaemonSets {
		ds := &s.DaemonSets[i]
		if ds.Namespace == "kube-system" && strings.Contains(ds.Name, "kube-proxy") {
			kp.Present, kp.Kind, kp.Object = true, "DaemonSet", ds.Namespace+"/"+ds.Name
			for _, ctr := range ds.Spec.Template.Spec.Containers {
				args = append(append(args, ctr.Command...), ctr.Args...)
			}
			break
		}
	}
	if !kp.Present {
		for i := range s.SystemPods {
			p := &s.SystemPods[i]
			if strings.HasPrefix(p.Name, "kube-proxy") && (ownedByNode(p) || p.Labels["component"] == "kube-proxy") {
				kp.Present, kp.Kind, kp.Object = true, "static pods", "kube-system/kube-proxy-*"
				for _, ctr := range p.Spec.Containers {
					args = append(append(args, ctr.Command...), ctr.Args...)
				}
				break
			}
		}
	}
	if !kp.Present {
		return kp
	}
	if cm := s.ConfigMap("kube-system", "kube-proxy"); cm != nil && cm.Data["config.conf"] != "" {
		var cfg struct {
			Mode        string `json:"mode"`
			ClusterCIDR string `json:"clusterCIDR"`
		}
		if yaml.Unmarshal([]byte(cm.Data["config.conf"]), &cfg) == nil {
			kp.Mode, kp.ClusterCIDR = cfg.Mode, cfg.ClusterCIDR
		}
	}
	if cm := s.ConfigMap("kube-system", "kube-proxy"); cm != nil && cm.Data["kubeconfig.conf"] != "" {
		var kc struct {
			Clusters []struct {
				Cluster struct {
					Server string `json:"server"`
				} `json:"cluster"`
			} `json:"clusters"`
		}
		if yaml.Unmarshal([]byte(cm.Data["kubeconfig.conf"]), &kc) == nil && len(kc.Clusters) == 1 {
			kp.APIServer = kc.Clusters[0].Cluster.Server
		}
	}
	if v := flagValue(args, "--proxy-mode"); v != "" {
		kp.Mode = v
	}
	if v := flagValue(args, "--cluster-cidr"); v != "" {
		kp.ClusterCIDR = v
	}
	if kp.Mode == "" {
		kp.Mode = "iptables" // kube-proxy's default on Linux
	}
	return kp
}

func ownedByNode(p *corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == "Node" {
			return true
		}
	}
	return false
}

// staticPodFlag returns a flag of a control-plane static pod identified by
// its kubeadm "component" label or its name prefix.
func staticPodFlag(pods []corev1.Pod, component, flag string) string {
	for i := range pods {
		p := &pods[i]
		if p.Labels["component"] != component && !strings.HasPrefix(p.Name, component+"-") {
			continue
		}
		for _, ctr := range p.Spec.Containers {
			if v := flagValue(append(append([]string{}, ctr.Command...), ctr.Args...), flag); v != "" {
				return v
			}
		}
	}
	return ""
}

// flagValue finds --flag=value or --flag value in an argument list.
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

type kubeadmConfig struct {
	ClusterName string
	PodSubnet   string
	// ServiceSubnet as kubeadm has it.
	ServiceSubnet string
}

func parseKubeadm(cm *corev1.ConfigMap) kubeadmConfig {
	if cm == nil {
		return kubeadmConfig{}
	}
	var cc struct {
		ClusterName string `json:"clusterName"`
		Networking  struct {
			PodSubnet     string `json:"podSubnet"`
			ServiceSubnet string `json:"serviceSubnet"`
		} `json:"networking"`
	}
	if yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc) != nil {
		return kubeadmConfig{}
	}
	return kubeadmConfig{ClusterName: cc.ClusterName, PodSubnet: cc.Networking.PodSubnet, ServiceSubnet: cc.Networking.ServiceSubnet}
}

// coveredBy reports whether cidr lies inside one of the listed networks.
func coveredBy(cidr string, list []SourcedCIDR) bool {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return true // unparseable: do not list it
	}
	for _, l := range list {
		q, err := netip.ParsePrefix(l.CIDR)
		if err == nil && q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
