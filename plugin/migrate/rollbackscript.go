package migrate

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/shell"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

// RollbackScript returns a bash script that does what `rollback` does for
// the nodes, with plain kubectl commands and the same annotations, so that
// the script and the plugin can resume each other's work. It is what
// rollback --dry-run=client prints. in.OldCNI names the CNI the nodes go
// back to ("flannel" gets flannel's file names in the CNI instructions).
func RollbackScript(o Options, in ScriptInput) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	for _, n := range in.Nodes {
		if err := ValidateNodeName(n); err != nil {
			return "", err
		}
	}
	key, _, _ := nodeconfig.ParseLabel(o.NodeLabel)
	ns := in.Namespace
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	scriptPrologue(&b, in, o.Reboot, "The rollback of nodes migrated with Cilium's dual-overlay migration, as plain kubectl commands.",
		fmt.Sprintf(`#
# Each step records its progress on the node (annotation %s), and a
# re-run continues after the last recorded step, as the plugin does: the plugin
# and this script can resume each other's work. The last step removes every
# cni-migrate.io/ annotation: the node is then not migrated (phase none).
# Review it, then run it with bash.
`, AnnotationRollbackPhase))
	p(`
# record_rollback NODE PHASE [ANNOTATION=VALUE...]: record that the rollback of NODE completed PHASE
record_rollback() {
  local node=$1 phase=$2
  shift 2
  kubectl annotate node "$node" --overwrite "%[1]s=$phase" "%[2]s=$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)" "$@"
}

# Before anything changes: the migration must not be finalized: Cilium in
# migration mode and the CiliumNodeConfig that hands labelled nodes to Cilium
# still there. (The plugin also checks that the config selects the label, and
# not the nodes without it.)
kubectl -n %[3]s get ciliumnodeconfigs.cilium.io %[4]s >/dev/null
if [[ "$(kubectl -n %[3]s get configmap cilium-config -o jsonpath='{.data.custom-cni-conf}')" != true ]]; then
  echo "error: Cilium is not in migration mode: the migration was finalized, and a rollback node by node works only before finalize (docs/rollback.md)" >&2
  exit %[5]d
fi
pool=$(kubectl -n %[3]s get configmap cilium-config -o jsonpath='{.data.cluster-pool-ipv4-cidr}')
pool=${pool//,/ }
`, AnnotationRollbackPhase, AnnotationPhaseTime, ns, o.NodeConfigName, errs.Precondition)

	drainFlags := scriptDrainFlags(o)
	var clear []string
	for _, a := range Annotations() {
		clear = append(clear, a+"-")
	}
	oldCNI := &Plan{}
	if in.OldCNI != "" {
		oldCNI.OldCNI = &detect.CNI{Name: in.OldCNI}
	}
	for _, node := range in.Nodes {
		job := ProbeJob(ns, node, o.ProbeImage, o.ProbeTimeout, "")
		jobYAML, err := yaml.Marshal(job)
		if err != nil {
			return "", err
		}
		jobYAML = cleanJobYAML(jobYAML)
		p(`
########## node %[1]s
phase=$(annotation %[1]s phase)
rollback=$(annotation %[1]s rollback-phase)
if [[ -z "$rollback" && -z "$(annotation %[1]s rollback-was-unschedulable)" &&
  -z "$(kubectl get node %[1]s -o jsonpath='{.metadata.labels.%[2]s}')" ]]; then
  case "$phase" in
  "") rollback=not-migrated ;;
  %[3]s | %[4]s) rollback=%[5]s ;; # the label was never set: only uncordon
  esac
fi
case "$rollback" in
not-migrated)
  echo "node %[1]s: not migrated; nothing to roll back"
  ;;
"")
  # 1. cordon, after recording whether the node was cordoned before the rollback
  # (a node the migration cordoned counts as it was before the migration)
  if [[ -z "$(annotation %[1]s rollback-was-unschedulable)" ]]; then
    was=$(kubectl get node %[1]s -o jsonpath='{.spec.unschedulable}')
    case "$phase" in
    %[3]s | %[4]s | %[6]s | %[7]s | %[8]s | %[9]s)
      migration_was=$(annotation %[1]s was-unschedulable)
      if [[ -n "$migration_was" ]]; then was=$migration_was; fi
      ;;
    esac
    kubectl annotate node %[1]s --overwrite "%[10]s=${was:-false}" %[11]s- %[12]s-
  fi
  kubectl cordon %[1]s
  record_rollback %[1]s %[13]s
  ;&
%[13]s)
  # 2. drain: DaemonSet pods stay, the others are evicted (PodDisruptionBudgets honoured)
  kubectl drain %[1]s %[14]s
  record_rollback %[1]s %[15]s
  ;&
%[15]s)
  # 3. unlabel: the CiliumNodeConfig %[16]s no longer selects the node
  kubectl label node %[1]s %[17]s-
  record_rollback %[1]s %[18]s
  ;&
%[18]s)
  # 4. restart the Cilium agent so that it starts without the CiliumNodeConfig, and wait for the new one
  old=$(kubectl -n %[19]s get pod -l %[20]s --field-selector spec.nodeName=%[1]s -o jsonpath='{.items[*].metadata.uid}')
  kubectl -n %[19]s delete pod -l %[20]s --field-selector spec.nodeName=%[1]s --wait=true
  wait_new_agent %[1]s "$old" %[21]d
  record_rollback %[1]s %[22]s
  ;&
%[22]s)
`, node, strings.ReplaceAll(key, ".", `\.`), PhaseCordoned, PhaseDrained, RollbackVerified,
			PhaseLabelled, PhaseAgentRestarted, PhaseRebooted, PhaseVerified,
			AnnotationRollbackWasUnschedulable, AnnotationBootID, AnnotationReboot,
			RollbackCordoned, strings.Join(drainFlags, " "), RollbackDrained, o.NodeConfigName, key, RollbackUnlabelled,
			ns, AgentLabel, secs(o.AgentTimeout), RollbackAgentRestarted)

		// What the reboot does not restore, said before it (inside the
		// "not rebooted yet" branch, or before the skipped reboot's record).
		indent := "    "
		if o.Reboot == RebootSkip {
			indent = "  "
		}
		var pending strings.Builder
		for _, line := range strings.Split(CNIConfigRestore(node, oldCNI), "\n") {
			fmt.Fprintf(&pending, "%secho %s >&2\n", indent, shell.Quote(line))
		}
		if err := scriptReboot(&b, o, ns, node, "record_rollback", string(RollbackRebooted),
			"Pods left on the node (DaemonSet pods) keep\n  # their Cilium addresses until restarted.", pending.String()); err != nil {
			return "", err
		}

		p(`%[1]s)
  # 6. verify: the agent is Ready, and a probe pod pinned to the node gets an
  # address in the node's podCIDR (the old CNI's range), outside Cilium's pod CIDR
  wait_agent_rebooted %[4]s %[5]d
  kubectl -n %[2]s delete job %[6]s --ignore-not-found --wait=true
  kubectl create -f - <<'EOF'
%[7]sEOF
  if ! kubectl -n %[2]s wait --for=condition=Complete job/%[6]s --timeout=%[8]ds; then
    echo "error: the probe on node %[4]s failed; see kubectl -n %[2]s logs job/%[6]s (the node stays cordoned)" >&2
    exit %[9]d
  fi
  ip=$(kubectl -n %[2]s get pod -l %[10]s=%[6]s -o jsonpath='{.items[0].status.podIP}')
  if in_pool "$ip" $pool; then
    echo "error: the probe pod on node %[4]s got address $ip, inside Cilium's pod CIDR $pool: new pods there still use Cilium's CNI config; on the node, remove %[13]s and restore the old CNI's config (the node stays cordoned)" >&2
    exit %[9]d
  fi
  node_cidrs=
  for cidr in $(kubectl get node %[4]s -o jsonpath='{.spec.podCIDRs[*]}'); do
    if [[ $cidr == *.* ]]; then node_cidrs+=" $cidr"; fi
  done
  if [[ -n "$node_cidrs" ]] && ! in_pool "$ip" $node_cidrs; then
    echo "error: the probe pod on node %[4]s got address $ip, outside the node's podCIDR$node_cidrs, the old CNI's range (the node stays cordoned)" >&2
    exit %[9]d
  fi
  kubectl -n %[2]s delete job %[6]s --wait=true
  record_rollback %[4]s %[11]s
  ;&
%[11]s)
  # 7. uncordon, unless the node was cordoned before the rollback, and remove
  # every cni-migrate.io/ annotation: the node is not migrated any more
  was=$(annotation %[4]s rollback-was-unschedulable)
  if [[ -z "$was" ]]; then was=$(annotation %[4]s was-unschedulable); fi
  if [[ "$was" != true ]]; then
    kubectl uncordon %[4]s
  fi
  kubectl annotate node %[4]s %[12]s
  echo "node %[4]s: rolled back"
  ;;
*)
  echo "error: node %[4]s has an unknown rollback phase $rollback" >&2
  exit 1
  ;;
esac
`, RollbackRebooted, ns, AgentLabel, node, secs(o.AgentTimeout), job.Name, string(jobYAML), secs(o.ProbeTimeout)+30,
			errs.VerificationFailed, JobNameLabel, RollbackVerified, strings.Join(clear, " "), DefaultCNIConfFile)
	}
	return b.String(), nil
}
