package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// Source is a source CNI of the lab: how a real cluster running it is set
// up on the lab's nodes, and what the migration test needs to know of it.
// Each lives in a file of its own (source_flannel.go, source_calico.go,
// source_canal.go) and is listed in Sources, the way plugin/sourcecni holds
// one entry per CNI.
type Source struct {
	// Name names the source in tests and reports ("flannel").
	Name string
	// Title says what runs, for reports.
	Title string
	// Nodes the lab starts for it (nil: control-plane, worker-1, worker-2).
	Nodes []NodeSpec
	// Calico says its images need the Calico build.
	Calico bool
	// OldNetwork is its pod network.
	OldNetwork netip.Prefix
	// Namespace is where its pods run (waited for before a migration),
	// DaemonSet the name of its agents' DaemonSet there.
	Namespace, DaemonSet string
	// Conflist is the CNI configuration it writes to /etc/cni/net.d.
	Conflist string
	// Policies are the NetworkPolicies the lab's workloads carry with it.
	Policies Policies
	// Enforces says whether it enforces NetworkPolicies.
	Enforces bool
	// Leftovers tell its traces on a node (see NodeState.Of).
	Leftovers Leftovers
	// install applies the CNI (after kubeadm-config and kube-proxy,
	// before CoreDNS).
	install func(ctx context.Context, c *cluster.Cluster) error
}

// Sources are the source CNIs the lab migrates from.
var Sources = []Source{flannelSource(), calicoSource(), canalSource()}

// SourceNamed returns the named source.
func SourceNamed(name string) (Source, error) {
	for _, s := range Sources {
		if s.Name == name {
			return s, nil
		}
	}
	var names []string
	for _, s := range Sources {
		names = append(names, s.Name)
	}
	return Source{}, fmt.Errorf("lab: no source %q (have %s)", name, strings.Join(names, ", "))
}

// TwoNodes is a control plane and one worker: the smallest cluster that is
// half migrated while its worker is on Cilium and the control plane not.
var TwoNodes = []NodeSpec{{"control-plane", true}, {"worker-1", false}}

// Install sets up what a kubeadm cluster running the source runs:
// kubeadm-config, kube-proxy (iptables), the CNI and CoreDNS, with the
// lab's images. The caller waits for the nodes (WaitReady).
func (l *Lab) Install(ctx context.Context, s Source) error {
	steps := []struct {
		name string
		fn   func(context.Context, *cluster.Cluster) error
	}{
		{"kubeadm-config", func(ctx context.Context, c *cluster.Cluster) error {
			return fixture.KubeadmConfig(ctx, c, "cni-migrate-lab")
		}},
		{"kube-proxy", fixture.KubeProxyConntrackAsIs},
		{s.Name, s.install},
		{"coredns", fixture.CoreDNS},
	}
	for _, st := range steps {
		if err := st.fn(ctx, l.Cluster); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return nil
}

// applyManifest applies a manifest of the Calico build's, unchanged but
// for its images and what edit does to its objects.
func applyManifest(ctx context.Context, c *cluster.Cluster, name string, edit func(*unstructured.Unstructured) error) error {
	path := filepath.Join(c.Cache, "datapath", "calico", "manifests", name)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (run `make datapath-tools`)", err)
	}
	objs, err := cluster.ParseYAML(data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, o := range objs {
		if edit != nil {
			if err := edit(o); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if _, err := c.ApplyObjects(ctx, objs); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// setEnv sets environment variables of a container of a DaemonSet (name
// kind/name/container), adding those it lacks; any other object is left.
func setEnv(o *unstructured.Unstructured, kind, name, container string, env map[string]string) error {
	if o.GetKind() != kind || o.GetName() != name {
		return nil
	}
	cs, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if err != nil {
		return err
	}
	found := false
	for i, c := range cs {
		cm, ok := c.(map[string]any)
		if !ok || cm["name"] != container {
			continue
		}
		found = true
		list, _ := cm["env"].([]any)
		left := map[string]string{}
		for k, v := range env {
			left[k] = v
		}
		for j, e := range list {
			em, ok := e.(map[string]any)
			if !ok {
				continue
			}
			n, _ := em["name"].(string)
			if v, ok := left[n]; ok {
				list[j] = map[string]any{"name": n, "value": v}
				delete(left, n)
			}
		}
		keys := make([]string, 0, len(left))
		for k := range left {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			list = append(list, map[string]any{"name": k, "value": left[k]})
		}
		cm["env"] = list
		cs[i] = cm
	}
	if !found {
		return fmt.Errorf("%s %s has no container %s", kind, name, container)
	}
	return unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers")
}

// Leftovers match what a CNI leaves on a node: interfaces, iptables
// chains, ipsets, files in /etc/cni/net.d; routes are its when they go
// through one of its interfaces or are blackhole routes into its network.
type Leftovers struct {
	Links, Chains, IPSets, Files *regexp.Regexp
}

// Of lists what of st matches, one line each ("link vxlan.calico",
// "chain filter cali-FORWARD (nft)", ...), sorted.
func (lo Leftovers) Of(st NodeState, network netip.Prefix) []string {
	var out []string
	match := func(re *regexp.Regexp, s string) bool { return re != nil && re.MatchString(s) }
	for _, l := range st.Links {
		if match(lo.Links, l) {
			out = append(out, "link "+l)
		}
	}
	for _, c := range st.Chains {
		if match(lo.Chains, c.Name) {
			out = append(out, fmt.Sprintf("chain %s %s (%s)", c.Table, c.Name, c.Backend))
		}
	}
	for _, s := range st.IPSets {
		if match(lo.IPSets, s) {
			out = append(out, "ipset "+s)
		}
	}
	for _, r := range st.Routes {
		f := strings.Fields(r)
		ours := false
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "dev" && match(lo.Links, f[i+1]) {
				ours = true
			}
		}
		if len(f) > 1 && f[0] == "blackhole" {
			if p, err := netip.ParsePrefix(f[1]); err == nil && network.Overlaps(p) {
				ours = true
			}
		}
		if ours {
			out = append(out, "route "+r)
		}
	}
	for _, f := range st.Files {
		if match(lo.Files, f) {
			out = append(out, "file /etc/cni/net.d/"+f)
		}
	}
	slices.Sort(out)
	return out
}
