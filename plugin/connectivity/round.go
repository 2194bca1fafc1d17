package connectivity

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Dial is one netexec /dial: the probe pod dials Host:Port itself and
// sends Request (an HTTP path, or a UDP payload).
type Dial struct {
	Host     string
	Port     int
	Protocol string // "http" or "udp"
	Request  string
}

// Answer is netexec's /dial answer.
type Answer struct {
	Responses []string `json:"responses"`
	Errors    []string `json:"errors"`
}

// Dialer sends a Dial to a probe pod and returns its Answer. ProxyDialer
// goes through the API server's pod proxy; tests use a double.
type Dialer interface {
	Dial(ctx context.Context, pod Probe, d Dial) (Answer, error)
}

// ProxyDialer asks the probe pods through the API server's pod proxy
// (GET pods/proxy): one request per check.
type ProxyDialer struct {
	Client    kubernetes.Interface
	Namespace string
}

// Dial implements Dialer.
func (p ProxyDialer) Dial(ctx context.Context, pod Probe, d Dial) (Answer, error) {
	raw, err := p.Client.CoreV1().Pods(p.Namespace).ProxyGet("http", pod.Pod, strconv.Itoa(HTTPPort), "dial", d.params()).DoRaw(ctx)
	if err != nil {
		return Answer{}, err
	}
	return parseAnswer(raw)
}

func (d Dial) params() map[string]string {
	return map[string]string{"host": d.Host, "port": strconv.Itoa(d.Port), "protocol": d.Protocol, "request": d.Request, "tries": "1"}
}

func parseAnswer(raw []byte) (Answer, error) {
	var a Answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("not a netexec /dial answer: %.80q", raw)
	}
	return a, nil
}

// Round runs the checks of one round.
type Round struct {
	Client    kubernetes.Interface
	Dialer    Dialer
	Namespace string
	// Classify names the network of a pod address (NetOld, NetNew, NetOther).
	Classify func(ip string) string
	// MTU is the pod MTU the mtu check fills: a UDP payload of MTU-28 bytes.
	MTU int
	// MaxPeers bounds the peers each probe dials per round (0: all); the
	// peers rotate from round to round so that every pair is covered.
	MaxPeers int
	// Parallel bounds the requests in flight.
	Parallel int
	// Timeout bounds each request (netexec gives its own dial 5 s).
	Timeout time.Duration
	// n counts the rounds run (for the rotation of the peers).
	n int
	// The Services' addresses, read in the first round (a ClusterIP does
	// not change while its Service exists).
	svcIP, apiIP string
	apiPort      int
}

// Nodes lists the names of the nodes that should have a probe: all of them.
func Nodes(ctx context.Context, c kubernetes.Interface) ([]string, error) {
	l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range l.Items {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	return names, nil
}

// Probes lists the probe pods.
func Probes(ctx context.Context, c kubernetes.Interface, namespace string, classify func(string) string) ([]Probe, error) {
	l, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: Selector()})
	if err != nil {
		return nil, err
	}
	var ps []Probe
	for i := range l.Items {
		p := &l.Items[i]
		if p.DeletionTimestamp != nil || p.Spec.NodeName == "" {
			continue
		}
		ps = append(ps, Probe{Pod: p.Name, Node: p.Spec.NodeName, IP: p.Status.PodIP, Network: classify(p.Status.PodIP), Ready: p.Status.PodIP != "" && kube.PodReady(p)})
	}
	sort.Slice(ps, func(i, j int) bool {
		return ps[i].Node < ps[j].Node || ps[i].Node == ps[j].Node && ps[i].Pod < ps[j].Pod
	})
	return ps, nil
}

// Run lists the probes and the nodes, runs every check of the round and
// returns what Tracker.Observe takes.
func (r *Round) Run(ctx context.Context) ([]Probe, []string, []Result, error) {
	r.n++
	nodes, err := Nodes(ctx, r.Client)
	if err != nil {
		return nil, nil, nil, err
	}
	probes, err := Probes(ctx, r.Client, r.Namespace, r.Classify)
	if err != nil {
		return nil, nil, nil, err
	}
	if r.svcIP == "" {
		svc, err := r.Client.CoreV1().Services(r.Namespace).Get(ctx, Name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, nil, err
		}
		api, err := r.Client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			return nil, nil, nil, err
		}
		r.apiPort = 443
		if len(api.Spec.Ports) > 0 {
			r.apiPort = int(api.Spec.Ports[0].Port)
		}
		r.svcIP, r.apiIP = svc.Spec.ClusterIP, api.Spec.ClusterIP
	}
	var ready []Probe
	for _, p := range probes {
		if p.Ready {
			ready = append(ready, p)
		}
	}
	return probes, nodes, r.checks(ctx, ready, r.svcIP, r.apiIP, r.apiPort), nil
}

// Plan lists the checks of a round for the ready probes: each probe's
// peers (bounded by MaxPeers, rotating with the round) by pod IP and by a
// full-MTU datagram, then the Service by ClusterIP and DNS name and the
// API server.
func (r *Round) Plan(ready []Probe, svcIP, apiIP string, apiPort int) []Result {
	dns := Name + "." + r.Namespace + ".svc"
	var plan []Result
	for i, s := range ready {
		var others []Probe
		for j, d := range ready {
			if j != i {
				others = append(others, d)
			}
		}
		peers := others
		if r.MaxPeers > 0 && len(others) > r.MaxPeers {
			peers = nil
			start := ((r.n - 1) * r.MaxPeers) % len(others)
			for k := 0; k < r.MaxPeers; k++ {
				peers = append(peers, others[(start+k)%len(others)])
			}
		}
		base := Result{SrcPod: s.Pod, SrcNode: s.Node, SrcNet: s.Network}
		for _, d := range peers {
			for _, c := range []string{CheckPod, CheckMTU} {
				x := base
				x.Check, x.Target, x.DstPod, x.DstNode, x.DstNet = c, d.IP, d.Pod, d.Node, d.Network
				plan = append(plan, x)
			}
		}
		for _, c := range []struct{ check, target string }{
			{CheckService, net.JoinHostPort(svcIP, strconv.Itoa(HTTPPort))},
			{CheckDNS, dns},
			{CheckAPIServer, net.JoinHostPort(apiIP, strconv.Itoa(apiPort))},
		} {
			x := base
			x.Check, x.Target = c.check, c.target
			plan = append(plan, x)
		}
	}
	return plan
}

func (r *Round) checks(ctx context.Context, ready []Probe, svcIP, apiIP string, apiPort int) []Result {
	plan := r.Plan(ready, svcIP, apiIP, apiPort)
	byPod := map[string]Probe{}
	for _, p := range ready {
		byPod[p.Pod] = p
	}
	payload := strings.Repeat("m", max(r.MTU-28-len("echo "), 1))
	par := r.Parallel
	if par <= 0 {
		par = 8
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range plan {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			x := &plan[i]
			d := dialOf(x, payload)
			cctx, cancel := context.WithTimeout(ctx, r.Timeout)
			defer cancel()
			a, err := r.Dialer.Dial(cctx, byPod[x.SrcPod], d)
			judge(x, d, a, err)
		}()
	}
	wg.Wait()
	return plan
}

// dialOf is the netexec /dial of a planned check.
func dialOf(x *Result, payload string) Dial {
	switch x.Check {
	case CheckPod:
		return Dial{Host: x.Target, Port: HTTPPort, Protocol: "http", Request: "clientip"}
	case CheckMTU:
		return Dial{Host: x.Target, Port: UDPPort, Protocol: "udp", Request: "echo " + payload}
	case CheckDNS:
		return Dial{Host: x.Target, Port: HTTPPort, Protocol: "http", Request: "hostname"}
	}
	host, port, _ := net.SplitHostPort(x.Target)
	p, _ := strconv.Atoi(port)
	req := "hostname"
	if x.Check == CheckAPIServer {
		// Plain HTTP to the TLS port: any answer (a 400) proves the path.
		req = "healthz"
	}
	return Dial{Host: host, Port: p, Protocol: "http", Request: req}
}

// judge fills a check's outcome from the probe pod's answer.
func judge(x *Result, d Dial, a Answer, err error) {
	switch {
	case err != nil:
		x.Error = "asking the probe pod: " + errs.OneLine(err.Error())
	case len(a.Responses) == 0 && len(a.Errors) > 0:
		x.Error = errs.OneLine(a.Errors[len(a.Errors)-1])
	case len(a.Responses) == 0:
		x.Error = "no answer"
	case x.Check == CheckMTU && a.Responses[0] != strings.TrimPrefix(d.Request, "echo "):
		x.Error = fmt.Sprintf("sent %d bytes, %d came back", len(d.Request)-len("echo "), len(a.Responses[0]))
	default:
		x.OK = true
		if x.Check == CheckPod {
			x.Seen = strings.TrimSpace(a.Responses[0])
		}
	}
	if len(x.Error) > 200 {
		x.Error = x.Error[:200]
	}
}

// HTTPDialer sends each Dial to Base + "/dial" with the probe pod's name
// and node added (pod, node): a stand-in for the pod proxy, for the kwok
// e2e suite, whose pods cannot answer (KUBECTL_CNI_MIGRATE_PROBE_ENDPOINT).
type HTTPDialer struct {
	Base   string
	Client *http.Client
}

// Dial implements Dialer.
func (h HTTPDialer) Dial(ctx context.Context, pod Probe, d Dial) (Answer, error) {
	q := url.Values{}
	for k, v := range d.params() {
		q.Set(k, v)
	}
	q.Set("pod", pod.Pod)
	q.Set("node", pod.Node)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(h.Base, "/")+"/dial?"+q.Encode(), nil)
	if err != nil {
		return Answer{}, err
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("probe endpoint: HTTP %d: %s", resp.StatusCode, errs.OneLine(string(raw)))
	}
	return parseAnswer(raw)
}
