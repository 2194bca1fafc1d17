package cidr

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func res(t *testing.T, s, what string) Reserved {
	t.Helper()
	r, err := ParseReserved(s, what)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParsePodCIDR(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		code    int
		errPart string
	}{
		{in: "10.245.0.0/16", want: "10.245.0.0/16"},
		{in: " 172.20.0.0/16 ", want: "172.20.0.0/16"},
		{in: "banana", code: errs.Usage, errPart: "not a CIDR"},
		{in: "10.245.0.0/33", code: errs.Usage, errPart: "not a CIDR"},
		{in: "10.245.0.0", code: errs.Usage, errPart: "not a CIDR"},
		{in: "10.245.1.0/16", code: errs.Usage, errPart: "did you mean 10.245.0.0/16"},
		{in: "fd00::/48", code: errs.Usage, errPart: "not IPv4"},
		{in: "0.0.0.0/4", code: errs.Usage, errPart: "unusable size"},
		{in: "10.245.0.0/29", code: errs.Usage, errPart: "unusable size"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePodCIDR(tt.in)
			if tt.code != 0 {
				if err == nil {
					t.Fatalf("want error, got %s", got)
				}
				if errs.Code(err) != tt.code || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("got code %d error %q, want code %d containing %q", errs.Code(err), err, tt.code, tt.errPart)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error is not one line: %q", err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestChoose(t *testing.T) {
	flannel := "10.244.0.0/16"
	tests := []struct {
		name     string
		reserved []string
		want     string
		exhaust  bool
	}{
		{name: "kubeadm defaults", reserved: []string{flannel, "10.96.0.0/12", "192.168.1.10"}, want: "10.245.0.0/16"},
		{name: "guide CIDR taken by service CIDR", reserved: []string{flannel, "10.245.0.0/16"}, want: "10.246.0.0/16"},
		{name: "whole 10/8 used", reserved: []string{"10.0.0.0/8"}, want: "172.20.0.0/16"},
		{name: "node address inside candidate", reserved: []string{"10.0.0.0/8", "172.20.3.4"}, want: "172.21.0.0/16"},
		{name: "everything private used", reserved: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}, exhaust: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs []Reserved
			for _, s := range tt.reserved {
				rs = append(rs, res(t, s, "test"))
			}
			got, err := Choose(rs)
			if tt.exhaust {
				if errs.Code(err) != errs.Unsafe || !strings.Contains(err.Error(), "--pod-cidr") {
					t.Fatalf("want Unsafe error naming --pod-cidr, got %v", err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestConflicts(t *testing.T) {
	rs := []Reserved{
		res(t, "10.244.0.0/16", "flannel Network"),
		res(t, "10.96.0.0/12", "service CIDR"),
		res(t, "10.245.7.1", "node w1 InternalIP"),
	}
	tests := []struct {
		cidr string
		want []string
	}{
		{"10.245.0.0/16", []string{"node w1 InternalIP"}},
		{"10.0.0.0/8", []string{"flannel Network", "service CIDR", "node w1 InternalIP"}},
		{"10.100.0.0/16", []string{"service CIDR"}},
		{"172.20.0.0/16", nil},
	}
	for _, tt := range tests {
		got := Conflicts(netip.MustParsePrefix(tt.cidr), rs)
		var names []string
		for _, g := range got {
			names = append(names, g.What)
		}
		if strings.Join(names, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: got %v, want %v", tt.cidr, names, tt.want)
		}
	}
}

func TestParseReserved(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"10.244.3.0/24", "10.244.3.0/24"},
		{"10.244.3.7/16", "10.244.0.0/16"},
		{"192.168.1.10", "192.168.1.10/32"},
		{"fd00::1", "fd00::1/128"},
	} {
		r, err := ParseReserved(tt.in, "x")
		if err != nil || r.Prefix.String() != tt.want {
			t.Errorf("%s: got %v, %v; want %s", tt.in, r.Prefix, err, tt.want)
		}
	}
	for _, bad := range []string{"", "nope", "10.0.0.0/99"} {
		if _, err := ParseReserved(bad, "node n1 InternalIP"); err == nil || !strings.Contains(err.Error(), "node n1") {
			t.Errorf("%q: want error naming the source, got %v", bad, err)
		}
	}
}

func TestCheckMaskSize(t *testing.T) {
	p16 := netip.MustParsePrefix("10.245.0.0/16")
	tests := []struct {
		name  string
		p     netip.Prefix
		mask  int
		nodes int
		code  int
	}{
		{"default", p16, 24, 256, errs.OK},
		{"too many nodes for /16 at /24", p16, 24, 257, errs.Unsafe},
		{"exactly full", netip.MustParsePrefix("10.245.0.0/22"), 24, 4, errs.OK},
		{"exhausted", netip.MustParsePrefix("10.245.0.0/22"), 24, 5, errs.Unsafe},
		{"mask not inside", p16, 16, 1, errs.Usage},
		{"mask too small a block", p16, 31, 1, errs.Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errs.Code(CheckMaskSize(tt.p, tt.mask, tt.nodes)); got != tt.code {
				t.Fatalf("code %d, want %d", got, tt.code)
			}
		})
	}
	if Capacity(netip.MustParsePrefix("10.0.0.0/8"), 30) != 1<<20 {
		t.Fatal("capacity should be capped")
	}
}
