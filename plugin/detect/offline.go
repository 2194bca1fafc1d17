package detect

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// LoadSnapshot builds a Snapshot from YAML streams of objects, filing each
// where Fetch would (nodes, DaemonSets, ConfigMaps, kube-system pods,
// NetworkPolicies, PDBs, ServiceCIDRs, the kubernetes Service, and
// Calico's Installations, IPPools, FelixConfiguration and policies). It
// lets detection run on saved objects, without an API server.
func LoadSnapshot(streams ...[]byte) (*Snapshot, error) {
	s := &Snapshot{ConfigMaps: map[string]*corev1.ConfigMap{}}
	dec := scheme.Codecs.UniversalDeserializer()
	for _, data := range streams {
		for _, doc := range strings.Split(string(data), "\n---\n") {
			if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
				continue
			}
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				return nil, err
			}
			if m == nil {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			switch u.GroupVersionKind().Group {
			case "crd.projectcalico.org", "operator.tigera.io":
				if err := addCalico(s, u); err != nil {
					return nil, err
				}
				continue
			}
			obj, _, err := dec.Decode([]byte(doc), nil, nil)
			if err != nil {
				return nil, err
			}
			switch o := obj.(type) {
			case *corev1.Node:
				s.Nodes = append(s.Nodes, *o)
			case *appsv1.DaemonSet:
				s.DaemonSets = append(s.DaemonSets, *o)
			case *corev1.ConfigMap:
				s.ConfigMaps[cmKey(o.Namespace, o.Name)] = o
			case *corev1.Pod:
				s.SystemPods = append(s.SystemPods, *o)
			case *networkingv1.NetworkPolicy:
				s.NetworkPolicies = append(s.NetworkPolicies, NamespacedName{o.Namespace, o.Name})
				s.PolicyIPBlocks = append(s.PolicyIPBlocks, ipBlocksOf(o)...)
				s.PolicyPorts = append(s.PolicyPorts, policyPortsOf(o)...)
			case *policyv1.PodDisruptionBudget:
				s.PDBs = append(s.PDBs, *o)
			case *networkingv1.ServiceCIDR:
				s.ServiceCIDRs = append(s.ServiceCIDRs, o.Spec.CIDRs...)
			case *corev1.Service:
				s.KubernetesServiceIP = o.Spec.ClusterIP
			default:
				return nil, fmt.Errorf("kind %T is not part of a snapshot", obj)
			}
		}
	}
	s.NamedPorts = namedPortsOf(s.SystemPods, egressPortNames(s.PolicyPorts))
	return s, nil
}

func addCalico(s *Snapshot, u *unstructured.Unstructured) error {
	switch u.GetKind() {
	case "Installation":
		s.CalicoInstallations = append(s.CalicoInstallations, *u)
	case "IPPool":
		s.CalicoIPPools = append(s.CalicoIPPools, *u)
	case "FelixConfiguration":
		if u.GetName() == "default" {
			s.CalicoFelixConfig = u
		}
	case "NetworkPolicy", "GlobalNetworkPolicy":
		s.CalicoPolicies = append(s.CalicoPolicies, NamespacedName{u.GetNamespace(), u.GetName()})
	default:
		return fmt.Errorf("Calico kind %s is not part of a snapshot", u.GetKind())
	}
	return nil
}
