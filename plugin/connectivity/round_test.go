package connectivity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func TestPlanBoundsAndRotatesPeers(t *testing.T) {
	var ready []Probe
	for i := range 5 {
		ready = append(ready, Probe{Pod: fmt.Sprintf("p%d", i), Node: fmt.Sprintf("n%d", i), IP: fmt.Sprintf("10.0.%d.1", i), Network: NetOld, Ready: true})
	}
	r := &Round{Namespace: DefaultNamespace, MaxPeers: 2}
	covered := map[string]bool{}
	for round := 1; round <= 2; round++ {
		r.n = round
		plan := r.Plan(ready, "10.96.0.9", "10.96.0.1", 443)
		// per probe: 2 peers x (pod, mtu) + service, dns, apiserver
		if len(plan) != 5*(2*2+3) {
			t.Fatalf("round %d: %d checks, want %d", round, len(plan), 5*7)
		}
		for _, x := range plan {
			if x.Check == CheckPod {
				if x.SrcPod == x.DstPod {
					t.Errorf("a probe dials itself: %+v", x)
				}
				covered[x.SrcPod+">"+x.DstPod] = true
			}
		}
	}
	if len(covered) != 5*4 {
		t.Errorf("two rounds of 2 peers cover %d of the 20 pairs, want all", len(covered))
	}
	r = &Round{Namespace: DefaultNamespace}
	plan := r.Plan(ready[:2], "10.96.0.9", "10.96.0.1", 443)
	want := []string{
		"pod p0 10.0.1.1", "mtu p0 10.0.1.1", "service p0 10.96.0.9:8080", "dns p0 cni-migrate-probe.cni-migrate-connectivity.svc", "apiserver p0 10.96.0.1:443",
		"pod p1 10.0.0.1", "mtu p1 10.0.0.1", "service p1 10.96.0.9:8080", "dns p1 cni-migrate-probe.cni-migrate-connectivity.svc", "apiserver p1 10.96.0.1:443",
	}
	var got []string
	for _, x := range plan {
		got = append(got, x.Check+" "+x.SrcPod+" "+x.Target)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDialOfAndJudge(t *testing.T) {
	payload := strings.Repeat("m", DefaultMTU-28-len("echo "))
	for _, tc := range []struct {
		name    string
		check   string
		target  string
		dial    Dial
		answer  Answer
		err     error
		ok      bool
		errText string
		seen    string
	}{
		{"pod ok", CheckPod, "10.245.1.4", Dial{"10.245.1.4", 8080, "http", "clientip"}, Answer{Responses: []string{"10.244.2.7:41000"}}, nil, true, "", "10.244.2.7:41000"},
		{"pod timeout", CheckPod, "10.245.1.4", Dial{"10.245.1.4", 8080, "http", "clientip"}, Answer{Errors: []string{"Get \"http://10.245.1.4:8080/clientip\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"}}, nil, false, "Get \"http://10.245.1.4:8080/clientip\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)", ""},
		{"mtu echoed whole", CheckMTU, "10.245.1.4", Dial{"10.245.1.4", 8081, "udp", "echo " + payload}, Answer{Responses: []string{payload}}, nil, true, "", ""},
		{"mtu cut short", CheckMTU, "10.245.1.4", Dial{"10.245.1.4", 8081, "udp", "echo " + payload}, Answer{Responses: []string{"mmm"}}, nil, false, fmt.Sprintf("sent %d bytes, 3 came back", len(payload)), ""},
		{"service", CheckService, "10.96.0.9:8080", Dial{"10.96.0.9", 8080, "http", "hostname"}, Answer{Responses: []string{"cni-migrate-probe-x"}}, nil, true, "", ""},
		{"dns", CheckDNS, "cni-migrate-probe.ns.svc", Dial{"cni-migrate-probe.ns.svc", 8080, "http", "hostname"}, Answer{}, nil, false, "no answer", ""},
		{"apiserver", CheckAPIServer, "10.96.0.1:443", Dial{"10.96.0.1", 443, "http", "healthz"}, Answer{Responses: []string{"Client sent an HTTP request to an HTTPS server.\n"}}, nil, true, "", ""},
		{"proxy error", CheckPod, "10.245.1.4", Dial{"10.245.1.4", 8080, "http", "clientip"}, Answer{}, errors.New("the server is currently\nunable to handle the request"), false, "asking the probe pod: the server is currently unable to handle the request", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := Result{Check: tc.check, Target: tc.target}
			d := dialOf(&x, payload)
			if d != tc.dial {
				t.Fatalf("dial %+v, want %+v", d, tc.dial)
			}
			if tc.check == CheckMTU && len(d.Request)+28 != DefaultMTU {
				t.Errorf("the mtu datagram is %d bytes of payload, want the MTU %d less 28", len(d.Request), DefaultMTU)
			}
			judge(&x, d, tc.answer, tc.err)
			if x.OK != tc.ok || x.Error != tc.errText || x.Seen != tc.seen {
				t.Errorf("judged ok=%v err=%q seen=%q, want ok=%v err=%q seen=%q", x.OK, x.Error, x.Seen, tc.ok, tc.errText, tc.seen)
			}
		})
	}
}

// script is a Runner that plays rounds in turn (the last one forever).
type script struct {
	rounds [][]Result
	n      int
}

func (s *script) Run(context.Context) ([]Probe, []string, []Result, error) {
	r := s.rounds[min(s.n, len(s.rounds)-1)]
	s.n++
	return probes, nodes, r, nil
}

func TestGate(t *testing.T) {
	ctx := context.Background()
	t.Run("green for the settle period", func(t *testing.T) {
		s := &script{rounds: [][]Result{round("mtu w2 w1"), round()}}
		var seen []bool
		m := &Monitor{Round: s, Tracker: NewTracker(), Interval: 10 * time.Millisecond, OnRound: func(m Matrix) { seen = append(seen, m.Green) }}
		mx, err := m.Gate(ctx, "after batch 1/2", 30*time.Millisecond, 5*time.Second)
		if err != nil || !mx.Green {
			t.Fatalf("%v %+v", err, mx)
		}
		if len(seen) < 4 || seen[0] {
			t.Errorf("rounds %v: want a failing one, then green ones until 30ms passed", seen)
		}
	})
	t.Run("not green within the timeout", func(t *testing.T) {
		s := &script{rounds: [][]Result{round("mtu w2 w1", "pod cp w2")}}
		m := &Monitor{Round: s, Tracker: NewTracker(), Interval: 10 * time.Millisecond}
		_, err := m.Gate(ctx, "after batch 1/2", 0, 50*time.Millisecond)
		if errs.Code(err) != errs.ConnectivityFailed {
			t.Fatalf("exit code %d (%v), want %d", errs.Code(err), err, errs.ConnectivityFailed)
		}
		msg := err.Error()
		for _, want := range []string{"connectivity gate after batch 1/2: not green for 0s within 50ms", "pod: cp (new) -> w2 (old, 10.244.2.5): timeout", "mtu: w2 (old) -> w1 (new, 10.245.1.9): timeout", "; see kubectl cni-migrate connectivity"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("error is not one line: %q", msg)
		}
	})
}

// TestFirst: fresh probes get their failing first rounds repeated until
// green (only the last matrix shown); probes that were already there, or a
// failure that outlasts the warm-up, are shown as they are.
func TestFirst(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		fresh     bool
		rounds    [][]Result
		warmup    time.Duration
		green     bool
		minRounds int
		maxRounds int
	}{
		{"fresh, green after two failing rounds", true, [][]Result{round("service cp 10.96.0.50:8080"), round("service cp 10.96.0.50:8080"), round()}, time.Second, true, 3, 3},
		{"not fresh: one round", false, [][]Result{round("service cp 10.96.0.50:8080"), round()}, time.Second, false, 1, 1},
		{"fresh, still failing after the warm-up", true, [][]Result{round("service cp 10.96.0.50:8080")}, 60 * time.Millisecond, false, 2, 10},
		{"fresh and green at once", true, [][]Result{round()}, time.Second, true, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{rounds: tc.rounds}
			var shown []bool
			m := &Monitor{Round: s, Tracker: NewTracker(), Interval: 10 * time.Millisecond, Fresh: tc.fresh,
				OnRound: func(m Matrix) { shown = append(shown, m.Green) }}
			mx, err := m.First(ctx, tc.warmup)
			if err != nil {
				t.Fatal(err)
			}
			if mx.Green != tc.green || len(shown) != 1 || shown[0] != tc.green {
				t.Errorf("green %v, shown %v; want green %v shown once", mx.Green, shown, tc.green)
			}
			if s.n < tc.minRounds || s.n > tc.maxRounds {
				t.Errorf("%d rounds, want %d to %d", s.n, tc.minRounds, tc.maxRounds)
			}
			if m.OnRound == nil {
				t.Error("OnRound not restored")
			}
		})
	}
}
