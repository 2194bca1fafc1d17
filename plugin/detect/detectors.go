package detect

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Detector is how detection finds and reads one source CNI: the detection
// part of that CNI's entry in the source-CNI registry (plugin/sourcecni),
// which refers to it. Each source CNI has its own file here (flannel.go,
// canal.go, calico.go, weave.go, kube_router.go) holding its Detector and
// the code behind it.
type Detector struct {
	// Name is the provider as --from takes it and CNI.Name holds it.
	Name string
	// DaemonSet reports whether a DaemonSet is this provider's.
	DaemonSet func(ds *appsv1.DaemonSet) bool
	// Embedded finds a provider built into the distribution, which runs
	// without a DaemonSet of its own (k3s's flannel), and says what showed
	// it ("" when it is not there). Optional: nil for the others.
	Embedded func(s *Snapshot) string
	// Installations is true when the Tigera operator's Installation
	// objects show the provider too, with or without its DaemonSet.
	Installations bool
	// CalicoResources is true when the provider's configuration and
	// policies live in Calico's resources (IPPools, FelixConfiguration,
	// Calico policies), which FetchCalico then reads.
	CalicoResources bool
	// Analyze reads the provider from the snapshot: ds is its DaemonSet
	// (nil when only Installations showed it), installations the
	// Installations seen. It returns the provider and its pod networks.
	Analyze func(s *Snapshot, ds *appsv1.DaemonSet, installations []*unstructured.Unstructured) (*CNI, []SourcedCIDR)
	// Defaults describe the provider when --from names it but detection
	// does not find it.
	Defaults Defaults
}

// Defaults is what a provider uses unless configured otherwise: what is
// assumed of one named by --from that detection did not find.
type Defaults struct {
	// UDPPorts are the UDP ports its datapath binds by default, which
	// Cilium's tunnel must avoid.
	UDPPorts []int
	// NoUDPPorts says why UDPPorts is empty, when it is.
	NoUDPPorts string
	// EnforcesPolicy says whether it enforces NetworkPolicy by default.
	EnforcesPolicy bool
}

// Detectors are the source CNIs detection knows, in the order a DaemonSet
// is matched against them (flannel's broad name match first, except for
// Canal's DaemonSet, which it excludes).
func Detectors() []Detector {
	return []Detector{Flannel(), Canal(), Calico(), Weave(), KubeRouter(), K3sFlannel()}
}

// DetectorNamed returns the detector of a source CNI by its name.
func DetectorNamed(name string) (Detector, bool) {
	for _, d := range Detectors() {
		if d.Name == name {
			return d, true
		}
	}
	return Detector{}, false
}

// SourceCNIs are the providers this version migrates from, as --from
// takes them.
func SourceCNIs() []string {
	var out []string
	for _, d := range Detectors() {
		out = append(out, d.Name)
	}
	return out
}

// IsSourceCNI reports whether name is one of SourceCNIs.
func IsSourceCNI(name string) bool {
	_, ok := DetectorNamed(name)
	return ok
}

// sourceCNIOf names the source CNI whose DaemonSet ds is, "" for none.
func sourceCNIOf(ds *appsv1.DaemonSet) string {
	for _, d := range Detectors() {
		if d.DaemonSet(ds) {
			return d.Name
		}
	}
	return ""
}

// foreignCNI names network providers this version recognises but does not
// migrate from.
func foreignCNI(ds *appsv1.DaemonSet) string {
	switch ds.Name {
	case "antrea-agent":
		return "antrea"
	case "aws-node":
		return "aws-vpc-cni"
	}
	return ""
}

// calicoResources reports whether the DaemonSet is one of a provider that
// keeps its state in Calico's resources.
func calicoResources(ds *appsv1.DaemonSet) bool {
	for _, d := range Detectors() {
		if d.CalicoResources && d.DaemonSet(ds) {
			return true
		}
	}
	return false
}

// detectorOf returns the detector of a provider found, false for none.
func detectorOf(cni *CNI) (Detector, bool) {
	if cni == nil {
		return Detector{}, false
	}
	return DetectorNamed(cni.Name)
}
