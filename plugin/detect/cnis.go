package detect

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Defaults of the source CNIs, from their code and manifests.
const (
	// CalicoVXLANDefaultPort is Felix's vxlanPort default (the IANA port).
	CalicoVXLANDefaultPort = 4789
	// CalicoVXLANDefaultVNI is Felix's vxlanVNI default.
	CalicoVXLANDefaultVNI = 4096
	// CalicoDefaultPoolCIDR is calico-node's and the operator's default
	// pool when neither the environment nor kubeadm-config gives one.
	CalicoDefaultPoolCIDR = "192.168.0.0/16"
	// CalicoDefaultBlockSize is the default per-node IPAM block.
	CalicoDefaultBlockSize = 26
	// CalicoWireguardPort is Felix's wireguardListeningPort default.
	CalicoWireguardPort = 51820
	// WeaveDefaultRange is Weave Net's default IPALLOC_RANGE.
	WeaveDefaultRange = "10.32.0.0/12"
	// WeaveSleevePort and WeaveFastDPPort are Weave Net's UDP ports: sleeve
	// (its userspace encapsulation, and TCP 6783 for control) and fastdp
	// (VXLAN in the kernel's Open vSwitch datapath).
	WeaveSleevePort = 6783
	WeaveFastDPPort = 6784
	// KubeRouterFoUDefaultPort is kube-router's --overlay-encap-port default.
	KubeRouterFoUDefaultPort = 5555
)

// SourceCNIs are the providers this version migrates from, as --from
// takes them.
func SourceCNIs() []string { return []string{"flannel", "canal", "calico", "weave", "kube-router"} }

// IsSourceCNI reports whether name is one of SourceCNIs.
func IsSourceCNI(name string) bool {
	for _, n := range SourceCNIs() {
		if n == name {
			return true
		}
	}
	return false
}

// Override is what the user says about the old CNI instead of detection:
// From picks the provider (among several found, or one not found under its
// usual names) and OldPodCIDRs are its pod networks.
type Override struct {
	From        string
	OldPodCIDRs []string
}

// Empty reports whether the override changes nothing.
func (o Override) Empty() bool { return o.From == "" && len(o.OldPodCIDRs) == 0 }

// Validate checks the syntax of an override, without a cluster.
func (o Override) Validate() error {
	if o.From != "" && !IsSourceCNI(o.From) {
		return errs.Newf(errs.Usage, "use one of "+strings.Join(SourceCNIs(), ", "), "--from %q is not a CNI this version migrates from", o.From)
	}
	for _, c := range o.OldPodCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil || !p.Addr().Is4() {
			return errs.Newf(errs.Usage, "pass an IPv4 network such as 10.244.0.0/16", "--old-pod-cidr %q is not an IPv4 CIDR", c)
		}
		if p.Masked() != p {
			return errs.Newf(errs.Usage, fmt.Sprintf("pass the network address, %s", p.Masked()), "--old-pod-cidr %s has host bits set", c)
		}
	}
	return nil
}

func (o Override) String() string {
	var parts []string
	if o.From != "" {
		parts = append(parts, "--from "+o.From)
	}
	for _, c := range o.OldPodCIDRs {
		parts = append(parts, "--old-pod-cidr "+c)
	}
	return strings.Join(parts, " ")
}

// provider is one network provider found in the snapshot, with the objects
// it was recognised by.
type provider struct {
	name          string
	daemonSets    []*appsv1.DaemonSet
	installations []*unstructured.Unstructured
}

func (p *provider) objects() string {
	var out []string
	for _, ds := range p.daemonSets {
		out = append(out, "DaemonSet "+ds.Namespace+"/"+ds.Name)
	}
	for _, in := range p.installations {
		out = append(out, "Installation "+in.GetName())
	}
	return strings.Join(out, ", ")
}

// findProviders lists the network providers in the snapshot, fills
// c.CNIsSeen and analyses an installed Cilium.
func findProviders(s *Snapshot, c *Cluster) []*provider {
	var out []*provider
	get := func(name string) *provider {
		for _, p := range out {
			if p.name == name {
				return p
			}
		}
		p := &provider{name: name}
		out = append(out, p)
		return p
	}
	for i := range s.DaemonSets {
		ds := &s.DaemonSets[i]
		name := ""
		switch {
		case isCiliumDS(ds):
			analyzeCilium(s, ds, &c.Cilium)
			c.CNIsSeen = append(c.CNIsSeen, SeenCNI{"cilium", "DaemonSet " + ds.Namespace + "/" + ds.Name})
			continue
		case isFlannelDS(ds):
			name = "flannel"
		default:
			name = otherCNI(ds)
		}
		if name == "" {
			continue
		}
		c.CNIsSeen = append(c.CNIsSeen, SeenCNI{name, "DaemonSet " + ds.Namespace + "/" + ds.Name})
		p := get(name)
		p.daemonSets = append(p.daemonSets, ds)
	}
	for i := range s.CalicoInstallations {
		in := &s.CalicoInstallations[i]
		c.CNIsSeen = append(c.CNIsSeen, SeenCNI{"calico", "Installation " + in.GetName() + " (operator.tigera.io/v1)"})
		p := get("calico")
		p.installations = append(p.installations, in)
	}
	return out
}

// chooseProvider picks the provider to migrate from and analyses it, or says
// why it cannot.
func chooseProvider(s *Snapshot, c *Cluster, found []*provider, ov Override) (*CNI, []SourcedCIDR, error) {
	seen := func() string {
		var all []string
		for _, p := range found {
			all = append(all, p.name+" ("+p.objects()+")")
		}
		return strings.Join(all, ", ")
	}
	supported := strings.Join(SourceCNIs(), "|")

	if ov.From != "" {
		var p *provider
		for _, q := range found {
			if q.name == ov.From {
				p = q
			}
		}
		switch {
		case p == nil && len(ov.OldPodCIDRs) == 0:
			what := "nothing recognised"
			if len(found) > 0 {
				what = "seen: " + seen()
			}
			return nil, nil, errs.Newf(errs.Unsupported, "if it runs under other names, pass its pod network too: --from "+ov.From+" --old-pod-cidr CIDR",
				"--from %s: no %s found (%s)", ov.From, ov.From, what)
		case p == nil:
			cni, cidrs := manualCNI(ov)
			return cni, cidrs, nil
		case len(p.daemonSets) > 1:
			return nil, nil, errs.Newf(errs.Unsupported, "remove the DaemonSet that is not in use, then run plan again",
				"--from %s: more than one %s found (%s)", ov.From, ov.From, p.objects())
		}
		cni, cidrs := analyzeProvider(s, p)
		// The providers left alone keep their networks too: Cilium's pool
		// must not overlap them either.
		return applyOverride(cni, cidrs, ov), append(cidrsOverride(cidrs, ov), networksOf(s, found, p)...), nil
	}

	switch {
	case len(found) > 1 || len(found) == 1 && len(found[0].daemonSets) > 1:
		// Not migrating from any of them yet, but a proposal must keep off
		// the networks of all.
		cidrs := networksOf(s, found, nil)
		var choices []string
		for _, p := range found {
			if IsSourceCNI(p.name) {
				choices = append(choices, "--from "+p.name)
			}
		}
		fix := "remove the provider that is not in use, then run plan again"
		if len(choices) > 1 || len(choices) == 1 && len(found) > 1 {
			fix = "remove the provider that is not in use, or name the one to migrate from: " + strings.Join(choices, " or ")
		}
		return nil, cidrs, errs.Newf(errs.Unsupported, fix, "more than one network provider found: %s", seen())
	case len(found) == 1 && !IsSourceCNI(found[0].name):
		return nil, nil, errs.Newf(errs.Unsupported, "this version migrates from "+strings.Join(SourceCNIs(), ", "),
			"found %s", seen())
	case len(found) == 1:
		cni, cidrs := analyzeProvider(s, found[0])
		return applyOverride(cni, cidrs, ov), cidrsOverride(cidrs, ov), nil
	case c.Cilium.Installed && !c.Cilium.MigrationMode:
		return nil, nil, errs.Newf(errs.Unsupported, "there is nothing to migrate: Cilium is managed with helm upgrade from here on; if another CNI still runs, pass --from NAME --old-pod-cidr CIDR",
			"Cilium %s already owns the network (DaemonSet %s/%s, custom-cni-conf off) and no other network provider was found", c.Cilium.Version, c.Cilium.Namespace, c.Cilium.DaemonSet)
	case c.Cilium.Installed:
		return nil, nil, errs.New(errs.Unsupported, "Cilium runs in migration mode but no old network provider was found",
			"run `kubectl cni-migrate finalize` if the migration is complete, or name the old CNI with --from NAME --old-pod-cidr CIDR")
	}
	return nil, nil, errs.New(errs.Unsupported, "no supported network provider found (looked for the DaemonSets of flannel, canal, calico-node, weave-net, kube-router and cilium, and Calico operator Installations)",
		fmt.Sprintf("check --context points at the right cluster; if the CNI runs under other names, pass --from %s --old-pod-cidr CIDR", supported))
}

// networksOf returns the pod networks of the supported providers found,
// but except.
func networksOf(s *Snapshot, found []*provider, except *provider) []SourcedCIDR {
	var out []SourcedCIDR
	for _, p := range found {
		if p != except && IsSourceCNI(p.name) {
			_, c := analyzeProvider(s, p)
			out = append(out, c...)
		}
	}
	return out
}

func analyzeProvider(s *Snapshot, p *provider) (*CNI, []SourcedCIDR) {
	var ds *appsv1.DaemonSet
	if len(p.daemonSets) > 0 {
		ds = p.daemonSets[0]
	}
	switch p.name {
	case "flannel":
		cni := analyzeFlannel(s, ds)
		return cni, networkCIDRs(cni.Network, cni.Name+" net-conf.json Network")
	case "canal":
		return analyzeCanal(s, ds)
	case "calico":
		var in *unstructured.Unstructured
		for _, i := range p.installations {
			if in == nil || i.GetName() == "default" {
				in = i
			}
		}
		return analyzeCalico(s, ds, in)
	case "weave":
		return analyzeWeave(s, ds)
	case "kube-router":
		return analyzeKubeRouter(s, ds)
	}
	return nil, nil
}

// applyOverride replaces the provider's pod networks with --old-pod-cidr.
func applyOverride(cni *CNI, _ []SourcedCIDR, ov Override) *CNI {
	if cni == nil || len(ov.OldPodCIDRs) == 0 {
		return cni
	}
	cni.Network = strings.Join(ov.OldPodCIDRs, ",")
	cni.Override = ov.String()
	return cni
}

func cidrsOverride(cidrs []SourcedCIDR, ov Override) []SourcedCIDR {
	if len(ov.OldPodCIDRs) == 0 {
		return cidrs
	}
	var out []SourcedCIDR
	for _, c := range ov.OldPodCIDRs {
		out = append(out, SourcedCIDR{CIDR: c, Source: "--old-pod-cidr"})
	}
	return out
}

// manualCNI describes a provider named by --from that detection did not
// find: only what the flags say, and the UDP ports it uses by default so
// Cilium's tunnel avoids them.
func manualCNI(ov Override) (*CNI, []SourcedCIDR) {
	cni := &CNI{Name: ov.From, IPAM: "unknown", Network: strings.Join(ov.OldPodCIDRs, ","), Override: ov.String(), EnforcesPolicy: true}
	switch ov.From {
	case "flannel", "canal":
		cni.UDPPorts = []int{FlannelVXLANDefaultPort}
		cni.EnforcesPolicy = ov.From == "canal"
	case "calico":
		cni.UDPPorts = []int{CalicoVXLANDefaultPort}
	case "weave":
		cni.UDPPorts = []int{WeaveSleevePort, WeaveFastDPPort}
	case "kube-router":
	}
	return cni, cidrsOverride(nil, ov)
}

func networkCIDRs(network, source string) []SourcedCIDR {
	var out []SourcedCIDR
	for _, p := range strings.Split(network, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, SourcedCIDR{CIDR: p, Source: source})
		}
	}
	return out
}

// container returns the first container whose name is one of names, or
// whose image contains imagePart.
func container(ds *appsv1.DaemonSet, imagePart string, names ...string) *corev1.Container {
	if ds == nil {
		return nil
	}
	ctrs := ds.Spec.Template.Spec.Containers
	for i := range ctrs {
		for _, n := range names {
			if ctrs[i].Name == n {
				return &ctrs[i]
			}
		}
	}
	for i := range ctrs {
		if imagePart != "" && strings.Contains(ctrs[i].Image, imagePart) {
			return &ctrs[i]
		}
	}
	return nil
}

// envOf returns a container's environment: literal values, and values read
// from ConfigMaps of the snapshot (configMapKeyRef); "set" for a variable
// taken from elsewhere (a Secret, a field).
func envOf(s *Snapshot, ns string, ctr *corev1.Container) map[string]string {
	out := map[string]string{}
	if ctr == nil {
		return out
	}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			if cm := s.ConfigMap(ns, e.ValueFrom.ConfigMapKeyRef.Name); cm != nil {
				if v, ok := cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]; ok {
					out[e.Name] = v
				}
			}
		default:
			out[e.Name] = "set"
		}
	}
	return out
}

// args returns a container's command and arguments.
func args(ctr *corev1.Container) []string {
	if ctr == nil {
		return nil
	}
	return append(append([]string{}, ctr.Command...), ctr.Args...)
}

// boolFlag reads a boolean flag (--f, --f=true, --f=false) with its default.
func boolFlag(argv []string, flag string, def bool) bool {
	for _, a := range argv {
		if a == flag {
			def = true
			continue
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			if b, err := strconv.ParseBool(v); err == nil {
				def = b
			}
		}
	}
	return def
}

func uniqueInts(in ...int) []int {
	var out []int
	seen := map[int]bool{}
	for _, v := range in {
		if v != 0 && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Ints(out)
	return out
}

// analyzeCanal reads Canal: flannel networking (its net-conf.json in
// canal-config) with Calico's Felix enforcing policy.
func analyzeCanal(s *Snapshot, ds *appsv1.DaemonSet) (*CNI, []SourcedCIDR) {
	cni := flannelLike(s, ds, "canal", "canal-config")
	cni.EnforcesPolicy = true
	if ctr := container(ds, "calico/node", "calico-node"); ctr != nil {
		cni.Version = imageTag(ctr.Image)
	}
	if cm := s.ConfigMap(ds.Namespace, cni.ConfigMap); cm != nil && cni.Backend.MTU == 0 {
		cni.Backend.MTU, _ = strconv.Atoi(cm.Data["veth_mtu"]) // "0": auto-detected
	}
	return cni, networkCIDRs(cni.Network, "canal "+cni.ConfigMap+" net-conf.json Network")
}

// calicoPool is the part of a crd.projectcalico.org/v1 IPPool read here.
type calicoPool struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		CIDR        string `json:"cidr"`
		VXLANMode   string `json:"vxlanMode"`
		IPIPMode    string `json:"ipipMode"`
		BlockSize   int    `json:"blockSize"`
		NATOutgoing bool   `json:"natOutgoing"`
		Disabled    bool   `json:"disabled"`
		// IPIP is the pre-3.0 form of ipipMode.
		IPIP *struct {
			Enabled bool   `json:"enabled"`
			Mode    string `json:"mode"`
		} `json:"ipip"`
	} `json:"spec"`
}

// installation is the part of an operator.tigera.io/v1 Installation read here.
type installation struct {
	Spec struct {
		CNI struct {
			Type string `json:"type"`
			IPAM struct {
				Type string `json:"type"`
			} `json:"ipam"`
		} `json:"cni"`
		CalicoNetwork *struct {
			BGP     string `json:"bgp"`
			MTU     int    `json:"mtu"`
			IPPools []struct {
				Name          string `json:"name"`
				CIDR          string `json:"cidr"`
				Encapsulation string `json:"encapsulation"`
				BlockSize     int    `json:"blockSize"`
				NATOutgoing   string `json:"natOutgoing"`
				Disabled      bool   `json:"disableNewAllocations"`
			} `json:"ipPools"`
			LinuxDataplane             string          `json:"linuxDataplane"`
			NodeAddressAutodetectionV4 *addrAutodetect `json:"nodeAddressAutodetectionV4"`
		} `json:"calicoNetwork"`
	} `json:"spec"`
	Status struct {
		CalicoVersion string `json:"calicoVersion"`
	} `json:"status"`
}

// addrAutodetect is the operator's NodeAddressAutodetection.
type addrAutodetect struct {
	FirstFound    *bool    `json:"firstFound"`
	Kubernetes    string   `json:"kubernetes"`
	Interface     string   `json:"interface"`
	SkipInterface string   `json:"skipInterface"`
	CanReach      string   `json:"canReach"`
	CIDRS         []string `json:"cidrs"`
}

// method renders it the way calico-node's IP_AUTODETECTION_METHOD takes it
// (which is what the operator sets).
func (a *addrAutodetect) method() string {
	switch {
	case a == nil:
		return "first-found"
	case a.Kubernetes != "":
		return "kubernetes-internal-ip"
	case a.Interface != "":
		return "interface=" + a.Interface
	case a.SkipInterface != "":
		return "skip-interface=" + a.SkipInterface
	case a.CanReach != "":
		return "can-reach=" + a.CanReach
	case len(a.CIDRS) > 0:
		return "cidr=" + strings.Join(a.CIDRS, ",")
	}
	return "first-found"
}

func fromUnstructured(u *unstructured.Unstructured, into any) bool {
	if u == nil {
		return false
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return false
	}
	return json.Unmarshal(data, into) == nil
}

// encapsulation turns Calico's two pool modes into one word.
func encapsulation(vxlanMode, ipipMode string) string {
	switch strings.ToLower(vxlanMode) {
	case "always":
		return "vxlan"
	case "crosssubnet", "cross-subnet":
		return "vxlan-cross-subnet"
	}
	switch strings.ToLower(ipipMode) {
	case "always":
		return "ipip"
	case "crosssubnet", "cross-subnet":
		return "ipip-cross-subnet"
	}
	return "none"
}

// operatorEncapsulation maps the Installation's pool encapsulation.
func operatorEncapsulation(e string) string {
	switch e {
	case "VXLAN":
		return "vxlan"
	case "VXLANCrossSubnet":
		return "vxlan-cross-subnet"
	case "IPIP":
		return "ipip"
	case "IPIPCrossSubnet":
		return "ipip-cross-subnet"
	case "None":
		return "none"
	}
	return strings.ToLower(e)
}

// analyzeCalico reads a Calico install: the operator's Installation when
// there is one (in), else the calico-node DaemonSet and calico-config of a
// manifest install. IPPool objects, when calico-node or the operator has
// created them, are the pools; before that, the pools they would create.
func analyzeCalico(s *Snapshot, ds *appsv1.DaemonSet, in *unstructured.Unstructured) (*CNI, []SourcedCIDR) {
	cni := &CNI{Name: "calico", EnforcesPolicy: true, IPAM: "calico", Routing: "bgp", Dataplane: "iptables"}
	if ds != nil {
		cni.Namespace, cni.DaemonSet = ds.Namespace, ds.Name
	}
	node := container(ds, "calico/node", "calico-node")
	if node != nil {
		cni.Version = imageTag(node.Image)
	}
	env := map[string]string{}
	if ds != nil {
		env = envOf(s, ds.Namespace, node)
	}
	kubeadm := parseKubeadm(s.ConfigMap("kube-system", "kubeadm-config"))

	var inst installation
	var defaultPool IPPool
	if in != nil {
		fromUnstructured(in, &inst)
		cni.Install, cni.Installation = "operator", in.GetName()
		if ds == nil {
			cni.Namespace, cni.DaemonSet = "calico-system", "calico-node"
		}
		if cni.Version == "" {
			cni.Version = inst.Status.CalicoVersion
		}
		if t := inst.Spec.CNI.IPAM.Type; t == "HostLocal" {
			cni.IPAM = "kubernetes"
		}
		net := inst.Spec.CalicoNetwork
		var auto *addrAutodetect
		if net != nil {
			if net.BGP == "Disabled" {
				cni.Routing = ""
			}
			cni.Backend.MTU = net.MTU
			if net.LinuxDataplane != "" {
				cni.Dataplane = strings.ToLower(net.LinuxDataplane)
			}
			auto = net.NodeAddressAutodetectionV4
		}
		cni.NodeAddressAutodetection = auto.method()
		if t := inst.Spec.CNI.Type; t != "" && t != "Calico" {
			// Calico enforces policy only; the pod network is another's.
			cni.IPAM, cni.Routing = strings.ToLower(t), ""
			cni.Backend.Type = "policy-only (" + t + ")"
		}
		encap := "ipip"
		if cni.Routing == "" {
			encap = "vxlan"
		}
		cidr, src := CalicoDefaultPoolCIDR, "calico operator's default pool (Installation "+in.GetName()+" lists none)"
		if kubeadm.PodSubnet != "" {
			cidr, src = kubeadm.PodSubnet, "calico operator's default pool, from kubeadm-config networking.podSubnet (Installation "+in.GetName()+" lists none)"
		}
		defaultPool = IPPool{Name: "default-ipv4-ippool", CIDR: cidr, Encapsulation: encap, BlockSize: CalicoDefaultBlockSize, NATOutgoing: true, Source: src}
		if net != nil && len(net.IPPools) > 0 {
			var pools []IPPool
			for _, p := range net.IPPools {
				if p.CIDR == "" || strings.Contains(p.CIDR, ":") {
					continue
				}
				bs := p.BlockSize
				if bs == 0 {
					bs = CalicoDefaultBlockSize
				}
				e := operatorEncapsulation(p.Encapsulation)
				if e == "" {
					e = encap
				}
				pools = append(pools, IPPool{Name: p.Name, CIDR: p.CIDR, Encapsulation: e, BlockSize: bs,
					NATOutgoing: p.NATOutgoing != "Disabled", Disabled: p.Disabled, Source: "calico Installation " + in.GetName() + " spec.calicoNetwork.ipPools"})
			}
			if len(pools) > 0 {
				cni.Pools = pools
			}
		}
	} else {
		cni.Install = "manifest"
		if s.ConfigMap(cni.Namespace, "calico-config") != nil {
			cni.ConfigMap = "calico-config"
		}
		cm := s.ConfigMap(cni.Namespace, "calico-config")
		backend := env["CALICO_NETWORKING_BACKEND"]
		if backend == "" && cm != nil {
			backend = cm.Data["calico_backend"]
		}
		if backend == "" {
			backend = "bird"
		}
		if backend != "bird" {
			cni.Routing = ""
		}
		if cm != nil {
			cni.Backend.MTU, _ = strconv.Atoi(cm.Data["veth_mtu"])
			if conf := cm.Data["cni_network_config"]; strings.Contains(conf, "host-local") && !strings.Contains(conf, "calico-ipam") {
				cni.IPAM = "kubernetes"
			}
		}
		if strings.EqualFold(env["FELIX_BPFENABLED"], "true") {
			cni.Dataplane = "bpf"
		} else if strings.EqualFold(env["FELIX_NFTABLESMODE"], "enabled") {
			cni.Dataplane = "nftables"
		}
		switch ip := env["IP"]; ip {
		case "", "autodetect":
			cni.NodeAddressAutodetection = env["IP_AUTODETECTION_METHOD"]
			if cni.NodeAddressAutodetection == "" {
				cni.NodeAddressAutodetection = "first-found"
			}
		case "none":
			cni.NodeAddressAutodetection = "none"
		default:
			cni.NodeAddressAutodetection = "IP=" + ip
		}
		if !strings.EqualFold(env["NO_DEFAULT_POOLS"], "true") {
			cidr, src := env["CALICO_IPV4POOL_CIDR"], "calico-node CALICO_IPV4POOL_CIDR (the pool it creates when it first starts; no IPPool yet)"
			switch {
			case cidr != "":
			case kubeadm.PodSubnet != "":
				cidr, src = kubeadm.PodSubnet, "calico-node's default from kubeadm-config networking.podSubnet (the pool it creates when it first starts; no IPPool yet)"
			default:
				cidr, src = CalicoDefaultPoolCIDR, "calico-node's default (the pool it creates when it first starts; no IPPool yet)"
			}
			bs, _ := strconv.Atoi(env["CALICO_IPV4POOL_BLOCK_SIZE"])
			if bs == 0 {
				bs = CalicoDefaultBlockSize
			}
			defaultPool = IPPool{Name: "default-ipv4-ippool", CIDR: strings.Split(cidr, ",")[0], BlockSize: bs,
				Encapsulation: encapsulation(env["CALICO_IPV4POOL_VXLAN"], env["CALICO_IPV4POOL_IPIP"]),
				NATOutgoing:   !strings.EqualFold(env["CALICO_IPV4POOL_NAT_OUTGOING"], "false"), Source: src}
		}
	}

	// IPPool objects win over what the installer would create.
	if len(s.CalicoIPPools) > 0 {
		cni.Pools = nil
		for i := range s.CalicoIPPools {
			var p calicoPool
			if !fromUnstructured(&s.CalicoIPPools[i], &p) || p.Spec.CIDR == "" || strings.Contains(p.Spec.CIDR, ":") {
				continue
			}
			ipip := p.Spec.IPIPMode
			if ipip == "" && p.Spec.IPIP != nil && p.Spec.IPIP.Enabled {
				ipip = p.Spec.IPIP.Mode
				if ipip == "" {
					ipip = "Always"
				}
			}
			bs := p.Spec.BlockSize
			if bs == 0 {
				bs = CalicoDefaultBlockSize
			}
			cni.Pools = append(cni.Pools, IPPool{Name: p.Metadata.Name, CIDR: p.Spec.CIDR, Encapsulation: encapsulation(p.Spec.VXLANMode, ipip),
				BlockSize: bs, NATOutgoing: p.Spec.NATOutgoing, Disabled: p.Spec.Disabled, Source: "calico IPPool " + p.Metadata.Name})
		}
	}
	if len(cni.Pools) == 0 && defaultPool.CIDR != "" {
		cni.Pools = []IPPool{defaultPool}
	}

	// Felix: the VXLAN port and VNI, MTU, eBPF and WireGuard.
	var felix struct {
		Spec struct {
			VXLANPort        int    `json:"vxlanPort"`
			VXLANVNI         int    `json:"vxlanVNI"`
			VXLANMTU         int    `json:"vxlanMTU"`
			BPFEnabled       bool   `json:"bpfEnabled"`
			WireguardEnabled bool   `json:"wireguardEnabled"`
			WireguardPort    int    `json:"wireguardListeningPort"`
			NFTablesMode     string `json:"nftablesMode"`
			IPIPMTU          int    `json:"ipipMTU"`
		} `json:"spec"`
	}
	fromUnstructured(s.CalicoFelixConfig, &felix)
	port, portDefaulted := felix.Spec.VXLANPort, false
	if port == 0 {
		port, _ = strconv.Atoi(env["FELIX_VXLANPORT"])
	}
	if port == 0 {
		port, portDefaulted = CalicoVXLANDefaultPort, true
	}
	vni := felix.Spec.VXLANVNI
	if vni == 0 {
		vni, _ = strconv.Atoi(env["FELIX_VXLANVNI"])
	}
	if vni == 0 {
		vni = CalicoVXLANDefaultVNI
	}
	if felix.Spec.BPFEnabled {
		cni.Dataplane = "bpf"
	}
	if strings.EqualFold(felix.Spec.NFTablesMode, "Enabled") && cni.Dataplane == "iptables" {
		cni.Dataplane = "nftables"
	}
	wgPort := 0
	if felix.Spec.WireguardEnabled || strings.EqualFold(env["FELIX_WIREGUARDENABLED"], "true") {
		wgPort = felix.Spec.WireguardPort
		if wgPort == 0 {
			wgPort = CalicoWireguardPort
		}
		cni.Backend.Encryption = "wireguard"
	}

	var encaps []string
	vxlan := false
	for _, p := range cni.Pools {
		if p.Disabled {
			continue
		}
		if !contains(encaps, p.Encapsulation) {
			encaps = append(encaps, p.Encapsulation)
		}
		vxlan = vxlan || strings.HasPrefix(p.Encapsulation, "vxlan")
	}
	if cni.Backend.Type == "" {
		cni.Backend.Type = strings.Join(encaps, ",")
	}
	if vxlan {
		cni.Backend.Port, cni.Backend.PortDefaulted, cni.Backend.VNI = port, portDefaulted, vni
		if felix.Spec.VXLANMTU != 0 && cni.Backend.MTU == 0 {
			cni.Backend.MTU = felix.Spec.VXLANMTU
		}
	} else if felix.Spec.IPIPMTU != 0 && cni.Backend.MTU == 0 {
		cni.Backend.MTU = felix.Spec.IPIPMTU
	}
	// Felix binds the VXLAN port as soon as a pool uses VXLAN, which the
	// backend check advises: keep Cilium off it whatever the pools say now.
	cni.UDPPorts = uniqueInts(port, wgPort)

	var cidrs []SourcedCIDR
	var nets []string
	for _, p := range cni.Pools {
		cidrs = append(cidrs, SourcedCIDR{CIDR: p.CIDR, Source: p.Source})
		if !p.Disabled {
			nets = append(nets, p.CIDR)
		}
	}
	cni.Network = strings.Join(nets, ",")
	return cni, cidrs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// analyzeWeave reads Weave Net's weave-net DaemonSet: the weave container's
// IPALLOC_RANGE, fastdp or sleeve, encryption and MTU; weave-npc enforces
// policy.
func analyzeWeave(s *Snapshot, ds *appsv1.DaemonSet) (*CNI, []SourcedCIDR) {
	cni := &CNI{Name: "weave", Namespace: ds.Namespace, DaemonSet: ds.Name, IPAM: "weave"}
	weave := container(ds, "weave-kube", "weave")
	if weave != nil {
		cni.Version = imageTag(weave.Image)
	}
	cni.EnforcesPolicy = container(ds, "weave-npc", "weave-npc") != nil
	env := envOf(s, ds.Namespace, weave)
	cidr, src := env["IPALLOC_RANGE"], "weave-net IPALLOC_RANGE"
	if cidr == "" {
		if v := flagValue(strings.Fields(env["EXTRA_ARGS"]), "--ipalloc-range"); v != "" {
			cidr, src = v, "weave-net EXTRA_ARGS --ipalloc-range"
		}
	}
	if cidr == "" {
		cidr, src = WeaveDefaultRange, "weave-net default IPALLOC_RANGE"
	}
	cni.Network = cidr
	cni.Backend = Backend{Type: "fastdp", Port: WeaveFastDPPort, PortDefaulted: true}
	if env["WEAVE_NO_FASTDP"] != "" {
		cni.Backend = Backend{Type: "sleeve", Port: WeaveSleevePort, PortDefaulted: true}
	}
	cni.Backend.MTU, _ = strconv.Atoi(env["WEAVE_MTU"])
	if env["WEAVE_PASSWORD"] != "" {
		cni.Backend.Encryption = "weave password (IPsec ESP with fastdp, NaCl with sleeve)"
	}
	cni.UDPPorts = []int{WeaveSleevePort, WeaveFastDPPort}
	return cni, networkCIDRs(cidr, src)
}

// analyzeKubeRouter reads kube-router's DaemonSet: --run-router (BGP),
// --enable-overlay with its type and encapsulation, --run-firewall
// (NetworkPolicy) and --run-service-proxy. Pods get addresses from the
// nodes' podCIDRs.
func analyzeKubeRouter(s *Snapshot, ds *appsv1.DaemonSet) (*CNI, []SourcedCIDR) {
	cni := &CNI{Name: "kube-router", Namespace: ds.Namespace, DaemonSet: ds.Name, IPAM: "kubernetes"}
	kr := container(ds, "cloudnativelabs/kube-router", "kube-router")
	if kr != nil {
		cni.Version = imageTag(kr.Image)
	}
	argv := args(kr)
	if boolFlag(argv, "--run-router", true) {
		cni.Routing = "bgp"
	}
	cni.EnforcesPolicy = boolFlag(argv, "--run-firewall", true)
	cni.ServiceProxy = boolFlag(argv, "--run-service-proxy", true)
	cni.Backend.Type = "none"
	if boolFlag(argv, "--enable-overlay", true) {
		encap := flagValue(argv, "--overlay-encap")
		if encap == "" {
			encap = "ipip"
		}
		cni.Backend.Type = encap
		if t := flagValue(argv, "--overlay-type"); t == "" || t == "subnet" {
			cni.Backend.Type += "-cross-subnet"
		}
		if encap == "fou" {
			cni.Backend.Port, _ = strconv.Atoi(flagValue(argv, "--overlay-encap-port"))
			if cni.Backend.Port == 0 {
				cni.Backend.Port, cni.Backend.PortDefaulted = KubeRouterFoUDefaultPort, true
			}
			cni.UDPPorts = []int{cni.Backend.Port}
		}
	}
	for _, name := range referencedConfigMaps(ds) {
		cm := s.ConfigMap(ds.Namespace, name)
		if cm == nil || cm.Data["cni-conf.json"] == "" {
			continue
		}
		cni.ConfigMap = name
		var conf struct {
			MTU     int `json:"mtu"`
			Plugins []struct {
				MTU int `json:"mtu"`
			} `json:"plugins"`
		}
		if json.Unmarshal([]byte(cm.Data["cni-conf.json"]), &conf) == nil {
			cni.Backend.MTU = conf.MTU
			for _, p := range conf.Plugins {
				if p.MTU != 0 {
					cni.Backend.MTU = p.MTU
				}
			}
		}
		break
	}
	return cni, nil
}
