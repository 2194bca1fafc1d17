package policyreport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/policybridge"
)

// AgentContainer is the container of Cilium's agent pods the monitor runs in.
const AgentContainer = "cilium-agent"

// monitorCommand prints the agent's policy verdicts with numeric
// identities for seconds (cilium-dbg from Cilium 1.15, cilium before): the
// monitor ends on its own (coreutils' timeout, exit code 124), so that the
// exec stream closes cleanly rather than by the plugin cutting it.
func monitorCommand(seconds int) []string {
	return []string{"sh", "-c", fmt.Sprintf(`M=cilium-dbg; command -v cilium-dbg >/dev/null 2>&1 || M=cilium
if command -v timeout >/dev/null 2>&1; then exec timeout -s INT %d "$M" monitor --type policy-verdict --numeric; fi
exec "$M" monitor --type policy-verdict --numeric`, seconds)}
}

// timedOut is timeout's exit code when the command ran its time.
const timedOut = 124

var endpointsGVR = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumendpoints"}

// Needs are the permissions of Collect in Cilium's namespace ns.
func Needs(ns string) []access.Need {
	var out []access.Need
	add := func(group, resource, sub, ns, why string, verbs ...string) {
		for _, v := range verbs {
			out = append(out, access.Need{Group: group, Resource: resource, Subresource: sub, Verb: v, Namespace: ns, Why: why})
		}
	}
	add("", "pods", "", "", "find Cilium's agents and name the flows' pods", "list")
	add("", "pods", "exec", ns, "read the policy verdicts of Cilium's agents (cilium-dbg monitor)", "create")
	add("cilium.io", "ciliumendpoints", "", "", "tell which pod a verdict's endpoint is", "list")
	add("networking.k8s.io", "networkpolicies", "", "", "name the policies that select the pods", "list")
	return out
}

// Collect runs the policy-verdict monitor in every Ready agent of Cilium's
// namespace ns for d, then reads what names the flows; nodeAddrs are the
// nodes' InternalIPs by name (from detection). say reports progress.
func Collect(ctx context.Context, cl *kube.Clients, ns string, nodeAddrs map[string]string, d time.Duration, say func(string)) ([]Observed, Inventory, error) {
	inv := Inventory{NodeIPs: map[string]string{}, NodeAddrs: nodeAddrs}
	agents, err := cl.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: migrate.AgentLabel})
	if err != nil {
		return nil, inv, fmt.Errorf("listing Cilium's agents: %w", err)
	}
	var ready []corev1.Pod
	for _, p := range agents.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == AgentContainer && cs.Ready && p.Spec.NodeName != "" {
				ready = append(ready, p)
			}
		}
	}
	if len(ready) == 0 {
		return nil, inv, errors.New("no Cilium agent is Ready")
	}
	say(fmt.Sprintf("reading the policy verdicts of %d Cilium agents for %s", len(ready), d))
	// The monitor ends itself after d; the context cuts it 15 s later if
	// the image has no timeout command or the agent does not answer.
	seconds := int((d + time.Second - 1) / time.Second)
	ctx2, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+15*time.Second)
	defer cancel()
	var (
		mu   sync.Mutex
		obs  []Observed
		wg   sync.WaitGroup
		errs []string
	)
	for _, p := range ready {
		inv.NodeIPs[p.Spec.NodeName] = p.Status.HostIP
		wg.Add(1)
		go func(p corev1.Pod) {
			defer wg.Done()
			got, err := monitor(ctx2, cl, p, seconds)
			mu.Lock()
			defer mu.Unlock()
			obs = append(obs, got...)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s (%s): %v", p.Name, p.Spec.NodeName, err))
			}
		}(p)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, inv, ctx.Err()
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, inv, fmt.Errorf("reading the policy verdicts of %s", strings.Join(errs, "; "))
	}
	sort.SliceStable(obs, func(i, j int) bool { return obs[i].At.Before(obs[j].At) })
	return obs, inv, inventory(ctx, cl, &inv)
}

// monitor streams one agent's verdicts until ctx ends.
func monitor(ctx context.Context, cl *kube.Clients, p corev1.Pod, seconds int) ([]Observed, error) {
	req := cl.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(p.Namespace).Name(p.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: AgentContainer, Command: monitorCommand(seconds), Stdout: true, Stderr: true}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(cl.Config, "POST", req.URL())
	if err != nil {
		return nil, err
	}
	ws, err := remotecommand.NewWebSocketExecutor(cl.Config, "GET", req.URL().String())
	if err != nil {
		return nil, err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	var out []Observed
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			if v, ok := ParseVerdict(sc.Text()); ok {
				out = append(out, Observed{Node: p.Spec.NodeName, At: time.Now(), Verdict: v})
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	var stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: pw, Stderr: &stderr})
	_ = pw.Close()
	<-done
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.ExitStatus() == timedOut {
		return out, nil // the monitor ran its time
	}
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		// The plugin's own deadline: the stream ends here.
		return out, nil
	}
	if err == nil {
		err = errors.New("the monitor ended before its time")
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		err = fmt.Errorf("%w: %s", err, s)
	}
	return out, err
}

// inventory reads what names the flows' ends.
func inventory(ctx context.Context, cl *kube.Clients, inv *Inventory) error {
	eps, err := cl.Dynamic.Resource(endpointsGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing CiliumEndpoints: %w", err)
	}
	for _, u := range eps.Items {
		// The policy bridge's endpoints are old-network pods, which no
		// agent audits.
		if u.GetLabels()[policybridge.ManagedByLabel] == policybridge.ManagedBy {
			continue
		}
		st, _ := u.Object["status"].(map[string]any)
		id, _ := st["id"].(int64)
		nw, _ := st["networking"].(map[string]any)
		node, _ := nw["node"].(string)
		if id == 0 || node == "" {
			continue
		}
		inv.Endpoints = append(inv.Endpoints, Endpoint{NodeIP: node, ID: int(id), Namespace: u.GetNamespace(), Name: u.GetName()})
	}
	pods, err := cl.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	inv.Pods = pods.Items
	nps, err := cl.Kube.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing NetworkPolicies: %w", err)
	}
	inv.Policies = nps.Items
	return nil
}
