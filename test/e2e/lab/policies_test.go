package lab

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// The probe pods' env carries their node: the monitor explains a failed
// probe by its source node's window, and a pod without one explains none.
func TestProbeDaemonSet(t *testing.T) {
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict([]byte(probeDaemonSet("lab-policy", "server", "app", "server", []string{"--listen=:8080", "--out=/out/policy"})), &ds); err != nil {
		t.Fatal(err)
	}
	if ds.Name != "server" || ds.Namespace != "lab-policy" || ds.Spec.Selector.MatchLabels["app"] != "server" || ds.Spec.Template.Labels["app"] != "server" {
		t.Errorf("metadata and labels: %s/%s %v %v", ds.Namespace, ds.Name, ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels)
	}
	c := ds.Spec.Template.Spec.Containers[0]
	if c.Image != Images.Probe || len(c.Args) != 2 || c.Args[1] != "--out=/out/policy" {
		t.Errorf("container: %s %q", c.Image, c.Args)
	}
	want := map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "NODE_NAME": "spec.nodeName", "POD_IP": "status.podIP"}
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || want[e.Name] != e.ValueFrom.FieldRef.FieldPath {
			t.Errorf("env %s: %+v", e.Name, e.ValueFrom)
		}
		delete(want, e.Name)
	}
	if len(want) != 0 {
		t.Errorf("env missing: %v", want)
	}
}
