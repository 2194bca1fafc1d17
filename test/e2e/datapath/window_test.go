package datapath

import (
	"strings"
	"testing"
	"time"
)

func TestWindowMarkdown(t *testing.T) {
	out := `rollout: worker-1 ...
{
  "kind": "Rollout",
  "nodes": [
    {"name": "worker-1", "result": "migrated", "durationSeconds": 71.2, "steps": [
      {"name": "cordon", "durationSeconds": 0.1}, {"name": "drain", "durationSeconds": 7.2},
      {"name": "restart-agent", "durationSeconds": 12.7}, {"name": "reboot", "durationSeconds": 1.0},
      {"name": "verify", "durationSeconds": 50.2}]},
    {"name": "worker-2", "result": "migrated", "durationSeconds": 20.0, "steps": [
      {"name": "drain", "durationSeconds": 5}, {"name": "reboot", "durationSeconds": 3}, {"name": "verify", "durationSeconds": 12}]},
    {"name": "control-plane", "result": "not-started", "durationSeconds": 0}
  ]
}
error: something after it`
	s, err := parseRollout(out)
	if err != nil || len(s.Nodes) != 3 {
		t.Fatalf("%v %+v", err, s)
	}
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	a := agentStart{Node: "worker-1", Pod: "cilium-x",
		Inits: []span{{Name: "config", Start: t0, End: t0.Add(30 * time.Second)}, {Name: "mount-cgroup", Start: t0.Add(31 * time.Second), End: t0.Add(31 * time.Second)}},
		Agent: span{Name: "cilium-agent", Start: t0.Add(33 * time.Second), End: t0.Add(47 * time.Second)}}
	parseAgentLog(strings.Join([]string{
		"2026-12-06T10:00:33.000000000Z time=x level=info msg=\"Establishing connection to apiserver\"",
		"2026-12-06T10:00:34.000000000Z time=x level=error msg=\"Unable to contact k8s api-server\"",
		"2026-12-06T10:00:36.500000000Z time=x level=info msg=\"Connected to apiserver\"",
		"2026-12-06T10:00:40.000000000Z time=x level=info msg=\"Compiled new BPF template\" file-path=/a BPFCompilationTime=2.5s",
		"2026-12-06T10:00:44.000000000Z time=x level=info msg=\"Compiled new BPF template\" file-path=/b BPFCompilationTime=1m0.5s",
		"not a log line",
	}, "\n"), &a)
	if a.APIFails != 1 || a.Connected != 3500*time.Millisecond || len(a.Compiles) != 2 || a.Compiles[1] != 60500*time.Millisecond {
		t.Fatalf("%+v", a)
	}
	md := windowMarkdown(s, []agentStart{a})
	for _, want := range []string{
		"| worker-1 | 71.2 | 7.2 | 12.7 | 1.0 | 50.2 | 0.1 | 28.2 | missed by 43.0 s |",
		"| worker-2 | 20.0 | 5.0 | 0.0 | 3.0 | 12.0 | 0.0 | 28.0 | met |",
		"| worker-1 | config 30, mount-cgroup 0, (first start to agent start 33) | 14 | 2, 63.0 s of clang | 3.5 s | 1 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
	if strings.Contains(md, "| control-plane |") {
		t.Errorf("a node the rollout did not migrate has a row:\n%s", md)
	}
}
