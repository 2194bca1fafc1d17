package policybridge

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// ManagedBy is the label value (app.kubernetes.io/managed-by) of every
// object the bridge writes; it never touches an object without it.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "cni-migrate"
)

// Identity is a CiliumIdentity: its numeric ID (the object's name) and its
// security labels ("k8s:KEY" -> value).
type Identity struct {
	ID     int64
	Labels map[string]string
	// Namespace is the pod namespace the identity is of (the object's
	// io.kubernetes.pod.namespace label).
	Namespace string
}

// Endpoint is a CiliumEndpoint the bridge wants in the cluster, for one
// pod on the old network.
type Endpoint struct {
	Namespace, Name string
	// PodUID owns the endpoint: Kubernetes deletes it with the pod.
	PodUID string
	// Addresses are the pod's; Node is its node's address, where Cilium
	// sends the pod's traffic.
	Addresses      []netip.Addr
	Node           string
	Identity       int64
	Labels         []string
	ServiceAccount string
}

// Existing is a CiliumEndpoint found in the cluster.
type Existing struct {
	Namespace, Name string
	// Ours says whether the bridge wrote it (ManagedByLabel).
	Ours bool
	// Key is what the bridge compares with its wish (see Endpoint.Key);
	// empty for endpoints not ours.
	Key string
}

// Input is what Reconcile reads from the cluster.
type Input struct {
	Pods       []corev1.Pod
	Namespaces []corev1.Namespace
	// Pool is Cilium's pod CIDRs: a pod with an address in them is
	// Cilium's.
	Pool []netip.Prefix
	// Cluster is Cilium's cluster-name, ClusterID its cluster-id.
	Cluster   string
	ClusterID int64
	// Identities and Endpoints are the cluster's CiliumIdentities and
	// CiliumEndpoints.
	Identities []Identity
	Endpoints  []Existing
}

// Plan is what Reconcile asks for: identities to create, endpoints to
// write (create or update) and endpoints of the bridge's to delete.
type Plan struct {
	CreateIdentities []Identity
	Write            []Endpoint
	Delete           []Existing
	// Bridged is the number of pods on the old network the bridge covers
	// (written or already right).
	Bridged int
}

// Key is the endpoint's content as a string: an endpoint already in the
// cluster with the same key is left alone.
func (e Endpoint) Key() string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s %v %s %d %v %s", e.PodUID, e.Addresses, e.Node, e.Identity, e.Labels, e.ServiceAccount)
	return strconv.FormatUint(h.Sum64(), 16)
}

// onOldNetwork returns the addresses of a pod the bridge covers: running,
// not on the host's network, not being deleted, with addresses outside
// Cilium's pool and a node address.
func onOldNetwork(p *corev1.Pod, pool []netip.Prefix) []netip.Addr {
	if p.Spec.HostNetwork || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Status.HostIP == "" {
		return nil
	}
	var out []netip.Addr
	for _, ip := range p.Status.PodIPs {
		a, err := netip.ParseAddr(ip.IP)
		if err != nil {
			continue
		}
		for _, c := range pool {
			if c.Contains(a) {
				return nil
			}
		}
		out = append(out, a)
	}
	return out
}

// Reconcile computes the endpoints the pods on the old network need, the
// identities to create for label sets no identity has yet, and the
// endpoints of the bridge's that are no longer needed. It never writes
// over an endpoint it did not write (Cilium's own, for its pods).
func Reconcile(in Input) Plan {
	var plan Plan
	nsLabels := map[string]map[string]string{}
	for _, ns := range in.Namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	byKey := map[string]int64{}
	used := map[int64]bool{}
	for _, id := range in.Identities {
		used[id.ID] = true
		k := labelKey(id.Labels)
		if cur, ok := byKey[k]; !ok || id.ID < cur {
			byKey[k] = id.ID
		}
	}
	existing := map[string]Existing{}
	for _, e := range in.Endpoints {
		existing[e.Namespace+"/"+e.Name] = e
	}
	wanted := map[string]bool{}
	pods := append([]corev1.Pod(nil), in.Pods...)
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	for i := range pods {
		p := &pods[i]
		addrs := onOldNetwork(p, in.Pool)
		if len(addrs) == 0 {
			continue
		}
		key := p.Namespace + "/" + p.Name
		if e, ok := existing[key]; ok && !e.Ours {
			continue // Cilium's own endpoint: the pod is Cilium's
		}
		labels := IdentityLabels(p.Labels, nsLabels[p.Namespace], p.Namespace, p.Spec.ServiceAccountName, in.Cluster)
		lk := labelKey(labels)
		id, ok := byKey[lk]
		if !ok {
			id = freeID(lk, in.ClusterID, used)
			used[id] = true
			byKey[lk] = id
			plan.CreateIdentities = append(plan.CreateIdentities, Identity{ID: id, Labels: labels, Namespace: p.Namespace})
		}
		ep := Endpoint{Namespace: p.Namespace, Name: p.Name, PodUID: string(p.UID), Addresses: addrs, Node: p.Status.HostIP,
			Identity: id, Labels: labelList(labels), ServiceAccount: p.Spec.ServiceAccountName}
		wanted[key] = true
		plan.Bridged++
		if e, ok := existing[key]; ok && e.Key == ep.Key() {
			continue
		}
		plan.Write = append(plan.Write, ep)
	}
	for _, e := range in.Endpoints {
		if e.Ours && !wanted[e.Namespace+"/"+e.Name] {
			plan.Delete = append(plan.Delete, e)
		}
	}
	sort.Slice(plan.Delete, func(i, j int) bool {
		return plan.Delete[i].Namespace+"/"+plan.Delete[i].Name < plan.Delete[j].Namespace+"/"+plan.Delete[j].Name
	})
	return plan
}

// The range Cilium allocates cluster-wide identities from, for cluster ID 0
// (pkg/identity: MinimalAllocationIdentity, MaximumAllocationIdentity);
// another cluster ID shifts it by ID << 16.
const (
	minIdentity = 256
	maxIdentity = 65535
)

// freeID picks an unused identity for a label set: derived from the labels
// (the same set gets the same number in every run), the next free one when
// taken.
func freeID(labelKey string, clusterID int64, used map[int64]bool) int64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(labelKey))
	span := int64(maxIdentity - minIdentity + 1)
	base := clusterID << 16
	n := int64(h.Sum32()) % span
	for i := int64(0); i < span; i++ {
		id := base + minIdentity + (n+i)%span
		if !used[id] {
			return id
		}
	}
	return 0 // every identity taken: Apply refuses 0
}

// Name is the object name of an identity.
func (i Identity) Name() string { return strconv.FormatInt(i.ID, 10) }
