package datapath

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab"
)

// rolloutSummary is the part of `rollout -o json` the window table reads.
type rolloutSummary struct {
	Nodes []struct {
		Name   string `json:"name"`
		Result string `json:"result"`
		Steps  []struct {
			Name     string  `json:"name"`
			Detail   string  `json:"detail"`
			Duration float64 `json:"durationSeconds"`
		} `json:"steps"`
		Duration float64 `json:"durationSeconds"`
	} `json:"nodes"`
}

// parseRollout reads the JSON summary that `rollout -o json` prints after
// its progress lines.
func parseRollout(out string) (rolloutSummary, error) {
	var s rolloutSummary
	i := strings.Index(out, "\n{")
	if i < 0 {
		return s, fmt.Errorf("no JSON summary in the rollout's output")
	}
	err := json.NewDecoder(strings.NewReader(out[i+1:])).Decode(&s)
	return s, err
}

// span is one container's run: from its start to its end (an init
// container's finish, or the agent container's Ready).
type span struct {
	Name       string
	Start, End time.Time
}

func (s span) seconds() float64 { return s.End.Sub(s.Start).Seconds() }

// agentStart is how a node's Cilium agent pod started after the node's
// reboot, read from its status and its log right after the rollout (the
// status' times have whole seconds).
type agentStart struct {
	Node, Pod string
	// Inits are the pod's init containers, in order.
	Inits []span
	// Agent is the cilium-agent container, from its start to the pod's
	// Ready.
	Agent span
	// Compiles are the agent log's "Compiled new BPF template" lines: the
	// programs it compiled with clang (none when its template cache
	// survived), with the compile times it logged.
	Compiles []time.Duration
	// Connected is how long after its first log line the agent logged
	// "Connected to apiserver" (0: not seen); APIFails counts its "Unable
	// to contact k8s api-server" lines.
	Connected time.Duration
	APIFails  int
	// Err is what could not be read.
	Err string
}

var (
	compiledRE = regexp.MustCompile(`Compiled new BPF template.*?BPFCompilationTime=([0-9][0-9.a-zµ]*)`)
)

// readAgentStarts reads every node's agent pod.
func readAgentStarts(ctx context.Context, l *lab.Lab) []agentStart {
	pods, err := l.Cluster.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=cilium"})
	if err != nil {
		return []agentStart{{Err: err.Error()}}
	}
	var out []agentStart
	for _, p := range pods.Items {
		out = append(out, readAgentStart(ctx, l, &p))
	}
	slices.SortFunc(out, func(a, b agentStart) int { return strings.Compare(a.Node, b.Node) })
	return out
}

func readAgentStart(ctx context.Context, l *lab.Lab, p *corev1.Pod) agentStart {
	a := agentStart{Node: p.Spec.NodeName, Pod: p.Name}
	for _, cs := range p.Status.InitContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			a.Inits = append(a.Inits, span{Name: cs.Name, Start: t.StartedAt.Time, End: t.FinishedAt.Time})
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == "cilium-agent" && cs.State.Running != nil {
			a.Agent = span{Name: cs.Name, Start: cs.State.Running.StartedAt.Time}
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			a.Agent.End = c.LastTransitionTime.Time
		}
	}
	raw, err := l.Cluster.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "cilium-agent", Timestamps: true}).DoRaw(ctx)
	if err != nil {
		a.Err = err.Error()
		return a
	}
	parseAgentLog(string(raw), &a)
	return a
}

// parseAgentLog reads the agent's log (with the kubelet's timestamps) into
// a: the templates it compiled and when it reached the API server.
func parseAgentLog(raw string, a *agentStart) {
	sc := bufio.NewScanner(strings.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var first time.Time
	for sc.Scan() {
		// Each line begins with the kubelet's RFC 3339 timestamp.
		stamp, line, _ := strings.Cut(sc.Text(), " ")
		t, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue
		}
		if first.IsZero() {
			first = t
		}
		switch {
		case strings.Contains(line, "Compiled new BPF template"):
			if m := compiledRE.FindStringSubmatch(line); m != nil {
				if d, err := time.ParseDuration(m[1]); err == nil {
					a.Compiles = append(a.Compiles, d)
				}
			}
		case strings.Contains(line, "Unable to contact k8s api-server"):
			a.APIFails++
		case strings.Contains(line, "Connected to apiserver") && a.Connected == 0:
			a.Connected = t.Sub(first)
		}
	}
}

// windowMarkdown is the results page's section on each node's window:
// its parts as the rollout measured them, against the goal of drain +
// reboot + 20 s, and how each agent started after its reboot.
func windowMarkdown(s rolloutSummary, starts []agentStart) string {
	var b strings.Builder
	b.WriteString("\n### Each node's window and its parts\n\n")
	b.WriteString("From `rollout -o json` (seconds). The goal is a window no longer than drain + reboot + 20 s.\n\n")
	b.WriteString("| node | window | drain | restart-agent | reboot | verify | others | goal | |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, n := range s.Nodes {
		if n.Result != "migrated" {
			continue // the gate's stopped rollout left it, the next one did it
		}
		step := map[string]float64{}
		for _, st := range n.Steps {
			step[st.Name] += st.Duration
		}
		others := n.Duration - step["drain"] - step["restart-agent"] - step["reboot"] - step["verify"]
		goal := step["drain"] + step["reboot"] + 20
		verdict := "met"
		if n.Duration > goal {
			verdict = fmt.Sprintf("missed by %.1f s", n.Duration-goal)
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n",
			n.Name, n.Duration, step["drain"], step["restart-agent"], step["reboot"], step["verify"], others, goal, verdict)
	}
	b.WriteString("\nThe agent's start after the reboot, read from its pod right after the rollout (whole seconds): each init container, then the agent container to the pod's Ready; the BPF programs it compiled (Cilium keeps its compiled templates under `/run/cilium`, which a reboot empties), and when it reached the API server (from its first log line; with the failed attempts it logged).\n\n")
	b.WriteString("| node | init containers (s) | agent to Ready (s) | BPF templates compiled | API server reached after | failed attempts |\n|---|---|---:|---|---:|---:|\n")
	for _, a := range starts {
		if a.Err != "" && a.Pod == "" {
			fmt.Fprintf(&b, "| ? | %s | | | | |\n", a.Err)
			continue
		}
		var inits []string
		for _, i := range a.Inits {
			inits = append(inits, fmt.Sprintf("%s %.0f", i.Name, i.seconds()))
		}
		if len(a.Inits) > 0 {
			inits = append(inits, fmt.Sprintf("(first start to agent start %.0f)", a.Agent.Start.Sub(a.Inits[0].Start).Seconds()))
		}
		ready := "not Ready"
		if !a.Agent.End.IsZero() && !a.Agent.Start.IsZero() {
			ready = fmt.Sprintf("%.0f", a.Agent.seconds())
		}
		var total time.Duration
		for _, c := range a.Compiles {
			total += c
		}
		compiled := "none"
		if len(a.Compiles) > 0 {
			compiled = fmt.Sprintf("%d, %.1f s of clang", len(a.Compiles), total.Seconds())
		}
		if a.Err != "" {
			compiled = "log: " + a.Err
		}
		connected := "not logged"
		if a.Connected > 0 {
			connected = fmt.Sprintf("%.1f s", a.Connected.Seconds())
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d |\n", a.Node, strings.Join(inits, ", "), ready, compiled, connected, a.APIFails)
	}
	return b.String()
}
