package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/ciliumsim"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// The two clients whose API requests the audit log records: the plugin's
// rollout and the guide's loop, each with a client certificate of its own.
const (
	pluginUser = "bench-plugin"
	guideUser  = "bench-guide"
	guideLabel = "bench.cni-migrate.io/guide"
)

// auditFlags makes the API server log one line per finished request of the
// two benchmark users (and nothing for anyone else), so that requests are
// counted where they arrive, whatever the client.
func auditFlags(dir string) ([]string, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	data := fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  users: [%s, %s]
- level: None
`, pluginUser, guideUser)
	if err := os.WriteFile(policy, []byte(data), 0o644); err != nil {
		return nil, err
	}
	return []string{"--audit-policy-file=" + policy, "--audit-log-path=" + filepath.Join(dir, "audit.log"), "--audit-log-maxsize=0"}, nil
}

// auditCounts counts the audit log's requests per user, and per user and
// request ("get pods", "create pods/eviction").
func auditCounts(dir string) (map[string]int, map[string]map[string]int, error) {
	out, by := map[string]int{}, map[string]map[string]int{}
	f, err := os.Open(filepath.Join(dir, "audit.log"))
	if os.IsNotExist(err) {
		return out, by, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Verb string `json:"verb"`
			User struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef struct {
				Resource    string `json:"resource"`
				Subresource string `json:"subresource"`
			} `json:"objectRef"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue
		}
		u := ev.User.Username
		out[u]++
		what := ev.Verb + " " + ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			what += "/" + ev.ObjectRef.Subresource
		}
		if ev.ObjectRef.Resource == "" {
			what = ev.Verb + " (discovery and other paths)"
		}
		if by[u] == nil {
			by[u] = map[string]int{}
		}
		by[u][what]++
	}
	return out, by, sc.Err()
}

// topRequests lists the kinds of request of one user, most first, as
// counts per node.
func topRequests(by map[string]int, nodes, n int) string {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range by {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	var parts []string
	for i, e := range l {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.1f", e.k, float64(e.v)/float64(nodes)))
	}
	return strings.Join(parts, ", ")
}

// guideLoop is the guide's per-node steps (Cilium's migration guide, as in
// ../shared/reference: cordon, drain, label, delete the node's agent, wait
// for the DaemonSet, look at the node, verify, uncordon) for the nodes given
// as arguments, one after the other. The reboot is skipped, as the rollout
// skips it (--reboot=skip). Two changes for kwok, which runs no containers:
// drain takes --force and --delete-emptydir-data for the benchmark's bare
// pods (the rollout gets the same flags), and the verification pod, which
// kwok cannot attach to, is created, waited for and deleted by three
// commands instead of one `kubectl run --attach --rm`.
const guideLoop = `set -euo pipefail
for NODE in "$@"; do
  kubectl cordon "$NODE"
  kubectl drain --ignore-daemonsets --delete-emptydir-data --force "$NODE"
  kubectl label node "$NODE" --overwrite "io.cilium.migration/cilium-default=true"
  kubectl -n kube-system delete pod --field-selector spec.nodeName="$NODE" -l k8s-app=cilium
  kubectl -n kube-system rollout status ds/cilium -w
  kubectl get -o wide node "$NODE"
  kubectl -n kube-system run --restart=Never verify-network \
    --overrides='{"spec": {"nodeName": "'"$NODE"'", "tolerations": [{"operator": "Exists"}]}}' \
    --image ghcr.io/nicolaka/netshoot:v0.8 -- /bin/bash -c 'ip -br addr && curl -s -k https://$KUBERNETES_SERVICE_HOST/healthz && echo'
  kubectl -n kube-system wait --for=condition=Ready pod/verify-network --timeout=5m
  kubectl -n kube-system get pod verify-network -o jsonpath='{.status.podIP}{"\n"}'
  kubectl -n kube-system delete pod verify-network
  kubectl uncordon "$NODE"
done
`

// measureRollout migrates the workers but the last cfg.guideNodes with the
// plugin's rollout, then those with the guide's loop (the control-plane
// nodes stay as they are), and prints
// wall time, API requests (in all and per node) and peak RSS of each.
func measureRollout(ctx context.Context, c *cluster.Cluster, cfg config, dir string) error {
	// The fixture's PodDisruptionBudgets (one allows no disruption at all)
	// would hold both drains: allow every disruption, for both alike.
	pdbs, err := c.Client.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, p := range pdbs.Items {
		patch := []byte(`{"spec":{"maxUnavailable":"100%","minAvailable":null}}`)
		if _, err := c.Client.PolicyV1().PodDisruptionBudgets(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return err
		}
	}
	var guide []string
	for i := cfg.workerCount() - cfg.guideNodes; i < cfg.workerCount(); i++ {
		guide = append(guide, workerName(i))
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, guideLabel)
		if _, err := c.Client.CoreV1().Nodes().Patch(ctx, workerName(i), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return err
		}
	}
	// Workers only: the control plane goes last, after every worker is
	// recorded done, and the guide's loop records nothing.
	rolloutNodes := cfg.workerCount() - cfg.migrated - cfg.guideNodes
	kubeconfigs := map[string]string{}
	for _, u := range []string{pluginUser, guideUser} {
		kubeconfigs[u] = filepath.Join(dir, u+".kubeconfig")
		if _, _, err := c.WriteClientKubeconfig(kubeconfigs[u], u, []string{"system:masters"}, c.Server); err != nil {
			return err
		}
	}
	env := func(user string) []string {
		return append(commandEnv(c, cfg), "KUBECONFIG="+kubeconfigs[user])
	}
	timeBin, _ := exec.LookPath("/usr/bin/time")

	type row struct {
		name  string
		nodes int
		res   result
		user  string
	}
	var rows []row

	logf("rollout: %d nodes, --batch %d --reboot=skip", rolloutNodes, cfg.batch)
	args := []string{"kubectl", "cni-migrate", "rollout", "--batch", fmt.Sprint(cfg.batch), "--reboot=skip", "--force", "--delete-emptydir-data",
		"--selector", "!" + guideLabel + ",!node-role.kubernetes.io/control-plane", "-o", "json"}
	var summary bytes.Buffer
	r, stderr, err := runKeeping(ctx, env(pluginUser), timeBin, args, func(string) int { return 0 }, &summary)
	if err != nil {
		return err
	}
	steps, err := stepTimes(summary.Bytes())
	if err != nil {
		return err
	}
	logf("rollout done in %v\n%s", r.wall.Round(time.Second), tail(stderr, 12))
	rows = append(rows, row{name: fmt.Sprintf("kubectl cni-migrate rollout --batch %d --reboot=skip", cfg.batch), nodes: rolloutNodes, res: r, user: pluginUser})

	logf("the guide's loop: %d nodes, one after the other", len(guide))
	script := filepath.Join(dir, "guide-loop.sh")
	if err := os.WriteFile(script, []byte(guideLoop), 0o755); err != nil {
		return err
	}
	r, _, err = runOnce(ctx, env(guideUser), timeBin, append([]string{"bash", script}, guide...), func(string) int { return 0 })
	if err != nil {
		return err
	}
	logf("guide loop done in %v", r.wall.Round(time.Second))
	rows = append(rows, row{name: "the guide's loop of kubectl commands", nodes: len(guide), res: r, user: guideUser})

	// Both migrated what they were given.
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	done, labelled := 0, 0
	for _, n := range nodes.Items {
		if n.Annotations["cni-migrate.io/phase"] == "done" {
			done++
		}
		if n.Labels[ciliumsim.DefaultMigrationLabel] == "true" {
			labelled++
		}
	}
	if done != cfg.workerCount()-cfg.guideNodes || labelled != cfg.workerCount() {
		return fmt.Errorf("after both: %d nodes done (want %d), %d labelled (want %d)", done, cfg.workerCount()-cfg.guideNodes, labelled, cfg.workerCount())
	}

	time.Sleep(2 * time.Second) // the last watches' lines
	counts, byKind, err := auditCounts(dir)
	if err != nil {
		return err
	}
	fmt.Printf("\nbench-rollout: %d nodes, %d pods created, Cilium %s; requests counted by the API server's audit log\n\n", cfg.nodes, cfg.pods, cfg.cilium)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "MIGRATION\tNODES\tWALL TIME\tPER NODE\tAPI REQUESTS\tPER NODE\tPEAK RSS")
	for _, rw := range rows {
		n := counts[rw.user]
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%d\t%.1f\t%s\n", rw.name, rw.nodes, rw.res.wall.Round(100*time.Millisecond),
			(rw.res.wall / time.Duration(rw.nodes)).Round(10*time.Millisecond), n, float64(n)/float64(rw.nodes), size(rw.res.rssKiB<<10))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("\nthe rollout's steps (seconds per node, from rollout -o json): %s\n", steps)
	for _, rw := range rows {
		fmt.Printf("\n%s, requests per node by kind: %s\n", rw.name, topRequests(byKind[rw.user], rw.nodes, 8))
	}
	plug, gd := rows[0], rows[1]
	guideAll := gd.res.wall / time.Duration(gd.nodes) * time.Duration(plug.nodes)
	fmt.Printf("\nthe guide's loop on the rollout's %d nodes: %v (its measured time per node times %d); the rollout: %v, %.1fx faster\n",
		plug.nodes, guideAll.Round(time.Second), plug.nodes, plug.res.wall.Round(time.Second), float64(guideAll)/float64(plug.res.wall))
	fmt.Printf("(peak RSS: the largest process of each, %s)\n", strings.Join([]string{"kubectl and the plugin", "bash and kubectl"}, "; "))
	return nil
}

// stepTimes summarises the rollout's -o json summary: each step's median
// and maximum duration over the nodes.
func stepTimes(summary []byte) (string, error) {
	var s struct {
		Nodes []struct {
			Steps []struct {
				Name    string  `json:"name"`
				Seconds float64 `json:"durationSeconds"`
			} `json:"steps"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(summary, &s); err != nil {
		return "", fmt.Errorf("rollout -o json: %w", err)
	}
	by := map[string][]float64{}
	var order []string
	for _, n := range s.Nodes {
		for _, st := range n.Steps {
			if _, ok := by[st.Name]; !ok {
				order = append(order, st.Name)
			}
			by[st.Name] = append(by[st.Name], st.Seconds)
		}
	}
	var parts []string
	for _, name := range order {
		v := by[name]
		sort.Float64s(v)
		parts = append(parts, fmt.Sprintf("%s median %.1f max %.1f", name, v[len(v)/2], v[len(v)-1]))
	}
	return strings.Join(parts, "; "), nil
}
