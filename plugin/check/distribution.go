package check

import (
	"fmt"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// IDDistribution: the Kubernetes distribution the nodes run, when the
// plugin recognises one (k3s, RKE2); only then is the check shown.
const IDDistribution = "distribution"

// distributionCheck says what the distribution changes: on k3s, the CNI
// directories Cilium is given; on RKE2, that RKE2 does not support changing
// the CNI of a running cluster (FAIL, WARN with ignoreUnsupported).
func distributionCheck(c *detect.Cluster, p *proposal.Proposal, ignoreUnsupported bool) (Result, bool) {
	d := c.Distribution
	if d == nil {
		return Result{}, false
	}
	what := fmt.Sprintf("%s %s (%s)", d.Name, d.Version, d.Evidence)
	switch d.Name {
	case detect.DistroK3s:
		conf, bin := d.CNIConfDir, d.CNIBinDir
		if p != nil && p.CNIConfPath != "" {
			conf, bin = p.CNIConfPath, p.CNIBinPath
		}
		fix := fmt.Sprintf("make sure they are the ones on the nodes: grep -A2 'cni' /var/lib/rancher/k3s/agent/etc/containerd/config.toml shows bin_dir and conf_dir; k3s releases before its static CNI bin dir use %s, and a custom --data-dir moves both; pass --values with cni.binPath and cni.confPath if they differ", detect.K3sLegacyCNIBinDir)
		if dir := d.Flag("data-dir"); dir != "" {
			fix = fmt.Sprintf("k3s runs with --data-dir %s: pass --values with cni.binPath and cni.confPath under it (containerd's config.toml on a node shows them)", dir)
		}
		return warn(IDDistribution, fmt.Sprintf("%s: Cilium is given k3s's CNI directories, cni.confPath %s and cni.binPath %s", what, conf, bin), fix), true
	case detect.DistroRKE2:
		packaged := rke2Packaged(c)
		msg := fmt.Sprintf("%s%s: RKE2 does not support changing the CNI of a running cluster (docs.rke2.io, Network Options)", what, packaged)
		if ignoreUnsupported {
			return warn(IDDistribution, msg+"; migrating anyway (--ignore-unsupported-distribution)",
				"rehearse on a copy of the cluster; keep RKE2's cni setting until every node is on Cilium, then set cni: none in /etc/rancher/rke2/config.yaml on every server (see finalize)"), true
		}
		return fail(IDDistribution, msg,
			"rebuild the cluster with cni: cilium in /etc/rancher/rke2/config.yaml, or pass --ignore-unsupported-distribution to plan a migration RKE2 does not support"), true
	}
	return fail(IDDistribution, what+": a distribution this version has no rules for", "report it; pass --from and --old-pod-cidr to plan as on a plain cluster"), true
}

// rke2Packaged names RKE2's HelmChart that installed the old CNI, "" when
// the old CNI is not one of RKE2's packaged charts.
func rke2Packaged(c *detect.Cluster) string {
	if c.CNI == nil {
		return ""
	}
	if chart := detect.RKE2Chart(c.CNI); chart != "" {
		return fmt.Sprintf(", its packaged %s (HelmChart kube-system/%s, re-applied by RKE2's helm-controller)", strings.TrimPrefix(chart, "rke2-"), chart)
	}
	return ""
}
