package sourcecni

import (
	"fmt"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

func pass(id, msg string) Finding      { return Finding{ID: id, Level: Pass, Message: msg} }
func warn(id, msg, fix string) Finding { return Finding{ID: id, Level: Warn, Message: msg, Fix: fix} }
func fail(id, msg, fix string) Finding { return Finding{ID: id, Level: Fail, Message: msg, Fix: fix} }

// maxListed is how many names a message lists before "and N more".
const maxListed = 5

// listSome lists up to maxListed names and says how many more.
func listSome(names []string) string {
	if len(names) <= maxListed {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(names)-maxListed)
}

// count renders "1 thing" or "3 things".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// orList renders "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// networkText is the CNI's pod network for a message.
func networkText(c *detect.Cluster) string {
	if c.CNI.Network != "" {
		return c.CNI.Network
	}
	return "its pod network"
}

func nonEmpty(names ...string) []string {
	var out []string
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// notAnalysed is the SNAT of a CNI whose masquerading the plugin does not
// read.
func notAnalysed(c *detect.Cluster, _ *proposal.Proposal) (string, string) {
	return fmt.Sprintf("%s's own masquerading may too (not analysed)", c.CNI.Name), ""
}
