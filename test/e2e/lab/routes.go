package lab

import (
	"context"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	ciliumNodes     = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnodes"}
	blockAffinities = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "blockaffinities"}
)

// routePods keeps a route in the fabric namespace for every node's pod
// CIDRs (the node's spec.podCIDR for the old CNI, the blocks of Calico's
// IPAM affine to it, its CiliumNode's spec.ipam.podCIDRs for Cilium) via
// that node's address, until ctx ends.
//
// On a real cluster the API server runs on a node, which the CNI gives a
// route to every pod; here it runs in the fabric namespace, and these
// routes give it the same reach: what the API server's pod and Service
// proxies (kubectl cni-migrate connectivity), webhooks and aggregated APIs
// need. Pods' traffic between nodes does not use them: it goes through the
// CNIs' own tunnels, node to node.
func (l *Lab) routePods(ctx context.Context) {
	installed := map[string]string{}
	for {
		want := map[string]string{}
		if nodes, err := l.Cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
			for _, n := range nodes.Items {
				if ln := l.Node(n.Name); ln != nil {
					for _, c := range append([]string{n.Spec.PodCIDR}, n.Spec.PodCIDRs...) {
						if c != "" {
							want[c] = ln.IP
						}
					}
				}
			}
		}
		if cns, err := l.Cluster.Dynamic.Resource(ciliumNodes).List(ctx, metav1.ListOptions{}); err == nil {
			for _, cn := range cns.Items {
				ln := l.Node(cn.GetName())
				if ln == nil {
					continue
				}
				cidrs, _, _ := unstructured.NestedStringSlice(cn.Object, "spec", "ipam", "podCIDRs")
				for _, c := range cidrs {
					want[c] = ln.IP
				}
			}
		}
		if bas, err := l.Cluster.Dynamic.Resource(blockAffinities).List(ctx, metav1.ListOptions{}); err == nil {
			for _, ba := range bas.Items {
				node, _, _ := unstructured.NestedString(ba.Object, "spec", "node")
				cidr, _, _ := unstructured.NestedString(ba.Object, "spec", "cidr")
				if ln := l.Node(node); ln != nil && cidr != "" {
					want[cidr] = ln.IP
				}
			}
		}
		for cidr, via := range want {
			if installed[cidr] == via {
				continue
			}
			if _, err := netip.ParsePrefix(cidr); err != nil {
				continue
			}
			if err := ipIn(ctx, l.fabricNS(), "route", "replace", cidr, "via", via); err != nil {
				if ctx.Err() == nil {
					l.logf("lab: route %s via %s in the fabric: %v", cidr, via, err)
				}
				continue
			}
			installed[cidr] = via
		}
		for cidr := range installed {
			if _, ok := want[cidr]; !ok {
				_ = ipIn(ctx, l.fabricNS(), "route", "del", cidr)
				delete(installed, cidr)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}
