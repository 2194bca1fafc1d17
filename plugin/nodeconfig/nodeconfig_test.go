package nodeconfig

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

var update = flag.Bool("update", false, "rewrite golden files")

func version(t *testing.T, s string) ciliumver.Version {
	t.Helper()
	v, err := ciliumver.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestBuildGolden(t *testing.T) {
	for _, tt := range []struct {
		version, want string
	}{
		{"1.14", "cilium.io/v2alpha1"},
		{"1.15.19", "cilium.io/v2alpha1"},
		{"1.16", "cilium.io/v2"},
		{"1.18.11", "cilium.io/v2"},
		{"1.20.2", "cilium.io/v2"},
	} {
		t.Run(tt.version, func(t *testing.T) {
			obj, err := Build(Options{Version: version(t, tt.version), Namespace: DefaultNamespace, Name: DefaultName, Label: DefaultLabel})
			if err != nil {
				t.Fatal(err)
			}
			if obj.GetAPIVersion() != tt.want {
				t.Fatalf("apiVersion %s, want %s", obj.GetAPIVersion(), tt.want)
			}
			got, err := yaml.Marshal(obj.Object)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "nodeconfig-"+tt.version+".yaml")
			if *update {
				_ = os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("differs from %s:\n%s", golden, got)
			}
		})
	}
}

func TestCustomNameAndLabel(t *testing.T) {
	obj, err := Build(Options{Version: version(t, "1.18"), Namespace: "cilium", Name: "wave-1", Label: "example.com/cilium=yes"})
	if err != nil {
		t.Fatal(err)
	}
	sel := obj.Object["spec"].(map[string]any)["nodeSelector"].(map[string]any)["matchLabels"].(map[string]any)
	if obj.GetName() != "wave-1" || obj.GetNamespace() != "cilium" || sel["example.com/cilium"] != "yes" || len(sel) != 1 {
		t.Fatalf("%v", obj.Object)
	}
}

// TestChainingMode: the guide's none by default, portmap when asked (for
// hostPorts with kube-proxy, as values-initial.yaml's cni.chainingMode).
func TestChainingMode(t *testing.T) {
	for mode, want := range map[string]string{"": "none", "none": "none", "portmap": "portmap"} {
		obj, err := Build(Options{Version: version(t, "1.20"), Namespace: "kube-system", Name: DefaultName, Label: DefaultLabel, ChainingMode: mode})
		if err != nil {
			t.Fatal(err)
		}
		if got := obj.Object["spec"].(map[string]any)["defaults"].(map[string]any)["cni-chaining-mode"]; got != want {
			t.Errorf("ChainingMode %q: cni-chaining-mode %v, want %s", mode, got, want)
		}
	}
}

func TestBadOptions(t *testing.T) {
	v := version(t, "1.18")
	for _, tt := range []struct {
		name string
		o    Options
		has  string
	}{
		{"no equals", Options{Version: v, Namespace: "kube-system", Name: "x", Label: "novalue"}, "has no '='"},
		{"bad key", Options{Version: v, Namespace: "kube-system", Name: "x", Label: "a b=c"}, "key"},
		{"bad value", Options{Version: v, Namespace: "kube-system", Name: "x", Label: "a=b c"}, "value"},
		{"bad name", Options{Version: v, Namespace: "kube-system", Name: "Bad_Name", Label: DefaultLabel}, "--name"},
		{"bad namespace", Options{Version: v, Namespace: "Kube System", Name: "x", Label: DefaultLabel}, "namespace"},
		{"bad chaining", Options{Version: v, Namespace: "kube-system", Name: "x", Label: DefaultLabel, ChainingMode: "generic-veth"}, "--cni-chaining-mode"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.o)
			if errs.Code(err) != errs.Usage || !strings.Contains(err.Error(), tt.has) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestCheckServed(t *testing.T) {
	if err := CheckServed("cilium.io/v2", []string{"cilium.io/v2", "cilium.io/v2alpha1"}); err != nil {
		t.Fatal(err)
	}
	err := CheckServed("cilium.io/v2alpha1", []string{"cilium.io/v2"})
	if errs.Code(err) != errs.Usage || !strings.Contains(err.Error(), "--cilium-version") {
		t.Fatalf("got %v", err)
	}
	if err := CheckServed("cilium.io/v2", nil); errs.Code(err) != errs.Unsupported {
		t.Fatalf("got %v", err)
	}
}

func TestCheckVersion(t *testing.T) {
	v115, v118, v120 := version(t, "1.15.19"), version(t, "1.18.11"), version(t, "1.20")
	if err := CheckVersion(v118, v120, true); err != nil {
		t.Fatal(err)
	}
	if err := CheckVersion(v115, v118, false); err != nil {
		t.Fatal("a default version is replaced by the installed one, never refused")
	}
	err := CheckVersion(v115, v118, true)
	if errs.Code(err) != errs.Usage || !strings.Contains(err.Error(), "reads cilium.io/v2 CiliumNodeConfigs but --cilium-version 1.15.19 would write cilium.io/v2alpha1") {
		t.Fatalf("got %v", err)
	}
}
