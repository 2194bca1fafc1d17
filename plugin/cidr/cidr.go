// Package cidr chooses and validates the pod CIDR Cilium gets during a
// migration: it must overlap none of the networks the cluster already uses.
package cidr

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Reserved is a network the cluster already uses, with what uses it.
type Reserved struct {
	Prefix netip.Prefix
	// What names the user of the network, e.g. "flannel Network" or
	// "node worker-1 InternalIP".
	What string
}

// ParsePodCIDR parses a user-supplied IPv4 pod CIDR. The network must be
// written in its canonical form (no host bits) and be at least a /8 and at
// most a /28.
func ParsePodCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, errs.Newf(errs.Usage, "pass an IPv4 network such as 10.245.0.0/16 to --pod-cidr",
			"--pod-cidr %q is not a CIDR", s)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, errs.Newf(errs.Usage, "pass an IPv4 network such as 10.245.0.0/16 (changing the IP family is not supported)",
			"--pod-cidr %q is not IPv4", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, errs.Newf(errs.Usage, fmt.Sprintf("did you mean %s?", p.Masked()),
			"--pod-cidr %q has host bits set", s)
	}
	if p.Bits() < 8 || p.Bits() > 28 {
		return netip.Prefix{}, errs.Newf(errs.Usage, "pass a network between /8 and /28, such as 10.245.0.0/16",
			"--pod-cidr %q has an unusable size", s)
	}
	return p, nil
}

// ParseReserved parses a CIDR or a bare address (taken as a /32 or /128)
// found in the cluster. Unparseable input is reported as an error so callers
// can say which object held it.
func ParseReserved(s, what string) (Reserved, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Reserved{}, fmt.Errorf("%s: %q is not a CIDR", what, s)
		}
		return Reserved{Prefix: p.Masked(), What: what}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return Reserved{}, fmt.Errorf("%s: %q is not an IP address", what, s)
	}
	return Reserved{Prefix: netip.PrefixFrom(a, a.BitLen()), What: what}, nil
}

// Overlaps reports whether two prefixes share any address.
func Overlaps(a, b netip.Prefix) bool {
	return a.Overlaps(b)
}

// Conflicts returns every reserved network p overlaps, in input order.
func Conflicts(p netip.Prefix, reserved []Reserved) []Reserved {
	var out []Reserved
	for _, r := range reserved {
		if r.Prefix.IsValid() && p.Overlaps(r.Prefix) {
			out = append(out, r)
		}
	}
	return out
}

// Candidates lists the /16 networks tried, in order, when the user names no
// pod CIDR: the guide's 10.245.0.0/16 first, then the rest of 10.245-10.255,
// then 172.20-172.31 (172.16-172.19 are left to Docker and friends), then
// 192.168.0.0/16.
func Candidates() []netip.Prefix {
	var out []netip.Prefix
	for b := 245; b <= 255; b++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), 0, 0}), 16))
	}
	for b := 20; b <= 31; b++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(b), 0, 0}), 16))
	}
	return append(out, netip.MustParsePrefix("192.168.0.0/16"))
}

// Choose returns the first candidate that overlaps no reserved network.
func Choose(reserved []Reserved) (netip.Prefix, error) {
	p, _, err := ChooseSkipping(reserved)
	return p, err
}

// Skipped is a candidate passed over and what it overlaps.
type Skipped struct {
	Candidate netip.Prefix
	Overlaps  []Reserved
}

// String is "10.245.0.0/16 (node a InternalIP 10.245.0.3; ...)".
func (s Skipped) String() string {
	var what []string
	for _, r := range s.Overlaps {
		what = append(what, r.What)
	}
	return s.Candidate.String() + " (" + strings.Join(what, "; ") + ")"
}

// ChooseSkipping is Choose, also returning the candidates it passed over
// before the one chosen, each with what it overlaps.
func ChooseSkipping(reserved []Reserved) (netip.Prefix, []Skipped, error) {
	var skipped []Skipped
	for _, c := range Candidates() {
		conflicts := Conflicts(c, reserved)
		if len(conflicts) == 0 {
			return c, skipped, nil
		}
		skipped = append(skipped, Skipped{Candidate: c, Overlaps: conflicts})
	}
	return netip.Prefix{}, skipped, errs.New(errs.Unsafe,
		"every candidate pod CIDR (10.245-10.255.0.0/16, 172.20-172.31.0.0/16, 192.168.0.0/16) overlaps a network the cluster uses",
		"pass a free network with --pod-cidr")
}

// Capacity returns how many per-node blocks of size maskSize fit in p, capped
// at 1<<20 so callers need not fear overflow.
func Capacity(p netip.Prefix, maskSize int) int {
	d := maskSize - p.Bits()
	if d < 0 {
		return 0
	}
	if d > 20 {
		d = 20
	}
	return 1 << d
}

// CheckMaskSize validates the per-node block size against the pool and the
// number of nodes that need a block.
func CheckMaskSize(p netip.Prefix, maskSize, nodes int) error {
	if maskSize <= p.Bits() || maskSize > 30 {
		return errs.Newf(errs.Usage, fmt.Sprintf("pass a value between %d and 30 (24 gives each node 254 pod addresses)", p.Bits()+1),
			"--cluster-pool-mask-size %d does not fit the pod CIDR %s", maskSize, p)
	}
	if c := Capacity(p, maskSize); c < nodes {
		return errs.Newf(errs.Unsafe, "use a larger --pod-cidr or a larger --cluster-pool-mask-size",
			"pod CIDR %s split into /%d blocks gives %d node blocks but the cluster has %d nodes", p, maskSize, c, nodes)
	}
	return nil
}
