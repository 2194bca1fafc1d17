package sourcecni

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// optional are the parts of a Source that may be empty, by path; the rules
// that tie some of them together are in TestSourcesComplete. Every other
// field, however deep, must be set (bools excepted: false is a fact too),
// so a part added to Source is required of every CNI until listed here.
var optional = map[string]bool{
	"Is":                         true, // required only when entries share a name
	"Detect.Defaults.UDPPorts":   true, // or NoUDPPorts
	"Detect.Defaults.NoUDPPorts": true,
	"Detect.Embedded":            true, // only for a CNI built into a distribution
	"Checks.Extra":               true,
	"Finalize.Manual":            true, // exactly one of Manual and Owned
	"Finalize.Owned":             true,
	"Finalize.ForeignMount":      true,
	"Node.CNIConf":               true, // with CNIConfNote, or neither
	"Node.CNIConfNote":           true,
	"Node.Sweep":                 true, // for the CNIs whose leftovers were read on real nodes
	"Node.Tunnel":                true, // for the CNIs with a tunnel interface the plugin can name
	"Plan.BGP":                   true,
}

// missing lists the required parts of v (a struct) that are not set.
func missing(v reflect.Value, prefix string) []string {
	var out []string
	for i := 0; i < v.NumField(); i++ {
		f, path := v.Field(i), prefix+v.Type().Field(i).Name
		if optional[path] {
			continue
		}
		switch f.Kind() {
		case reflect.Struct:
			out = append(out, missing(f, path+".")...)
		case reflect.Bool:
		case reflect.Slice, reflect.Map:
			if f.Len() == 0 {
				out = append(out, path)
			}
			for j := 0; f.Kind() == reflect.Slice && j < f.Len(); j++ {
				if f.Index(j).IsZero() {
					out = append(out, path+"["+strconv.Itoa(j)+"]")
				}
			}
		default:
			if f.IsZero() {
				out = append(out, path)
			}
		}
	}
	return out
}

func TestSourcesComplete(t *testing.T) {
	byName := map[string]int{}
	for _, s := range Sources() {
		byName[s.Name]++
	}
	for _, s := range Sources() {
		t.Run(string(s.ID), func(t *testing.T) {
			lacks := missing(reflect.ValueOf(s), "")
			for _, e := range s.Checks.Extra {
				if e == nil {
					lacks = append(lacks, "Checks.Extra (a nil check)")
				}
			}
			if byName[s.Name] > 1 && s.Is == nil {
				lacks = append(lacks, "Is (entries share the name "+s.Name+")")
			}
			if (s.Finalize.Manual == nil) == (s.Finalize.Owned == nil) {
				lacks = append(lacks, "exactly one of Finalize.Manual and Finalize.Owned")
			}
			if d := s.Detect.Defaults; len(d.UDPPorts) == 0 && d.NoUDPPorts == "" {
				lacks = append(lacks, "Detect.Defaults.UDPPorts (or NoUDPPorts, saying why there are none)")
			}
			if (s.Node.CNIConf == "") != (s.Node.CNIConfNote == "") {
				lacks = append(lacks, "Node.CNIConf and Node.CNIConfNote together")
			}
			if s.Detect.Name != s.Name {
				lacks = append(lacks, "Detect for "+s.Name+" (it is "+s.Detect.Name+"'s)")
			}
			if len(lacks) > 0 {
				t.Errorf("%s lacks: %s", s.ID, strings.Join(lacks, "; "))
			}
		})
	}
}

// TestEveryIDRegistered reads the ID constants of this package from its
// source and wants an entry for each, and one entry per ID.
func TestEveryIDRegistered(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	for _, f := range pkgs["sourcecni"].Files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				if typ, ok := vs.Type.(*ast.Ident); !ok || typ.Name != "ID" {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok {
						t.Fatalf("ID constant %s is not a string literal", vs.Names[0])
					}
					s, _ := strconv.Unquote(lit.Value)
					ids = append(ids, ID(s))
				}
			}
		}
	}
	if len(ids) == 0 {
		t.Fatal("no ID constants found")
	}
	for _, id := range ids {
		if _, err := Get(id); err != nil {
			t.Errorf("ID %q has no registry entry: add it to Sources", id)
		}
	}
	seen := map[ID]bool{}
	for _, s := range Sources() {
		if seen[s.ID] {
			t.Errorf("ID %q registered twice", s.ID)
		}
		seen[s.ID] = true
	}
	if len(Sources()) != len(ids) {
		t.Errorf("%d entries for %d ID constants", len(Sources()), len(ids))
	}
}

// TestEveryDetectorRegistered: every CNI detection finds has an entry.
func TestEveryDetectorRegistered(t *testing.T) {
	for _, d := range detect.Detectors() {
		if _, err := Named(d.Name); err != nil {
			t.Errorf("detect finds %s, which has no registry entry", d.Name)
		}
	}
	if got, want := strings.Join(Names(), ","), strings.Join(detect.SourceCNIs(), ","); got != want {
		t.Errorf("registry names %s, detection %s", got, want)
	}
}

func TestFor(t *testing.T) {
	tests := []struct {
		cni  *detect.CNI
		want ID
	}{
		{&detect.CNI{Name: "flannel"}, Flannel},
		{&detect.CNI{Name: "canal"}, Canal},
		{&detect.CNI{Name: "calico", Install: "manifest"}, CalicoManifest},
		{&detect.CNI{Name: "calico"}, CalicoManifest}, // named by --from
		{&detect.CNI{Name: "calico", Install: "operator"}, CalicoOperator},
		{&detect.CNI{Name: "weave"}, Weave},
		{&detect.CNI{Name: "kube-router"}, KubeRouter},
		{&detect.CNI{Name: "k3s-flannel", Embedded: "k3s"}, K3sFlannel},
	}
	for _, tt := range tests {
		s, err := For(tt.cni)
		if err != nil || s.ID != tt.want {
			t.Errorf("For(%s, install %q) = %q, %v; want %q", tt.cni.Name, tt.cni.Install, s.ID, err, tt.want)
		}
		n := 0
		for _, e := range Sources() {
			if e.Name == tt.cni.Name && (e.Is == nil || e.Is(tt.cni)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s, install %q: %d entries match, want 1", tt.cni.Name, tt.cni.Install, n)
		}
	}
}

func TestUnknownIsAnError(t *testing.T) {
	for name, err := range map[string]error{
		"For":   func() error { _, err := For(&detect.CNI{Name: "antrea"}); return err }(),
		"nil":   func() error { _, err := For(nil); return err }(),
		"Named": func() error { _, err := Named("antrea"); return err }(),
		"Get":   func() error { _, err := Get("antrea"); return err }(),
	} {
		if errs.Code(err) != errs.Unsupported || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v (code %d), want a one-line Unsupported error", name, err, errs.Code(err))
		}
	}
}

// TestSharedNameSharesNode: Named serves what the entries of a name share.
func TestSharedNameSharesNode(t *testing.T) {
	for _, s := range Sources() {
		first, err := Named(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		a, b := s.Node, first.Node
		// Functions are equal when they are the same function.
		if reflect.ValueOf(a.Tunnel).Pointer() != reflect.ValueOf(b.Tunnel).Pointer() {
			t.Errorf("%s and %s share the name %s but not their Node.Tunnel", s.ID, first.ID, s.Name)
		}
		a.Tunnel, b.Tunnel = nil, nil
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s and %s share the name %s but not their Node part", s.ID, first.ID, s.Name)
		}
	}
}

// TestK3sFlannelBackend: k3s's --flannel-backend values.
func TestK3sFlannelBackend(t *testing.T) {
	for typ, want := range map[string]Level{"vxlan": Pass, "host-gw": Warn, "wireguard-native": Warn, "ipsec": Fail, "none": Fail} {
		f := k3sFlannelBackend(&detect.CNI{Name: "k3s-flannel", Backend: detect.Backend{Type: typ}})
		if f.Level != want {
			t.Errorf("%s: %s %q, want %s", typ, f.Level, f.Message, want)
		}
		if f.Level == Fail && !strings.Contains(f.Fix, "flannel-backend: vxlan in /etc/rancher/k3s/config.yaml") {
			t.Errorf("%s: fix %q", typ, f.Fix)
		}
	}
}

// TestSweeps: what finalize sweeps from the nodes stays in the CNI's own
// names: interface names plain, patterns that compile, state directories
// below /var/lib or /run (what the sweep Job mounts), files plain names in
// the CNI directory.
func TestSweeps(t *testing.T) {
	plain := regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	for _, s := range Sources() {
		sw := s.Node.Sweep
		if sw == nil {
			continue
		}
		for _, l := range append(append([]string{}, sw.Links...), sw.Files...) {
			if !plain.MatchString(l) {
				t.Errorf("%s: %q is not a plain name", s.ID, l)
			}
		}
		for _, re := range []string{sw.LinkPattern, sw.Chains, sw.IPSets} {
			if _, err := regexp.Compile(re); err != nil {
				t.Errorf("%s: pattern %q: %v", s.ID, re, err)
			}
		}
		if sw.Chains == "" || sw.Chains == ".*" || sw.IPSets == ".*" {
			t.Errorf("%s: chains %q, ipsets %q: say which", s.ID, sw.Chains, sw.IPSets)
		}
		for _, d := range sw.Dirs {
			if !strings.HasPrefix(d, "/var/lib/") && !strings.HasPrefix(d, "/run/") || strings.Contains(d, "..") || !plain.MatchString(path.Base(d)) {
				t.Errorf("%s: directory %q is not below /var/lib or /run", s.ID, d)
			}
		}
		for _, p := range sw.RouteProtocols {
			if _, err := strconv.Atoi(p); err != nil {
				t.Errorf("%s: route protocol %q is not a number", s.ID, p)
			}
		}
	}
}
