package detect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtures are detect's snapshot fixtures (YAML streams of cluster objects).
func fixtures(f *testing.F) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzLoadSnapshot: any file given to plan --from loads or is refused, and
// whatever loads can be analysed, without a panic.
func FuzzLoadSnapshot(f *testing.F) {
	for _, b := range fixtures(f) {
		f.Add(b)
	}
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: 1}\n"))
	f.Add([]byte("---\n---\n: :\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := LoadSnapshot(data)
		if err != nil {
			return
		}
		_ = Analyze(s)
	})
}

// FuzzFlannelNetConf: any net-conf.json gives a network and backend or a
// one-line error.
func FuzzFlannelNetConf(f *testing.F) {
	for _, s := range []string{
		`{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}`,
		`{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "Port": 4789, "VNI": 4096, "MTU": 1400}}`,
		`{"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}}`,
		`{"Network": "10.244.0.0/16", "Backend": {"Type": "wireguard"}}`,
		`{"EnableIPv6": true, "IPv6Network": "fd00::/48"}`,
		`{"Backend": {"Port": -1}}`, `{`, `null`, `[]`, `""`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		_, b, err := ParseFlannelNetConf(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if b.Type == "" {
			t.Fatal("no backend type")
		}
	})
}

// FuzzAnalyzeFields: each fixture with one outside value replaced by the
// fuzzed text everywhere the detectors read outside values (every
// ConfigMap entry, container argument and environment value: flannel's
// net-conf.json, Calico's and Canal's configuration, Weave's and
// kube-router's arguments, kube-proxy's configuration) is analysed without
// a panic.
func FuzzAnalyzeFields(f *testing.F) {
	streams := fixtures(f)
	for i := range streams {
		for _, s := range []string{"", "10.244.0.0/16", "not a cidr", "--cluster-cidr=", `{"Network":`, "a=b=c", "vxlan", "0"} {
			f.Add(uint8(i), uint8(0), s)
			f.Add(uint8(i), uint8(1), s)
			f.Add(uint8(i), uint8(2), s)
		}
	}
	f.Fuzz(func(t *testing.T, which, where uint8, value string) {
		s, err := LoadSnapshot(streams[int(which)%len(streams)])
		if err != nil {
			t.Fatal(err)
		}
		switch where % 3 {
		case 0:
			for _, cm := range s.ConfigMaps {
				for k := range cm.Data {
					cm.Data[k] = value
				}
			}
		case 1:
			for i := range s.DaemonSets {
				spec := &s.DaemonSets[i].Spec.Template.Spec
				for j := range spec.Containers {
					for k := range spec.Containers[j].Args {
						spec.Containers[j].Args[k] = value
					}
					spec.Containers[j].Command = append(spec.Containers[j].Command, value)
				}
			}
		case 2:
			for i := range s.DaemonSets {
				spec := &s.DaemonSets[i].Spec.Template.Spec
				for j := range spec.Containers {
					for k := range spec.Containers[j].Env {
						spec.Containers[j].Env[k].Value = value
					}
				}
			}
			for i := range s.SystemPods {
				for j := range s.SystemPods[i].Spec.Containers {
					s.SystemPods[i].Spec.Containers[j].Command = append(s.SystemPods[i].Spec.Containers[j].Command, value)
				}
			}
		}
		_ = Analyze(s)
	})
}
