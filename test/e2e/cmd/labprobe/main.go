// Command labprobe is the datapath lab's downtime monitor: one per node (a
// DaemonSet), it serves /whoami, /healthz and /echo and, every interval,
// probes every peer pod by its IP (a /whoami and a large /echo), each
// target URL (Services by ClusterIP and by DNS name), the cluster DNS
// lookup of the peer Service and itself over loopback (a CPU-starvation
// gauge), writing one JSON line per probe
// (monitor.Probe) to OUT/POD_NAME.jsonl. Each probe is a new TCP
// connection, so each one goes through the datapath (and conntrack) afresh.
//
// The peers are found outside the datapath under test: each probe writes
// ANNOUNCE/POD_NAME.peer ({pod, node, ip}) when it starts (ANNOUNCE is OUT
// unless --announce says otherwise), and OUT is the same host directory on
// every lab node. A probe restarted with a new address (after its node's
// reboot) rewrites its file; the others pick the new address up at their
// next round.
//
// Policy probes (--policy name,DIR,PORT,allow|deny) check NetworkPolicies:
// every --policy-interval each one sends a GET /whoami to PORT of the next
// pod announced in DIR (round-robin, never itself) and records whether the
// connection got through, with the verdict the policies should give it.
// --also-listen serves the same handlers on more ports, so that one server
// pod can carry a port per policy.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/monitor"
)

type targets []string

func (t *targets) String() string     { return strings.Join(*t, ",") }
func (t *targets) Set(v string) error { *t = append(*t, v); return nil }

type self struct{ pod, node, ip string }

// whoami is the answer of /whoami and /echo.
type whoami struct {
	Pod    string `json:"pod"`
	Node   string `json:"node"`
	IP     string `json:"ip"`
	Client string `json:"client"`
	Bytes  int    `json:"bytes,omitempty"`
	Body   string `json:"body,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "labprobe:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		listen   = flag.String("listen", ":8080", "address to serve on")
		peers    = flag.String("peers", "", "DNS name of the peer pods (a headless Service), looked up each round as the dns probe")
		interval = flag.Duration("interval", time.Second, "time between probe rounds")
		timeout  = flag.Duration("timeout", time.Second, "timeout of each probe")
		mtuBytes = flag.Int("mtu-bytes", 1400, "size of the /echo body (0: no mtu probe)")
		out      = flag.String("out", "", "directory for POD_NAME.jsonl (empty: stdout)")
		announce = flag.String("announce", "", "directory for this pod's POD_NAME.peer (default: --out)")
		peerDir  = flag.String("peers-dir", "", "directory of the peers' .peer files probed by pod and mtu probes (default: --out; \"-\": none)")
		also     = flag.String("also-listen", "", "more ports to serve on, comma-separated")
		polEvery = flag.Duration("policy-interval", time.Second, "time between rounds of policy probes")
		tgts     targets
		pols     targets
	)
	flag.Var(&tgts, "target", "name=URL probed each round (repeatable)")
	flag.Var(&pols, "policy", "name,DIR,PORT,allow|deny: a policy probe of the pods announced in DIR (repeatable)")
	flag.Parse()
	me := self{pod: os.Getenv("POD_NAME"), node: os.Getenv("NODE_NAME"), ip: os.Getenv("POD_IP")}
	if me.pod == "" {
		me.pod, _ = os.Hostname()
	}
	_, port, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	type target struct{ name, url string }
	var ts []target
	for _, t := range tgts {
		name, url, ok := strings.Cut(t, "=")
		if !ok || name == "" || url == "" {
			return fmt.Errorf("--target %q: want name=URL", t)
		}
		ts = append(ts, target{name, url})
	}

	flows, err := parsePolicies(pols)
	if err != nil {
		return err
	}
	if *announce == "" {
		*announce = *out
	}
	if *peerDir == "" {
		*peerDir = *out
	}
	if *peerDir == "-" {
		*peerDir = ""
	}
	w := io.Writer(os.Stdout)
	if *announce != "" {
		if err := os.MkdirAll(*announce, 0o755); err != nil {
			return err
		}
		if err := writePeer(*announce, me); err != nil {
			return err
		}
	}
	if *out != "" {
		f, err := os.OpenFile(filepath.Join(*out, me.pod+".jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		// A restarted writer starts on a line of its own.
		if _, err := f.WriteString("\n"); err != nil {
			return err
		}
		w = f
	}
	rec := &recorder{w: w, me: me}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(rw, "ok\n") })
	mux.HandleFunc("/whoami", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, whoami{Pod: me.pod, Node: me.node, IP: me.ip, Client: r.RemoteAddr})
	})
	mux.HandleFunc("/echo", func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		// The body goes back too, so both directions carry a large packet.
		writeJSON(rw, whoami{Pod: me.pod, Node: me.node, IP: me.ip, Client: r.RemoteAddr, Bytes: len(body), Body: string(body)})
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	for _, p := range strings.Split(*also, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		ln, err := net.Listen("tcp", ":"+p)
		if err != nil {
			return fmt.Errorf("--also-listen %s: %w", p, err)
		}
		s := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = s.Serve(ln) }()
		defer s.Close()
	}

	// IPv4 only (the lab's networks are): one A query per lookup, never
	// the parallel A and AAAA queries of one socket that race in conntrack.
	//
	// The Service probes and the pod probes take their source ports from
	// two ranges apart. They run at the same moment against the same pods,
	// and a Service probe and a pod probe to the backend it picked could
	// otherwise have the same source port and so, once the ClusterIP is
	// translated, the same five-tuple: one monitor pod stepping on its own
	// connection, which Cilium's per-packet Service translation answers
	// with a reset (a limitation Cilium documents; see docs/datapath.md).
	// Two clients of the network never share a source address and port.
	client := probeClient(*timeout, podPorts)
	svcClient := probeClient(*timeout, servicePorts)
	echo := []byte(strings.Repeat("m", *mtuBytes))
	var peerIPs []string
	var wg sync.WaitGroup
	defer wg.Wait()
	probe := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	if len(flows) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			policyRounds(ctx, rec, client, flows, me, *polEvery, probe)
		}()
	}
	// Rounds start on the ticker and do not wait for each other: a slow or
	// timed-out probe does not thin out the probes of a disrupted time.
	for {
		if *peers != "" {
			probe(func() {
				t0 := time.Now()
				lctx, cancel := context.WithTimeout(ctx, *timeout)
				addrs, err := net.DefaultResolver.LookupIP(lctx, "ip4", *peers)
				cancel()
				p := monitor.Probe{T: t0, MS: ms(t0), Kind: monitor.KindDNS, Dst: *peers, OK: err == nil, Err: short(err)}
				if err == nil && len(addrs) == 0 {
					p.OK, p.Err = false, "dns: no addresses"
				}
				rec.write(p)
			})
		}
		if *peerDir != "" {
			if ips, err := readPeers(*peerDir, me); err == nil {
				peerIPs = ips
			}
		}
		for _, ip := range peerIPs {
			base := "http://" + net.JoinHostPort(ip, port)
			probe(func() { rec.probe(ctx, client, monitor.KindPod, ip, http.MethodGet, base+"/whoami", nil) })
			if len(echo) > 0 {
				probe(func() { rec.probe(ctx, client, monitor.KindMTU, ip, http.MethodPost, base+"/echo", echo) })
			}
		}
		for _, t := range ts {
			probe(func() { rec.probe(ctx, svcClient, t.name, hostOf(t.url), http.MethodGet, t.url, nil) })
		}
		// Itself over loopback: no datapath, so a slow answer measures how
		// starved the node's CPU is (monitor.Starved).
		probe(func() {
			rec.probe(ctx, client, monitor.KindLoopback, "127.0.0.1", http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", port)+"/healthz", nil)
		})
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// flow is one policy probe: GET /whoami on port of the pods announced in
// dir, which the policies should allow or deny.
type flow struct {
	name, dir, port, expect string
	next                    int
}

func parsePolicies(specs []string) ([]*flow, error) {
	var out []*flow
	for _, s := range specs {
		f := strings.Split(s, ",")
		if len(f) != 4 || f[0] == "" || f[1] == "" || f[2] == "" || (f[3] != monitor.ExpectAllow && f[3] != monitor.ExpectDeny) {
			return nil, fmt.Errorf("--policy %q: want name,DIR,PORT,allow|deny", s)
		}
		out = append(out, &flow{name: f[0], dir: f[1], port: f[2], expect: f[3]})
	}
	return out, nil
}

// policyRounds sends one probe of every flow each interval, each to the
// next pod of its directory in turn, until ctx ends.
func policyRounds(ctx context.Context, rec *recorder, c *http.Client, flows []*flow, me self, interval time.Duration, probe func(func())) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		for _, f := range flows {
			ips, err := readPeers(f.dir, me)
			if err != nil || len(ips) == 0 {
				continue
			}
			ip := ips[f.next%len(ips)]
			f.next++
			url := "http://" + net.JoinHostPort(ip, f.port) + "/whoami"
			probe(func() {
				rec.probeWith(ctx, c, monitor.KindPolicy, ip, http.MethodGet, url, nil, func(p *monitor.Probe) {
					p.Policy, p.Expect, p.Port = f.name, f.expect, f.port
				})
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// The source port ranges of the two kinds of probes: halves of Linux's
// default ephemeral range (net.ipv4.ip_local_port_range 32768 60999).
var (
	servicePorts = [2]uint16{32768, 45999}
	podPorts     = [2]uint16{46000, 60999}
)

// probeClient is an HTTP client without keep-alive whose connections take
// their source port from ports (IP_LOCAL_PORT_RANGE, Linux 6.3 and later;
// on an older kernel the option fails and the whole range is used).
func probeClient(timeout time.Duration, ports [2]uint16) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_LOCAL_PORT_RANGE, int(ports[0])|int(ports[1])<<16)
		})
	}}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return dialer.DialContext(ctx, "tcp4", addr)
			},
		},
	}
}

type recorder struct {
	mu sync.Mutex
	w  io.Writer
	me self
}

func (r *recorder) write(p monitor.Probe) {
	p.SrcPod, p.SrcNode, p.SrcIP = r.me.pod, r.me.node, r.me.ip
	b, err := json.Marshal(p)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.w.Write(append(b, '\n'))
}

// probe sends one request and records it. A JSON answer ({pod, node, ip,
// client}) names the pod that answered; any other answer (agnhost's
// /clientip) is taken as the client address the server saw.
func (r *recorder) probe(ctx context.Context, c *http.Client, kind, dst, method, url string, body []byte) {
	r.probeWith(ctx, c, kind, dst, method, url, body, nil)
}

// probeWith is probe with a function that fills in more of the record.
func (r *recorder) probeWith(ctx context.Context, c *http.Client, kind, dst, method, url string, body []byte, fill func(*monitor.Probe)) {
	t0 := time.Now()
	p := monitor.Probe{T: t0, Kind: kind, Dst: dst}
	if fill != nil {
		fill(&p)
	}
	defer func() { p.MS = ms(t0); r.write(p) }()
	// How far the exchange got, for the error: a failure before the
	// connection is up is another fault than one after the request went.
	var mu sync.Mutex
	stage := "connecting"
	at := func(s string) { mu.Lock(); stage = s; mu.Unlock() }
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		p.Err = short(err) + " (" + stage + ")"
	}
	trace := &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) {
			mu.Lock()
			stage, p.Local = "connected", ci.Conn.LocalAddr().String()
			mu.Unlock()
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { at("request sent") },
		GotFirstResponseByte: func() { at("reading the answer") },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, url, bytes.NewReader(body))
	if err != nil {
		p.Err = short(err)
		return
	}
	resp, err := c.Do(req)
	if err != nil {
		fail(err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
	if err != nil {
		fail(err)
		return
	}
	if resp.StatusCode != http.StatusOK {
		p.Err = fmt.Sprintf("HTTP %d", resp.StatusCode)
		return
	}
	var who whoami
	if json.Unmarshal(b, &who) == nil && who.Client != "" {
		if body != nil && (who.Bytes != len(body) || len(who.Body) != len(body)) {
			p.Err = fmt.Sprintf("echo: sent %d bytes, got %d back", len(body), len(who.Body))
			return
		}
		p.DstPod, p.DstNode, p.DstIP, p.Seen = who.Pod, who.Node, who.IP, who.Client
	} else {
		p.Seen = strings.TrimSpace(string(b))
	}
	p.OK = true
}

// writePeer announces this probe to the others (atomically).
func writePeer(dir string, me self) error {
	b, err := json.Marshal(whoami{Pod: me.pod, Node: me.node, IP: me.ip})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+me.pod+".peer.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, me.pod+".peer"))
}

// readPeers lists the other probes' addresses, sorted.
func readPeers(dir string, me self) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.peer"))
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var w whoami
		if json.Unmarshal(b, &w) != nil || w.IP == "" || w.Pod == me.pod || w.IP == me.ip {
			continue
		}
		ips = append(ips, w.IP)
	}
	slices.Sort(ips)
	return slices.Compact(ips), nil
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(v)
}

func hostOf(url string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
	h, _, _ = strings.Cut(h, "/")
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

func ms(t0 time.Time) float64 { return float64(time.Since(t0).Microseconds()) / 1000 }

// short names an error in a few words (the table groups by it).
func short(err error) string {
	if err == nil {
		return ""
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		if de.IsNotFound {
			return "dns: not found"
		}
		return "dns: " + de.Err
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}
