package datapath

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/monitor"
)

// drop is one line of `cilium-dbg monitor --type drop` of a node's agent,
// with the time the test read it (the monitor's lines carry none).
type drop struct {
	T    time.Time
	Node string
	Line string
}

// dropRecorder follows `cilium-dbg monitor --type drop` in every running
// Cilium agent (a new exec after each agent restart) and keeps the lines,
// so that a failed probe can be matched with what Cilium dropped then.
type dropRecorder struct {
	mu    sync.Mutex
	drops []drop
	log   *os.File
	wg    sync.WaitGroup
}

// recordDrops starts following the agents until ctx ends; every line also
// goes to path as it arrives.
func recordDrops(ctx context.Context, l *lab.Lab, path string) (*dropRecorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	r := &dropRecorder{log: f}
	following := map[string]bool{}
	var fmu sync.Mutex
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			pods, err := l.Cluster.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=cilium"})
			if err == nil {
				for _, p := range pods.Items {
					ready := false
					for _, cs := range p.Status.ContainerStatuses {
						if cs.Name == "cilium-agent" && cs.Ready {
							ready = true
						}
					}
					fmu.Lock()
					busy := following[p.Name]
					if ready && !busy {
						following[p.Name] = true
					}
					fmu.Unlock()
					if !ready || busy {
						continue
					}
					r.wg.Add(1)
					go func(pod, node string) {
						defer r.wg.Done()
						r.follow(ctx, l, pod, node)
						fmu.Lock()
						delete(following, pod)
						fmu.Unlock()
					}(p.Name, p.Spec.NodeName)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return r, nil
}

// follow runs one monitor exec until it ends (the agent restarted) or ctx does.
func (r *dropRecorder) follow(ctx context.Context, l *lab.Lab, pod, node string) {
	bin := os.Getenv("KUBECTL")
	if bin == "" {
		bin = "kubectl"
	}
	cmd := exec.CommandContext(ctx, bin, "-n", "kube-system", "exec", pod, "-c", "cilium-agent", "--", "cilium-dbg", "monitor", "--type", "drop")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+l.Cluster.Kubeconfig)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return
	}
	if err := cmd.Start(); err != nil {
		return
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		// The banner and the separators are not drops.
		if line == "" || !strings.Contains(line, "drop") || strings.HasPrefix(line, "Listening") || strings.HasPrefix(line, "Press") {
			continue
		}
		d := drop{T: time.Now(), Node: node, Line: line}
		r.mu.Lock()
		r.drops = append(r.drops, d)
		fmt.Fprintf(r.log, "%s %s %s\n", d.T.UTC().Format(time.RFC3339Nano), node, line)
		r.mu.Unlock()
	}
	_ = cmd.Wait()
}

// stop waits for the followers (after their ctx ended) and returns the drops.
func (r *dropRecorder) stop() []drop {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.log.Close()
	return slices.Clone(r.drops)
}

// dropReason is the reason in a monitor line: "xx drop (Stale or unroutable IP) flow ...".
var dropReason = regexp.MustCompile(`drop \(([^)]*)\)`)

// dropsMarkdown summarises the drops by node and reason, and lists the
// drops within a probe timeout of each unexplained failure.
func dropsMarkdown(drops []drop, unexplained []monitor.Probe, timeout time.Duration) string {
	var b strings.Builder
	b.WriteString("\n### Drops Cilium reported (cilium-dbg monitor --type drop)\n\n")
	if len(drops) == 0 {
		b.WriteString("None.\n")
	} else {
		count := map[[2]string]int{}
		example := map[[2]string]string{}
		for _, d := range drops {
			reason := "?"
			if m := dropReason.FindStringSubmatch(d.Line); m != nil {
				reason = m[1]
			}
			k := [2]string{d.Node, reason}
			count[k]++
			if _, ok := example[k]; !ok {
				example[k] = d.Line
			}
		}
		keys := make([][2]string, 0, len(count))
		for k := range count {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if keys[i][0] != keys[j][0] {
				return keys[i][0] < keys[j][0]
			}
			return keys[i][1] < keys[j][1]
		})
		b.WriteString("| node | reason | drops | first one |\n| --- | --- | ---: | --- |\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "| %s | %s | %d | `%s` |\n", k[0], k[1], count[k], strings.ReplaceAll(example[k], "|", "/"))
		}
	}
	for _, p := range unexplained {
		fmt.Fprintf(&b, "\nAround the unexplained %s probe %s (%s) -> %s at %s (%s):\n\n",
			p.Kind, p.SrcPod, p.SrcNode, p.Dst, p.T.UTC().Format("15:04:05.000"), p.Err)
		n := 0
		for _, d := range drops {
			if d.T.Before(p.T.Add(-time.Second)) || d.T.After(p.T.Add(timeout+2*time.Second)) {
				continue
			}
			fmt.Fprintf(&b, "    %s %s %s\n", d.T.UTC().Format("15:04:05.000"), d.Node, d.Line)
			n++
		}
		if n == 0 {
			b.WriteString("    (no drop reported by any agent)\n")
		}
	}
	return b.String()
}
