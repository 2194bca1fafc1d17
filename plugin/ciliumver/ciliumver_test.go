package ciliumver

import (
	"errors"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Version
		str  string
	}{
		{"1.18", Version{1, 18, 0, false}, "1.18"},
		{"1.18.11", Version{1, 18, 11, true}, "1.18.11"},
		{"v1.18.11", Version{1, 18, 11, true}, "1.18.11"},
		{"v1.14", Version{1, 14, 0, false}, "1.14"},
		{"1.14.0", Version{1, 14, 0, true}, "1.14.0"},
		{"1.20.2", Version{1, 20, 2, true}, "1.20.2"},
		{"1.19.99", Version{1, 19, 99, true}, "1.19.99"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in     string
		msg    string // substring of Msg
		fixHas []string
	}{
		{"banana", "not a Cilium version", []string{"1.14 to 1.20", "1.20.2"}},
		{"", "not a Cilium version", nil},
		{"1", "not a Cilium version", nil},
		{"1.", "not a Cilium version", nil},
		{"1.18.", "not a Cilium version", nil},
		{"1.18.1.1", "not a Cilium version", nil},
		{"V1.18", "not a Cilium version", nil},
		{"vv1.18", "not a Cilium version", nil},
		{"1.18.0-rc.1", "not a Cilium version", nil},
		{"01.18", "not a Cilium version", nil},
		{"1.018", "not a Cilium version", nil},
		{"+1.18", "not a Cilium version", nil},
		{" 1.18", "not a Cilium version", nil},
		{"1.18 ", "not a Cilium version", nil},
		{"1.x", "not a Cilium version", nil},
		{"1.99999999999999999999", "not a Cilium version", nil},
		{"1.9", "Cilium 1.9 is not supported", []string{"1.14 to 1.20", "1.20.2"}},
		{"1.13", "Cilium 1.13 is not supported", []string{"1.14 to 1.20", "1.20.2"}},
		{"1.13.4", "Cilium 1.13.4 is not supported", nil},
		{"1.21", "Cilium 1.21 is not supported", []string{"1.14 to 1.20", "1.20.2"}},
		{"v2.0", "Cilium 2.0 is not supported", nil},
		{"2.0", "Cilium 2.0 is not supported", nil},
		{"0.14", "Cilium 0.14 is not supported", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			var e *errs.Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) error = %v, want *errs.Error", tt.in, err)
			}
			if e.Code != errs.Usage {
				t.Errorf("code = %d, want %d (Usage)", e.Code, errs.Usage)
			}
			if !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("Msg = %q, want it to contain %q", e.Msg, tt.msg)
			}
			if strings.ContainsAny(e.Error(), "\n") || strings.HasSuffix(e.Msg, ".") || strings.HasSuffix(e.Fix, ".") {
				t.Errorf("error is not one line without trailing periods: %q", e.Error())
			}
			if e.Fix == "" {
				t.Errorf("no fix in %q", e.Error())
			}
			for _, s := range tt.fixHas {
				if !strings.Contains(e.Fix, s) {
					t.Errorf("Fix = %q, want it to name %q", e.Fix, s)
				}
			}
		})
	}
}

func TestAtLeast(t *testing.T) {
	tests := []struct {
		v            string
		major, minor int
		want         bool
	}{
		{"1.16", 1, 16, true},
		{"1.16.5", 1, 16, true},
		{"1.15.19", 1, 16, false},
		{"1.20", 1, 14, true},
		{"1.14", 1, 15, false},
		{"1.18", 0, 99, true},
		{"1.18", 2, 0, false},
	}
	for _, tt := range tests {
		v, err := Parse(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.AtLeast(tt.major, tt.minor); got != tt.want {
			t.Errorf("%s.AtLeast(%d, %d) = %v, want %v", tt.v, tt.major, tt.minor, got, tt.want)
		}
	}
}

func TestNodeConfigAPIVersion(t *testing.T) {
	tests := map[string]string{
		"1.14":    "cilium.io/v2alpha1",
		"1.14.19": "cilium.io/v2alpha1",
		"1.15":    "cilium.io/v2alpha1",
		"1.16":    "cilium.io/v2",
		"1.16.0":  "cilium.io/v2",
		"1.17.6":  "cilium.io/v2",
		"1.19":    "cilium.io/v2",
		"1.20.2":  "cilium.io/v2",
	}
	for in, want := range tests {
		v, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.NodeConfigAPIVersion(); got != want {
			t.Errorf("%s: NodeConfigAPIVersion() = %q, want %q", in, got, want)
		}
	}
}

func TestHelmChartVersion(t *testing.T) {
	tests := map[string]string{
		"1.18":     "~1.18.0",
		"1.14":     "~1.14.0",
		"1.18.11":  "1.18.11",
		"v1.20.2":  "1.20.2",
		"1.19.0":   "1.19.0",
		"v1.16":    "~1.16.0",
		"1.20.100": "1.20.100",
	}
	for in, want := range tests {
		v, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.HelmChartVersion(); got != want {
			t.Errorf("%s: HelmChartVersion() = %q, want %q", in, got, want)
		}
	}
}

func TestDefaultAndSupported(t *testing.T) {
	d, err := Parse(DefaultVersion)
	if err != nil {
		t.Fatalf("DefaultVersion %q does not parse: %v", DefaultVersion, err)
	}
	if d != Default() {
		t.Errorf("Default() = %+v, want %+v", Default(), d)
	}
	want := []string{"1.14.19", "1.15.19", "1.16.5", "1.17.6", "1.18.11", "1.19.0", "1.20.2"}
	got := Supported()
	if len(got) != len(want) {
		t.Fatalf("Supported() has %d entries, want %d", len(got), len(want))
	}
	for i, v := range got {
		if v.String() != want[i] {
			t.Errorf("Supported()[%d] = %s, want %s", i, v, want[i])
		}
		p, err := Parse(v.String())
		if err != nil || p != v {
			t.Errorf("Supported()[%d] = %s does not round-trip through Parse: %+v, %v", i, v, p, err)
		}
	}
	// Every supported minor is listed once, and the default is the newest pin.
	if last := got[len(got)-1]; last != Default() {
		t.Errorf("newest pinned version %s is not the default %s", last, Default())
	}
	// The caller gets its own slice.
	got[0].Minor = 99
	if Supported()[0].Minor != 14 {
		t.Error("Supported() returned shared state")
	}
	if SupportedRange() != "1.14 to 1.20" {
		t.Errorf("SupportedRange() = %q", SupportedRange())
	}
}

func TestPinned(t *testing.T) {
	tests := map[string]string{
		"1.14":    "1.14.19",
		"1.18":    "1.18.11",
		"1.19":    "1.19.0",
		"1.20":    "1.20.2",
		"1.18.3":  "1.18.3",
		"v1.17.6": "1.17.6",
	}
	for in, want := range tests {
		v, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := v.Pinned()
		if !ok || p.String() != want {
			t.Errorf("%s.Pinned() = %s, %v; want %s", in, p, ok, want)
		}
	}
	if _, ok := (Version{Major: 1, Minor: 9}).Pinned(); ok {
		t.Error("Pinned() found a pin for unsupported 1.9")
	}
	if got := (Version{Major: 1, Minor: 18, Patch: 11, HasPatch: true}).MinorString(); got != "1.18" {
		t.Errorf("MinorString() = %q", got)
	}
}
