package proposal

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func TestSNATExclusion(t *testing.T) {
	tests := []struct {
		name     string
		tweak    func(*detect.Cluster)
		opts     Options
		want     string
		noteHas  []string
		noteNone bool
	}{
		{name: "sibling networks make one CIDR", want: "10.244.0.0/15", noteHas: []string{"exactly Cilium's pod CIDR 10.245.0.0/16 and the old pod network 10.244.0.0/16"}},
		{name: "a pool below the old network", opts: Options{PodCIDR: "10.243.0.0/16"}, noteHas: []string{"(10.240.0.0/13, the smallest covering both, holds other addresses)", "; --pod-cidr 10.245.0.0/16 would avoid that"}},
		{name: "a distant pool", opts: Options{PodCIDR: "172.20.0.0/16"}, noteHas: []string{"--pod-cidr 10.245.0.0/16 would avoid that"}},
		{name: "a smaller sibling half is not enough", opts: Options{PodCIDR: "10.245.0.0/17"}, noteHas: []string{"(10.244.0.0/15, the smallest"}},
		{
			name:  "the sibling is taken",
			tweak: func(c *detect.Cluster) { c.ServiceCIDRs[0].CIDR = "10.245.0.0/16" },
			opts:  Options{PodCIDR: "10.246.0.0/16"}, noteHas: []string{"holds other addresses), so Cilium masquerades its pods' traffic to old pods on the same node"},
		},
		{
			name: "two old networks and the pool tile a /14",
			tweak: func(c *detect.Cluster) {
				c.PodCIDRs = append(c.PodCIDRs, detect.SourcedCIDR{CIDR: "10.246.0.0/15", Source: "kcm"})
			},
			want: "10.244.0.0/14",
		},
		{
			name: "networks inside others count once",
			tweak: func(c *detect.Cluster) {
				c.PodCIDRs = append(c.PodCIDRs, detect.SourcedCIDR{CIDR: "10.244.3.0/24", Source: "node"})
			},
			want: "10.244.0.0/15",
		},
		{
			name:  "guessed networks are left out, then the CNI's network is used",
			tweak: func(c *detect.Cluster) { c.PodCIDRs = []detect.SourcedCIDR{{CIDR: "10.0.0.0/8", Guessed: true}} },
			opts:  Options{PodCIDR: "10.245.0.0/16"},
			want:  "10.244.0.0/15",
		},
		{
			name:    "unknown old network",
			tweak:   func(c *detect.Cluster) { c.PodCIDRs = nil; c.CNI.Network = "" },
			noteHas: []string{"the old pod network is not known"},
		},
		{name: "overlapping pool: the pod-cidr check speaks", opts: Options{PodCIDR: "10.244.0.0/16"}, noteNone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := flannelCluster()
			if tt.tweak != nil {
				tt.tweak(c)
			}
			p, err := Propose(c, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.IPv4NativeRoutingCIDR != tt.want {
				t.Errorf("ipv4NativeRoutingCIDR %q, want %q (note %q)", p.IPv4NativeRoutingCIDR, tt.want, p.SNATNote)
			}
			if tt.noteNone && p.SNATNote != "" {
				t.Errorf("note %q, want none", p.SNATNote)
			}
			for _, part := range tt.noteHas {
				if !strings.Contains(p.SNATNote, part) {
					t.Errorf("note %q lacks %q", p.SNATNote, part)
				}
			}
		})
	}
}

func TestStrategy(t *testing.T) {
	inPlaceInstalled := func(c *detect.Cluster) {
		c.Cilium = detect.Cilium{Installed: true, Version: "1.18.11", PodCIDRs: []string{"10.245.0.0/16"}}
	}
	tests := []struct {
		name       string
		tweak      func(*detect.Cluster)
		opts       Options
		want, from string
	}{
		{name: "default", want: DualOverlay, from: "default"},
		{name: "asked for", opts: Options{Strategy: InPlace}, want: InPlace, from: "--strategy"},
		{name: "installed in migration mode", tweak: func(c *detect.Cluster) {
			c.Cilium = detect.Cilium{Installed: true, MigrationMode: true, Version: "1.18.11"}
		}, want: DualOverlay, from: "migration mode"},
		{name: "installed owning the CNI config beside flannel", tweak: inPlaceInstalled, want: InPlace, from: "custom-cni-conf false) while flannel is still there"},
		{name: "the flag wins over the installed Cilium", tweak: inPlaceInstalled, opts: Options{Strategy: DualOverlay}, want: DualOverlay, from: "--strategy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := flannelCluster()
			if tt.tweak != nil {
				tt.tweak(c)
			}
			p, err := Propose(c, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.Strategy != tt.want || !strings.Contains(p.StrategySource, tt.from) {
				t.Errorf("strategy %q (%s), want %q (%s)", p.Strategy, p.StrategySource, tt.want, tt.from)
			}
		})
	}
	if err := ValidateOptions(Options{Strategy: "big-bang"}); errs.Code(err) != errs.Usage || !strings.Contains(err.Error(), `--strategy "big-bang"`) {
		t.Errorf("bad strategy: %v", err)
	}
	if s, _ := DetectStrategy(&detect.Cluster{Cilium: detect.Cilium{Installed: true}}); s != "" {
		t.Errorf("Cilium owning the network with no old CNI: strategy %q", s)
	}
}
