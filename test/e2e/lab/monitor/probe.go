// Package monitor holds the downtime monitor's record type (one JSON line
// per probe, written by test/e2e/cmd/labprobe) and the analysis of what the
// probes recorded during a migration: per rollout phase, per pod pair, per
// network direction (old/new pod network) and the source NAT the servers saw.
package monitor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Probe kinds. A target probe's kind is the target's name (for example
// "svc-ip", "svc-dns", "web").
const (
	// KindPod is a GET /whoami to a peer monitor pod's IP.
	KindPod = "pod"
	// KindMTU is a POST /echo with a large body to a peer monitor pod's IP.
	KindMTU = "mtu"
	// KindDNS is the cluster DNS lookup of the peer list.
	KindDNS = "dns"
	// KindLoopback is a GET /healthz of the probe itself on 127.0.0.1: no
	// datapath, so a slow one says the node's CPU was starved (see Starved).
	KindLoopback = "loopback"
	// KindPolicy is a GET /whoami to a port of a peer pod that
	// NetworkPolicies allow or deny (Probe.Policy, Probe.Expect).
	KindPolicy = "policy"
	// KindApp is the target probe of the lab's well-run application (its
	// Service app: replicas on different nodes, a PodDisruptionBudget, a
	// readiness probe and a graceful shutdown): the users' verdict. Only
	// the client's own node's window explains its failures, or that very
	// client's starvation (see Analyze), never another node's window.
	KindApp = "app"
)

// StarvedAfter is how slow a loopback probe is when its node's CPU was
// starved (see Starved and Analyze).
const StarvedAfter = 500 * time.Millisecond

// A policy probe's expected verdict (Probe.Expect).
const (
	ExpectAllow = "allow"
	ExpectDeny  = "deny"
)

// IsPeerKind reports whether probes of kind go to one peer pod's IP
// ("pod", "mtu" and "policy"); every other kind goes to a Service (a
// target or DNS).
func IsPeerKind(kind string) bool { return kind == KindPod || kind == KindMTU || kind == KindPolicy }

// Probe is one probe, one JSON line of a labprobe output file.
type Probe struct {
	// T is when the probe started.
	T time.Time `json:"t"`
	// MS is the probe's latency in milliseconds.
	MS float64 `json:"ms"`

	SrcPod  string `json:"src_pod"`
	SrcNode string `json:"src_node"`
	SrcIP   string `json:"src_ip"`

	// Kind is KindPod, KindMTU, KindDNS or a target's name.
	Kind string `json:"kind"`
	// Dst is the IP (peer kinds) or name or Service IP (targets, DNS) probed.
	Dst string `json:"dst"`

	// DstPod, DstNode and DstIP are the answering pod's, from its /whoami
	// (or /echo) answer; set only when OK.
	DstPod  string `json:"dst_pod,omitempty"`
	DstNode string `json:"dst_node,omitempty"`
	DstIP   string `json:"dst_ip,omitempty"`

	OK bool `json:"ok"`
	// Err is a short error when not OK; for a pod, mtu or target probe it
	// ends with how far the exchange got: "timeout (connecting)",
	// "connection reset (request sent)".
	Err string `json:"err,omitempty"`
	// Local is the client's own address (ip:port) of the connection, once
	// it was up: to find the probe in conntrack or in Cilium's drops.
	Local string `json:"local,omitempty"`
	// Seen is the client address (ip:port) the server reported, when OK:
	// the source address after any NAT.
	Seen string `json:"seen,omitempty"`

	// Policy names the flow of a policy probe, Expect is what the
	// NetworkPolicies should do with it (ExpectAllow, ExpectDeny) and Port
	// the server port it went to. OK means the connection got through.
	Policy string `json:"policy,omitempty"`
	Expect string `json:"expect,omitempty"`
	Port   string `json:"port,omitempty"`
}

// Denied reports whether p is a policy probe the policies should deny:
// its failure is the policy at work, its success a denied flow let through.
func (p Probe) Denied() bool { return p.Kind == KindPolicy && p.Expect == ExpectDeny }

// Load reads every *.jsonl file under dir (recursively) and returns their
// probes sorted by time (stable: files in lexical order, lines in order).
// A line cut short by a killed writer is skipped: the last line of a file,
// or any line that does not end its JSON object (a restarted writer starts
// a new line after it). A killed writer's partial line with the restarted
// writer's first line appended to it yields that appended line. Any other
// line that is not a probe is an error.
func Load(dir string) ([]Probe, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".jsonl") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Probe
	for _, f := range files {
		ps, err := loadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	slices.SortStableFunc(out, func(a, b Probe) int { return a.T.Compare(b.T) })
	return out, nil
}

// recordStart is how every probe line starts (T is the first field).
var recordStart = []byte(`{"t":`)

func loadFile(path string) ([]Probe, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Probe
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, rerr := r.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, fmt.Errorf("%s: %w", path, rerr)
		}
		last := rerr != nil
		if _, perr := r.Peek(1); perr != nil {
			last = true
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			p, ok := parseLine(line)
			switch {
			case ok:
				out = append(out, p)
			case last || line[len(line)-1] != '}':
				// Truncated by a killed writer: skip.
			default:
				return nil, fmt.Errorf("%s:%d: not a probe: %.80q", path, n, line)
			}
		}
		if rerr != nil {
			return out, nil
		}
	}
}

func parseLine(line []byte) (Probe, bool) {
	var p Probe
	if err := json.Unmarshal(line, &p); err == nil && !p.T.IsZero() {
		return p, true
	}
	// A partial line with a whole record appended to it.
	if i := bytes.LastIndex(line, recordStart); i > 0 {
		p = Probe{}
		if err := json.Unmarshal(line[i:], &p); err == nil && !p.T.IsZero() {
			return p, true
		}
	}
	return Probe{}, false
}
