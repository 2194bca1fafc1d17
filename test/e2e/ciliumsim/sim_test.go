package ciliumsim

import (
	"net/netip"
	"testing"
)

func TestNextFreeSubnet(t *testing.T) {
	pools := []netip.Prefix{netip.MustParsePrefix("10.245.0.0/23"), netip.MustParsePrefix("10.246.0.0/24")}
	used := map[netip.Prefix]bool{}
	var got []string
	for range 3 {
		p, err := nextFreeSubnet(pools, 24, used)
		if err != nil {
			t.Fatal(err)
		}
		used[p] = true
		got = append(got, p.String())
	}
	want := []string{"10.245.0.0/24", "10.245.1.0/24", "10.246.0.0/24"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if _, err := nextFreeSubnet(pools, 24, used); err == nil {
		t.Fatal("exhausted pool: want an error")
	}
	if p, err := nextFreeSubnet([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, 26, nil); err != nil || p.String() != "10.0.0.0/26" {
		t.Fatalf("got %v %v", p, err)
	}
}
