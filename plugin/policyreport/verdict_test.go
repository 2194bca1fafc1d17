package policyreport

import (
	"net/netip"
	"testing"
)

func TestParseVerdict(t *testing.T) {
	tests := []struct {
		name string
		line string
		ok   bool
		want Verdict
	}{
		{name: "audited ingress", ok: true,
			line: "Policy verdict log: flow 0x9c1a2e5f local EP ID 1234, remote ID 58583, proto 6, ingress, action audit, auth: disabled, match none, 10.244.1.5:43210 -> 10.245.0.7:8080 tcp SYN",
			want: Verdict{Endpoint: 1234, Remote: 58583, Proto: 6, Ingress: true, Action: "audit", Match: "none",
				Src: netip.MustParseAddrPort("10.244.1.5:43210"), Dst: netip.MustParseAddrPort("10.245.0.7:8080"), L4: "tcp"}},
		{name: "allowed egress, CPU prefix", ok: true,
			line: "CPU 01: Policy verdict log: flow 0x0 local EP ID 7, remote ID 2, proto 17, egress, action allow, auth: disabled, match L3-L4, 10.245.1.3:5353 -> 10.96.0.10:53 udp",
			want: Verdict{Endpoint: 7, Remote: 2, Proto: 17, Action: "allow", Match: "L3-L4",
				Src: netip.MustParseAddrPort("10.245.1.3:5353"), Dst: netip.MustParseAddrPort("10.96.0.10:53"), L4: "udp"}},
		{name: "icmp without ports, no auth field", ok: true,
			line: "Policy verdict log: flow 0x1 local EP ID 9, remote ID 16777217, proto 1, ingress, action deny, match none, 10.244.2.9 -> 10.245.0.4 icmp EchoRequest",
			want: Verdict{Endpoint: 9, Remote: 16777217, Proto: 1, Ingress: true, Action: "deny", Match: "none",
				Src: netip.MustParseAddrPort("10.244.2.9:0"), Dst: netip.MustParseAddrPort("10.245.0.4:0"), L4: "icmp"}},
		{name: "ipv6", ok: true,
			line: "Policy verdict log: flow 0x1 local EP ID 9, remote ID 3, proto 6, ingress, action audit, auth: disabled, match none, [fd00::1]:4000 -> [fd00::2]:80 tcp SYN",
			want: Verdict{Endpoint: 9, Remote: 3, Proto: 6, Ingress: true, Action: "audit", Match: "none",
				Src: netip.MustParseAddrPort("[fd00::1]:4000"), Dst: netip.MustParseAddrPort("[fd00::2]:80"), L4: "tcp"}},
		{name: "identity by name (no --numeric)", line: "Policy verdict log: flow 0x1 local EP ID 9, remote ID world, proto 6, ingress, action audit, auth: disabled, match none, 1.2.3.4:1 -> 10.245.0.4:80 tcp SYN"},
		{name: "lost events", line: "CPU 00: Lost 12 events"},
		{name: "header", line: "Listening for events on 2 CPUs with 64x4096 of shared memory"},
		{name: "unknown connection", line: "Policy verdict log: flow 0x1 local EP ID 9, remote ID 3, proto 6, ingress, action audit, auth: disabled, match none, [unknown]"},
		{name: "empty", line: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseVerdict(tt.line)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tt.ok, got)
			}
			if ok && got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if v, _ := ParseVerdict(tests[0].line); !v.Denied() {
		t.Error("an audit verdict is a flow the policies deny")
	}
	if v, _ := ParseVerdict(tests[1].line); v.Denied() {
		t.Error("an allow verdict is not")
	}
}

// FuzzParseVerdict: any line of the agent's output reads or is skipped,
// without a panic.
func FuzzParseVerdict(f *testing.F) {
	f.Add("Policy verdict log: flow 0x9c1a2e5f local EP ID 1234, remote ID 58583, proto 6, ingress, action audit, auth: disabled, match none, 10.244.1.5:43210 -> 10.245.0.7:8080 tcp SYN")
	f.Add("Policy verdict log: flow 0x1 local EP ID 9, remote ID 3, proto 1, ingress, action deny, match none, 10.244.2.9 -> 10.245.0.4 icmp EchoRequest")
	f.Add("CPU 00: Lost 12 events")
	f.Fuzz(func(t *testing.T, line string) {
		v, ok := ParseVerdict(line)
		if ok && (!v.Src.Addr().IsValid() || !v.Dst.Addr().IsValid() || v.L4 == "") {
			t.Fatalf("%q read as %+v", line, v)
		}
	})
}
