package policybridge

import "testing"

// TestState: the bridge counts as running only with its replica and the
// node rules on every node ready, of their current spec.
func TestState(t *testing.T) {
	tests := []struct {
		name  string
		s     State
		ready bool
		says  string
	}{
		{name: "nothing", s: State{}, says: "not deployed"},
		{name: "all ready", s: State{Bridge: true, Rules: true, BridgeReady: 1, BridgeWant: 1, RulesReady: 3, RulesDesired: 3}, ready: true,
			says: "bridge 1/1 ready, node rules ready on 3/3 nodes"},
		{name: "a node without rules", s: State{Bridge: true, Rules: true, BridgeReady: 1, BridgeWant: 1, RulesReady: 2, RulesDesired: 3},
			says: "bridge 1/1 ready, node rules ready on 2/3 nodes"},
		{name: "bridge starting", s: State{Bridge: true, Rules: true, BridgeWant: 1, RulesReady: 3, RulesDesired: 3}, says: "bridge 0/1 ready"},
		{name: "scaled to zero", s: State{Bridge: true, Rules: true, RulesReady: 3, RulesDesired: 3}, says: "bridge 0/0 ready"},
		{name: "rules on no node", s: State{Bridge: true, Rules: true, BridgeReady: 1, BridgeWant: 1}, says: "bridge 1/1 ready, node rules ready on 0/0 nodes"},
		{name: "no rules", s: State{Bridge: true, BridgeReady: 1, BridgeWant: 1}, says: "bridge 1/1 ready, node rules not deployed"},
		{name: "no bridge", s: State{Rules: true, RulesReady: 3, RulesDesired: 3}, says: "bridge not deployed, node rules ready on 3/3 nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Ready(); got != tt.ready {
				t.Errorf("Ready() = %v", got)
			}
			if got := tt.s.String(); len(got) < len(tt.says) || got[:len(tt.says)] != tt.says {
				t.Errorf("String() = %q, want it to begin with %q", got, tt.says)
			}
		})
	}
	// Pods of an older spec do not count.
	for _, tc := range []struct {
		ready, updated int32
		observed, gen  int64
		want           int32
	}{{3, 3, 2, 2, 3}, {3, 1, 2, 2, 1}, {3, 3, 1, 2, 0}} {
		if got := current(tc.ready, tc.updated, tc.observed, tc.gen); got != tc.want {
			t.Errorf("current(%v) = %d", tc, got)
		}
	}
	for mode, want := range map[string]bool{"": true, "default": true, "always": true, "never": false} {
		if Enforces(mode) != want {
			t.Errorf("Enforces(%q) = %v", mode, !want)
		}
	}
}
