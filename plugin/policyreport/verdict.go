// Package policyreport reads the policy verdicts Cilium's agents compute
// for the pods they manage and reports the flows the NetworkPolicies would
// deny: with policyAuditMode on, Cilium enforces nothing but reports each
// would-be drop as an "audit" verdict (docs/policy-continuity.md, Flannel).
package policyreport

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Verdict is one policy verdict line of `cilium-dbg monitor --type
// policy-verdict --numeric`, for example
//
//	Policy verdict log: flow 0x9c1a2e5f local EP ID 1234, remote ID 58583, proto 6, ingress, action audit, auth: disabled, match none, 10.244.1.5:43210 -> 10.245.0.7:8080 tcp SYN
//
// (Cilium 1.14 to 1.20 print it this way; "auth:" came in 1.14).
type Verdict struct {
	// Endpoint is the local endpoint's ID on its node.
	Endpoint int
	// Remote is the remote security identity (numeric).
	Remote uint32
	// Proto is the IP protocol number.
	Proto   int
	Ingress bool
	// Action is "allow", "deny", "audit" or "redirect"; Match what
	// matched ("none", "L3-Only", "L3-L4", "L4-Only", "all").
	Action, Match string
	// Src and Dst are the connection's addresses; ports are zero for ICMP.
	Src, Dst netip.AddrPort
	// L4 is the protocol as printed ("tcp", "udp", "icmp", ...).
	L4 string
}

// Denied says whether the policies deny the flow: audited (audit mode
// reports a drop and lets it through) or denied.
func (v Verdict) Denied() bool { return v.Action == "audit" || v.Action == "deny" }

var verdictLine = regexp.MustCompile(`Policy verdict log: flow 0x[0-9a-f]+ local EP ID (\d+), remote ID (\d+), proto (\d+), (ingress|egress), action (\w+),(?: auth: [^,]*,)? match ([^,]+), (.*)$`)

// ParseVerdict reads one line; ok is false for any other line (lost
// events, headers, verdicts printed without --numeric).
func ParseVerdict(line string) (v Verdict, ok bool) {
	m := verdictLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return v, false
	}
	ep, err1 := strconv.Atoi(m[1])
	remote, err2 := strconv.ParseUint(m[2], 10, 32)
	proto, err3 := strconv.Atoi(m[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return v, false
	}
	v = Verdict{Endpoint: ep, Remote: uint32(remote), Proto: proto, Ingress: m[4] == "ingress", Action: m[5], Match: m[6]}
	// The connection: "SRC -> DST PROTO ...", SRC and DST with ports but
	// for ICMP.
	f := strings.Fields(m[7])
	if len(f) < 4 || f[1] != "->" {
		return v, false
	}
	src, ok1 := addrPort(f[0])
	dst, ok2 := addrPort(f[2])
	if !ok1 || !ok2 {
		return v, false
	}
	v.Src, v.Dst, v.L4 = src, dst, f[3]
	return v, true
}

// addrPort reads "10.0.0.1:80", "[fd00::1]:80" or a bare address.
func addrPort(s string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 0), true
	}
	return netip.AddrPort{}, false
}
