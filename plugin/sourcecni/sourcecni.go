// Package sourcecni is the registry of the CNIs the plugin migrates from.
//
// Each source CNI is one Source value, built in a file of its own
// (flannel.go, canal.go, calico_manifest.go, calico_operator.go, weave.go,
// kube_router.go, k3s_flannel.go), holding everything the plugin knows about it: how it is
// detected (its detect.Detector, with its default UDP ports and policy
// enforcement), its checks, the source NAT it applies to traffic towards
// Cilium's pods, the objects finalize removes or keeps, what stays on the
// nodes, and how plan shows it. Sources lists them all, in order; the
// packages that behave differently by CNI look the CNI up here (For,
// Named) and get an Unsupported error, never another CNI's behaviour, for
// one that is not registered.
//
// To add a source CNI: give it a Detector in plugin/detect (one file), an
// ID here and a Source in its own file, and list it in Sources; the
// registry tests say which part is missing.
package sourcecni

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// ID names a registry entry. Most equal the CNI's name; Calico has two
// entries, one per way it is installed.
type ID string

// The registered source CNIs.
const (
	Flannel        ID = "flannel"
	Canal          ID = "canal"
	CalicoManifest ID = "calico-manifest"
	CalicoOperator ID = "calico-operator"
	Weave          ID = "weave"
	KubeRouter     ID = "kube-router"
	K3sFlannel     ID = "k3s-flannel"
)

// Source is everything the plugin knows about one source CNI. Every part
// is required unless its comment says it is optional.
type Source struct {
	ID ID
	// Name is the provider as detection names it (detect.CNI.Name) and
	// --from takes it; entries that share a name tell themselves apart
	// with Is.
	Name string
	// Is picks this entry among those sharing Name (required then; nil when
	// the name alone decides).
	Is func(cni *detect.CNI) bool
	// Detect finds and reads the CNI (plugin/detect), and says which UDP
	// ports and policy enforcement to assume when --from names it but
	// detection does not find it.
	Detect detect.Detector
	Checks Checks
	SNAT   SNAT
	// Finalize is what finalize --remove-old-cni does about its objects.
	Finalize Finalize
	// Node is what the CNI leaves on every node.
	Node Node
	// Plan is how plan shows it.
	Plan Plan
}

// Level is the outcome of a check, as plugin/check's Status.
type Level string

// The levels, in increasing severity.
const (
	Pass Level = "PASS"
	Warn Level = "WARN"
	Fail Level = "FAIL"
)

// Finding is the outcome of one of a CNI's checks; plugin/check turns it
// into a Result.
type Finding struct {
	// ID is the check's ID (plugin/check sets cni-backend's itself).
	ID      string
	Level   Level
	Message string
	Fix     string
	// Commands are the fix's shell commands, in order, when it is exactly
	// those (they are in Fix too).
	Commands []string
}

// IDs of the checks only some source CNIs get (documented in
// docs/plan-schema.md, as plugin/check's).
const (
	// CheckNodeAddress: how calico-node picks each node's address once
	// Cilium adds its cilium_host interface (Calico only).
	CheckNodeAddress = "node-address-autodetection"
	// CheckCalicoPolicies: Calico's own policy resources (Calico and Canal).
	CheckCalicoPolicies = "calico-policies"
	// CheckCanalMasquerade: Canal's flanneld masquerading migrated pods'
	// traffic to Canal's pods, which Calico's policies then drop.
	CheckCanalMasquerade = "canal-masquerade"
)

// Checks are the CNI's own checks.
type Checks struct {
	// Backend judges its encapsulation against the guide's tested path (a
	// VXLAN overlay on a UDP port of its own); the check is cni-backend.
	Backend func(cni *detect.CNI) Finding
	// Extra are the checks only this CNI gets, in order (optional: empty
	// when it gets none). They run only for a CNI that was found, not
	// one only named by --from.
	Extra []func(c *detect.Cluster, p *proposal.Proposal) Finding
}

// SNAT is what the CNI's own masquerading does to its pods' connections to
// Cilium's pods while both pod networks exist (docs/snat.md).
type SNAT struct {
	// OldToNew returns how the CNI source-NATs them ("" when it does not)
	// and the advice that comes before the common one ("" for none).
	OldToNew func(c *detect.Cluster, p *proposal.Proposal) (by, fix string)
}

// Finalize is what finalize --remove-old-cni does about the CNI's objects:
// exactly one of Manual and Owned is set.
type Finalize struct {
	// Manual says why the plugin deletes none of the CNI's objects and how
	// to remove them instead.
	Manual func(cni *detect.CNI) string
	// Owned names the CNI's own objects in its namespace.
	Owned func(cni *detect.CNI) Owned
	// ForeignMount says why a ConfigMap that the CNI's DaemonSet mounts,
	// other than its own configuration, is kept (optional: nil when every
	// ConfigMap it mounts is its own or none is listed).
	ForeignMount func(namespace, configMap string) string
}

// Owned names a CNI's own objects in its namespace besides its DaemonSet
// (always deleted). Objects that do not exist are skipped; RBAC is
// followed from the ServiceAccounts of the DaemonSet and of these.
type Owned struct {
	Deployments, ConfigMaps, ServiceAccounts []string
	PDBs, Services                           []string
	// Kept are listed, never deleted, each saying why and how to remove
	// it by hand.
	Kept []string
	// EmptyNamespace deletes the namespace when only these objects live
	// there (never kube-system or default).
	EmptyNamespace bool
}

// Node is what the CNI's agents leave on a node.
type Node struct {
	// Leftovers names the interfaces, rules and state that stay.
	Leftovers string
	// ByHand are the commands that remove them.
	ByHand string
	// CNIConf is the file the CNI's installer writes in the CNI
	// directory, which a rollback renames back from *.cilium_bak, and
	// CNIConfNote what the rollback instructions add about it (optional:
	// "" when the plugin does not know the file; the instruction then
	// names it NAME).
	CNIConf, CNIConfNote string
	// Sweep is what finalize --remove-old-cni removes from every node once
	// the CNI's pods are gone (nil: nothing; Leftovers and ByHand are
	// printed instead).
	Sweep *Sweep
	// Tunnel is the CNI's tunnel interface on node n, read from the Node
	// object, when it has one the plugin can name (optional: nil for a
	// CNI without one, such as a CNI that routes with BGP). Verify makes a
	// migrated node's probe pod reach another node's, which proves the old
	// CNI's overlay on the migrated node is back after its reboot.
	Tunnel func(cni *detect.CNI, n *corev1.Node) (Tunnel, bool)
}

// Sweep names what a CNI leaves in a node's network namespace, CNI
// configuration directory and state directories; the finalize step that
// removes it runs one Job on every node. Every name is matched exactly or
// by the patterns below, never more.
type Sweep struct {
	// Processes are the names (comm, at most 15 characters) of its agents'
	// processes: the sweep waits until none runs on the node any more (a
	// pod with no termination grace period is gone from the API before its
	// processes are, and felix would make its interfaces again).
	Processes []string
	// Links are interfaces by name (flannel.1, vxlan.calico); LinkPattern
	// an extended regular expression of more (its pods' veths).
	Links       []string
	LinkPattern string
	// Chains is an extended regular expression of its iptables chains'
	// names, anchored at the start (cali-, FLANNEL-): the chains are
	// flushed and deleted, and the rules of other chains that jump to
	// them deleted, in every table of both iptables backends.
	Chains string
	// IPSets is an extended regular expression of its ipsets' names,
	// anchored at the start.
	IPSets string
	// RouteProtocols are the protocols of its IPv4 routes (felix's 80;
	// routes through Links go with them).
	RouteProtocols []string
	// Files are in the node's CNI configuration directory: its conflist
	// (and the .cilium_bak Cilium renamed it to), its kubeconfig.
	Files []string
	// Dirs are its state directories, below /var/lib or /run.
	Dirs []string
}

// Plan is how plan's table shows the CNI.
type Plan struct {
	// BackendOnly ends the CNI's rows at its backend.
	BackendOnly bool
	// BGP names what speaks BGP for it when it routes with BGP (optional:
	// "" for a CNI that never does).
	BGP string
}

// Sources are the registered source CNIs, in the order plan and the
// documentation list them.
func Sources() []Source {
	return []Source{flannel(), canal(), calicoManifest(), calicoOperator(), weave(), kubeRouter(), k3sFlannel()}
}

// Get returns the entry with the ID.
func Get(id ID) (Source, error) {
	for _, s := range Sources() {
		if s.ID == id {
			return s, nil
		}
	}
	return Source{}, unknown(string(id))
}

// For returns the entry of a CNI detection found (or --from named).
func For(cni *detect.CNI) (Source, error) {
	if cni == nil {
		return Source{}, errs.New(errs.Unsupported, "no source CNI was identified", "pass --from with one of "+strings.Join(Names(), ", ")+" (and --old-pod-cidr CIDR if it runs under other names)")
	}
	for _, s := range Sources() {
		if s.Name == cni.Name && (s.Is == nil || s.Is(cni)) {
			return s, nil
		}
	}
	return Source{}, unknown(cni.Name)
}

// Named returns the first entry with the name, for what all entries of a
// name share (a test keeps their Node parts equal).
func Named(name string) (Source, error) {
	for _, s := range Sources() {
		if s.Name == name {
			return s, nil
		}
	}
	return Source{}, unknown(name)
}

// Names are the names of the source CNIs, once each, in order.
func Names() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range Sources() {
		if !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s.Name)
		}
	}
	return out
}

func unknown(name string) error {
	return errs.Newf(errs.Unsupported, "pass --from with one of "+strings.Join(Names(), ", "),
		"%q is not a source CNI this version knows", name)
}
