// Package rollout runs `kubectl cni-migrate rollout`: it decides the order
// and the batches in which nodes are migrated (nodes already under way
// first, then the workers, then the control-plane nodes one at a time, in
// name order within each group), holds the rollout lock and renews it,
// passes the connectivity gate between batches, and builds the summary. The
// in-place method runs under the same lock (RunInPlace); `node` and
// `rollback` run the same steps on named nodes, with the same gate and
// summary but no lock (RunNodes, InPlace).
//
// Files: rollout.go orders and batches; run.go selects the nodes and runs
// the batches; lock.go holds the lock; gate.go is the connectivity gate;
// inplace.go and nodes.go are the in-place and the named-node runs.
package rollout

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
)

// Node is what ordering needs to know of a node.
type Node struct {
	Name         string
	ControlPlane bool
	Phase        migrate.Phase
}

// Order returns the nodes still to migrate in rollout order, and the names
// of those already done.
func Order(nodes []Node) (todo []Node, done []string) {
	for _, n := range nodes {
		if n.Phase.Done() {
			done = append(done, n.Name)
		} else {
			todo = append(todo, n)
		}
	}
	rank := func(n Node) int {
		switch {
		case !n.ControlPlane && n.Phase != migrate.PhaseNone:
			return 0 // a worker under way: finish it first
		case !n.ControlPlane:
			return 1
		case n.Phase != migrate.PhaseNone:
			return 2
		default:
			return 3
		}
	}
	sort.SliceStable(todo, func(i, j int) bool {
		ri, rj := rank(todo[i]), rank(todo[j])
		if ri != rj {
			return ri < rj
		}
		return todo[i].Name < todo[j].Name
	})
	sort.Strings(done)
	return todo, done
}

// Batches splits ordered nodes into batches of size workers; control-plane
// nodes always go one at a time, after every worker.
func Batches(ordered []Node, size int) [][]Node {
	if size < 1 {
		size = 1
	}
	var out [][]Node
	var cur []Node
	for _, n := range ordered {
		if n.ControlPlane {
			if len(cur) > 0 {
				out, cur = append(out, cur), nil
			}
			out = append(out, []Node{n})
			continue
		}
		cur = append(cur, n)
		if len(cur) == size {
			out, cur = append(out, cur), nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// BatchSize resolves --batch and --max-unavailable (N or P% of total, at
// least 1) into a batch size. Setting both is an error.
func BatchSize(batch int, maxUnavailable string, total int) (int, error) {
	if batch != 0 && maxUnavailable != "" {
		return 0, errs.New(errs.Usage, "--batch and --max-unavailable both set", "use one of them")
	}
	if maxUnavailable == "" {
		if batch < 0 {
			return 0, errs.Newf(errs.Usage, "pass a positive number of nodes", "--batch %d is not positive", batch)
		}
		if batch == 0 {
			return 1, nil
		}
		return batch, nil
	}
	if p, ok := strings.CutSuffix(maxUnavailable, "%"); ok {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 || v > 100 {
			return 0, errs.Newf(errs.Usage, "pass a number of nodes or a percentage from 1% to 100%", "--max-unavailable %q is not valid", maxUnavailable)
		}
		return max(1, total*v/100), nil
	}
	v, err := strconv.Atoi(maxUnavailable)
	if err != nil || v <= 0 {
		return 0, errs.Newf(errs.Usage, "pass a number of nodes or a percentage such as 10%", "--max-unavailable %q is not valid", maxUnavailable)
	}
	return v, nil
}

// Describe renders batches for the plan line: "[w1 w2] [w3] [cp]".
func Describe(batches [][]Node) string {
	var parts []string
	for _, b := range batches {
		var names []string
		for _, n := range b {
			names = append(names, n.Name)
		}
		parts = append(parts, "["+strings.Join(names, " ")+"]")
	}
	return strings.Join(parts, " ")
}

// Names returns the names of nodes.
func Names(nodes []Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

// String renders a node for messages.
func (n Node) String() string {
	if n.ControlPlane {
		return fmt.Sprintf("%s (control-plane)", n.Name)
	}
	return n.Name
}
