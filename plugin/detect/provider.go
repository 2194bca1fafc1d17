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
		return unknownFrom(o.From)
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

// unknownFrom is the error for a --from that names no source CNI.
func unknownFrom(from string) error {
	return errs.Newf(errs.Usage, "use one of "+strings.Join(SourceCNIs(), ", "), "--from %q is not a CNI this version migrates from", from)
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
	// embedded says what showed a provider built into the distribution.
	embedded string
	// archDaemonSets are the per-architecture DaemonSets of one install
	// (old flannel manifests: kube-flannel-ds-amd64, -arm64, ...), merged
	// into daemonSets[0] by mergeArchDaemonSets.
	archDaemonSets []string
}

// flannelArches are the architectures old kube-flannel.yml manifests had
// one DaemonSet each for (kube-flannel-ds-<arch>, one kube-flannel-cfg).
var flannelArches = []string{"amd64", "arm64", "arm", "ppc64le", "s390x"}

// mergeArchDaemonSets treats flannel's per-architecture DaemonSets in one
// namespace as one install, not several providers.
func mergeArchDaemonSets(p *provider) {
	if p.name != flannelName || len(p.daemonSets) < 2 {
		return
	}
	var names []string
	for _, ds := range p.daemonSets {
		arch, ok := strings.CutPrefix(ds.Name, "kube-flannel-ds-")
		if !ok || !contains(flannelArches, arch) || ds.Namespace != p.daemonSets[0].Namespace {
			return
		}
		names = append(names, ds.Name)
	}
	sort.SliceStable(p.daemonSets, func(i, j int) bool {
		return strings.HasSuffix(p.daemonSets[i].Name, "-amd64") && !strings.HasSuffix(p.daemonSets[j].Name, "-amd64")
	})
	sort.Strings(names)
	p.archDaemonSets, p.daemonSets = names, p.daemonSets[:1]
}

func (p *provider) objects() string {
	var out []string
	for _, ds := range p.daemonSets {
		out = append(out, "DaemonSet "+ds.Namespace+"/"+ds.Name)
	}
	for _, in := range p.installations {
		out = append(out, "Installation "+in.GetName())
	}
	if p.embedded != "" {
		out = append(out, p.embedded)
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
		default:
			name = sourceCNIOf(ds)
		}
		if name == "" {
			name = foreignCNI(ds)
		}
		if name == "" {
			continue
		}
		c.CNIsSeen = append(c.CNIsSeen, SeenCNI{name, "DaemonSet " + ds.Namespace + "/" + ds.Name})
		p := get(name)
		p.daemonSets = append(p.daemonSets, ds)
	}
	for _, d := range Detectors() {
		if !d.Installations {
			continue
		}
		for i := range s.CalicoInstallations {
			in := &s.CalicoInstallations[i]
			c.CNIsSeen = append(c.CNIsSeen, SeenCNI{d.Name, "Installation " + in.GetName() + " (operator.tigera.io/v1)"})
			p := get(d.Name)
			p.installations = append(p.installations, in)
		}
	}
	for _, d := range Detectors() {
		if d.Embedded == nil {
			continue
		}
		if ev := d.Embedded(s); ev != "" {
			c.CNIsSeen = append(c.CNIsSeen, SeenCNI{d.Name, ev})
			get(d.Name).embedded = ev
		}
	}
	return out
}

// chooseProvider picks the provider to migrate from and analyses it, or says
// why it cannot.
func chooseProvider(s *Snapshot, c *Cluster, found []*provider, ov Override) (*CNI, []SourcedCIDR, error) {
	for _, p := range found {
		mergeArchDaemonSets(p)
	}
	seen := func() string {
		var all []string
		for _, p := range found {
			all = append(all, p.name+" ("+p.objects()+")")
		}
		return strings.Join(all, ", ")
	}
	// The names --from takes with --old-pod-cidr for a CNI running under
	// other names: those with objects of their own to be named after.
	var named []string
	for _, d := range Detectors() {
		if d.Embedded == nil {
			named = append(named, d.Name)
		}
	}
	supported := strings.Join(named, "|")

	if ov.From != "" {
		if !IsSourceCNI(ov.From) {
			return nil, nil, unknownFrom(ov.From)
		}
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
	d, ok := DetectorNamed(p.name)
	if !ok {
		return nil, nil // not a source CNI: callers ask IsSourceCNI first
	}
	cni, cidrs := d.Analyze(s, ds, p.installations)
	if cni != nil && len(p.archDaemonSets) > 0 {
		cni.ArchDaemonSets = p.archDaemonSets
	}
	return cni, cidrs
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
	d, _ := DetectorNamed(ov.From) // Override.Validate: a source CNI
	cni := &CNI{Name: ov.From, IPAM: "unknown", Network: strings.Join(ov.OldPodCIDRs, ","), Override: ov.String(), EnforcesPolicy: d.Defaults.EnforcesPolicy}
	if len(d.Defaults.UDPPorts) > 0 {
		cni.UDPPorts = append([]int(nil), d.Defaults.UDPPorts...)
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
