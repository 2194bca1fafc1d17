package migrate

import (
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/shell"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

// ScriptInput is what Script needs besides Options.
type ScriptInput struct {
	// Nodes to migrate, in order.
	Nodes []string
	// Namespace is where Cilium runs.
	Namespace string
	// KubectlFlags are passed to every kubectl (--context=..., ...).
	KubectlFlags []string
	// Command is the plugin command line the script stands for.
	Command string
	// OldCNI is the CNI a rollback returns to ("flannel"; RollbackScript
	// only).
	OldCNI string
	// BridgeDeployment and BridgeRules name the policy bridge's
	// Deployment and node rules' DaemonSet in Namespace (Script only):
	// while Cilium enforces policies (not in audit mode), the script
	// refuses to start unless both are Ready, as the plugin does. Empty
	// leaves the check out.
	BridgeDeployment, BridgeRules string
}

// ipSentinel stands for the node's InternalIP in a rendered reboot
// command; the script replaces it with a shell variable.
const ipSentinel = "\x00INTERNAL_IP\x00"

// Script returns a bash script that does what the plugin does for the
// nodes, with plain kubectl commands: each step, the waits, and the phase
// annotations, so that the script and the plugin can resume each other's
// work. It is what --dry-run=client prints.
func Script(o Options, in ScriptInput) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	for _, n := range in.Nodes {
		if err := ValidateNodeName(n); err != nil {
			return "", err
		}
	}
	key, value, _ := nodeconfig.ParseLabel(o.NodeLabel)
	ns := in.Namespace
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	scriptPrologue(&b, in, o.Reboot, "The per-node steps of Cilium's dual-overlay migration, as plain kubectl commands.",
		fmt.Sprintf(`#
# Each step records its phase on the node (annotation %s), and a re-run
# continues after the last recorded phase, as the plugin does: the plugin and
# this script can resume each other's work. Review it, then run it with bash.
`, AnnotationPhase))

	p(`
# Before anything changes: the CiliumNodeConfig that hands labelled nodes to
# Cilium must exist. (The plugin also checks that Cilium is in migration mode,
# that the config selects the label and that workers go before control planes.)
kubectl -n %s get ciliumnodeconfigs.cilium.io %s >/dev/null
pool=$(kubectl -n %s get configmap cilium-config -o jsonpath='{.data.cluster-pool-ipv4-cidr}')
pool=${pool//,/ }
`, ns, o.NodeConfigName, ns)
	if in.BridgeDeployment != "" && in.BridgeRules != "" {
		p(`
# While Cilium enforces network policies (not in audit mode), the pods still
# on the old network need the policy bridge (kubectl cni-migrate
# policy-bridge --deploy): its Deployment and its node rules on every node
# Ready, as the plugin requires.
enforce=$(kubectl -n %[1]s get configmap cilium-config -o jsonpath='{.data.enable-policy}')
audit=$(kubectl -n %[1]s get configmap cilium-config -o jsonpath='{.data.policy-audit-mode}')
if [[ "$enforce" != never && "$audit" != true ]]; then
  bridge=$(kubectl -n %[1]s get deployment %[2]s -o jsonpath='{.status.readyReplicas}' 2>/dev/null || true)
  rules=$(kubectl -n %[1]s get daemonset %[3]s -o jsonpath='{.status.numberReady} {.status.desiredNumberScheduled}' 2>/dev/null || true)
  read -r rules_ready rules_wanted <<<"$rules"
  if [[ "${bridge:-0}" -lt 1 || -z "$rules_wanted" || "$rules_wanted" -eq 0 || "${rules_ready:-0}" -lt "$rules_wanted" ]]; then
    echo "error: Cilium enforces network policies and the policy bridge in %[1]s is not Ready; deploy it first: kubectl cni-migrate policy-bridge --deploy" >&2
    exit 15
  fi
fi
`, ns, in.BridgeDeployment, in.BridgeRules)
	}

	drainFlags := scriptDrainFlags(o)

	for _, node := range in.Nodes {
		job := ProbeJob(ns, node, o.ProbeImage, o.ProbeTimeout, "")
		jobYAML, err := yaml.Marshal(job)
		if err != nil {
			return "", err
		}
		jobYAML = cleanJobYAML(jobYAML)
		p(`
########## node %[1]s
case "$(annotation %[1]s phase)" in
"")
  # 1. cordon, after recording whether the node was cordoned before
  if [[ -z "$(annotation %[1]s was-unschedulable)" ]]; then
    was=$(kubectl get node %[1]s -o jsonpath='{.spec.unschedulable}')
    kubectl annotate node %[1]s --overwrite "%[2]s=${was:-false}" %[3]s- %[4]s-
  fi
  kubectl cordon %[1]s
  record %[1]s %[5]s
  ;&
%[5]s)
  # 2. drain: DaemonSet pods stay, the others are evicted (PodDisruptionBudgets honoured)
  kubectl drain %[1]s %[6]s
  record %[1]s %[7]s
  ;&
%[7]s)
  # 3. label: the CiliumNodeConfig %[8]s now selects the node
  kubectl label node %[1]s %[9]s --overwrite
  record %[1]s %[10]s
  ;&
%[10]s)
  # 4. restart the Cilium agent so that it reads the CiliumNodeConfig, and wait for the new one
  old=$(kubectl -n %[11]s get pod -l %[12]s --field-selector spec.nodeName=%[1]s -o jsonpath='{.items[*].metadata.uid}')
  kubectl -n %[11]s delete pod -l %[12]s --field-selector spec.nodeName=%[1]s --wait=true
  wait_new_agent %[1]s "$old" %[13]d
  record %[1]s %[14]s
  ;&
%[14]s)
`, node, AnnotationWasUnschedulable, AnnotationBootID, AnnotationReboot, PhaseCordoned, strings.Join(drainFlags, " "),
			PhaseDrained, o.NodeConfigName, key+"="+value, PhaseLabelled, ns, AgentLabel, secs(o.AgentTimeout), PhaseAgentRestarted)

		if err := scriptReboot(&b, o, ns, node, "record", string(PhaseRebooted),
			"The old CNI's interfaces and iptables rules stay\n  # on the node until it next reboots; pods it runs keep their old addresses until restarted.", ""); err != nil {
			return "", err
		}

		p(`%[1]s)
  # 6. verify: the agent is Ready, and a probe pod pinned to the node gets an
  # address in Cilium's pod CIDR and reaches the API server (the plugin also
  # waits for the old CNI's pod on the node to be Ready and has the probe
  # reach the old network; this script, written without reading the
  # cluster's CNI, does not: check both before the uncordon)
  wait_agent_rebooted %[4]s %[5]d
  kubectl -n %[2]s delete job %[6]s --ignore-not-found --wait=true
  kubectl create -f - <<'EOF'
%[7]sEOF
  if ! kubectl -n %[2]s wait --for=condition=Complete job/%[6]s --timeout=%[8]ds; then
    echo "error: the probe on node %[4]s failed; see kubectl -n %[2]s logs job/%[6]s (the node stays cordoned)" >&2
    exit %[9]d
  fi
  ip=$(kubectl -n %[2]s get pod -l %[10]s=%[6]s -o jsonpath='{.items[0].status.podIP}')
  if ! in_pool "$ip" $pool; then
    echo "error: the probe pod on node %[4]s got address $ip, outside Cilium's pod CIDR $pool (the node stays cordoned)" >&2
    exit %[9]d
  fi
  kubectl -n %[2]s delete job %[6]s --wait=true
  record %[4]s %[11]s
  ;&
%[11]s)
  # 7. uncordon, unless the node was cordoned before the migration
  if [[ "$(annotation %[4]s was-unschedulable)" != true ]]; then
    kubectl uncordon %[4]s
  fi
  record %[4]s %[12]s
  echo "node %[4]s: migrated"
  ;;
%[12]s)
  echo "node %[4]s: already migrated"
  ;;
*)
  echo "error: node %[4]s has an unknown phase $(annotation %[4]s phase)" >&2
  exit 1
  ;;
esac
`, PhaseRebooted, ns, AgentLabel, node, secs(o.AgentTimeout), job.Name, string(jobYAML), secs(o.ProbeTimeout)+30,
			errs.VerificationFailed, JobNameLabel, PhaseVerified, PhaseDone)
	}
	return b.String(), nil
}

// scriptRebootCommand renders the reboot command of a node as a shell
// command line; a {{.InternalIP}} becomes "$node_ip", looked up by the script.
func scriptRebootCommand(t *RebootTemplate, node string) (string, bool, error) {
	argv, err := t.argv(RebootTarget{Node: node, InternalIP: ipSentinel})
	if err != nil {
		return "", false, err
	}
	if err := ValidateNodeName(node); err != nil {
		return "", false, err
	}
	needsIP := false
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = shell.Join([]string{a})
		if i > 0 {
			words[i] = shell.Quote(a)
		}
		if strings.Contains(a, ipSentinel) {
			// Inside single quotes: close them, insert the variable, reopen;
			// then drop the empty quotes left at either end.
			needsIP = true
			w := strings.ReplaceAll(shell.Quote(a), ipSentinel, `'"$node_ip"'`)
			words[i] = strings.TrimSuffix(strings.TrimPrefix(w, "''"), "''")
		}
	}
	line := strings.Join(words, " ")
	return line, needsIP, nil
}

// cleanJobYAML drops the empty fields yaml.Marshal writes for a typed
// object (creationTimestamp: null, status: {}, resources: {}).
func cleanJobYAML(b []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(l)
		if t == "creationTimestamp: null" || t == "status: {}" || t == "resources: {}" {
			continue
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
}

func secs(d time.Duration) int { return int(d.Round(time.Second).Seconds()) }

// durationFlag renders a duration as kubectl flags take it (0s = forever).
func durationFlag(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	return d.String()
}

// scriptPrologue writes the start of a script: the header (title, the
// command it stands for, explain), the kubectl wrapper that picks the
// cluster, and the shell functions the steps use.
func scriptPrologue(b *strings.Builder, in ScriptInput, reboot, title, explain string) {
	ns := in.Namespace
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }

	p("#!/usr/bin/env bash\n")
	p("# %s\n", title)
	if in.Command != "" {
		p("# Generated by: %s\n", in.Command)
	}
	p("%sset -euo pipefail\n", explain)
	if len(in.KubectlFlags) > 0 {
		p("\n# Every kubectl below talks to the cluster chosen when the script was generated.\n")
		var q []string
		for _, f := range in.KubectlFlags {
			q = append(q, shell.Quote(f))
		}
		p("kubectl() { command kubectl %s \"$@\"; }\n", strings.Join(q, " "))
	}
	p(`
# annotation NODE KEY: the value of a cni-migrate.io/ annotation of NODE ("" if unset)
annotation() { kubectl get node "$1" -o jsonpath="{.metadata.annotations.cni-migrate\.io/$2}"; }

# record NODE PHASE [ANNOTATION=VALUE...]: record that NODE completed PHASE
record() {
  local node=$1 phase=$2
  shift 2
  kubectl annotate node "$node" --overwrite "%[1]s=$phase" "%[2]s=$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)" "$@"
}

# wait_new_agent NODE OLD_UIDS SECONDS: wait until a Cilium agent pod on NODE
# whose UID is not in OLD_UIDS is Ready
wait_new_agent() {
  local node=$1 old=" $2 " deadline=$((SECONDS + $3)) pod
  while ((SECONDS < deadline)); do
    for pod in $(kubectl -n %[3]s get pod -l %[4]s --field-selector spec.nodeName="$node" \
        -o jsonpath='{range .items[*]}{.metadata.uid}/{.metadata.name}{"\n"}{end}'); do
      if [[ $old != *" ${pod%%%%/*} "* ]] &&
        kubectl -n %[3]s wait --for=condition=Ready "pod/${pod#*/}" --timeout="$((deadline - SECONDS + 1))s"; then
        return 0
      fi
    done
    sleep 2
  done
  echo "error: the Cilium agent on node $node is not Ready after $3s" >&2
  exit %[5]d
}

# wait_agent_rebooted NODE SECONDS: wait until the Cilium agent on NODE is
# Ready in another container than the one recorded before the reboot (the
# agent pod shows the old boot's Ready until the kubelet reports on it
# again); any Ready agent when none was recorded
wait_agent_rebooted() {
  local node=$1 old deadline=$((SECONDS + $2)) id ready
  old=$(annotation "$node" agent-container)
  while ((SECONDS < deadline)); do
    while read -r ready id; do
      if [[ $ready == True && ( -z $old || $id != "$old" ) ]]; then return 0; fi
    done < <(kubectl -n %[3]s get pod -l %[4]s --field-selector spec.nodeName="$node" \
      -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status} {.status.containerStatuses[?(@.name=="cilium-agent")].containerID}{"\n"}{end}')
    sleep 2
  done
  echo "error: the Cilium agent on node $node is not Ready after $2s" >&2
  exit %[5]d
}

# wait_reboot NODE OLD_BOOT_ID SECONDS: wait until NODE reports another bootID
wait_reboot() {
  local node=$1 old=$2 deadline=$((SECONDS + $3))
  until [[ "$(kubectl get node "$node" -o jsonpath='{.status.nodeInfo.bootID}')" != "$old" ]]; do
    if ((SECONDS >= deadline)); then
      echo "error: node $node did not reboot within $3s (bootID still $old)" >&2
      exit %[6]d
    fi
    sleep 5
  done
}

# in_pool IP CIDR...: whether the IPv4 address IP is inside one of the CIDRs
ip2int() { local IFS=.; set -- $1; echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4)); }
in_pool() {
  local ip=$1 cidr net bits mask
  shift
  for cidr in "$@"; do
    net=${cidr%%/*} bits=${cidr#*/}
    mask=$(((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF))
    if ((($(ip2int "$ip") & mask) == ($(ip2int "$net") & mask))); then return 0; fi
  done
  return 1
}
`, AnnotationPhase, AnnotationPhaseTime, ns, AgentLabel, errs.AgentNotReady, errs.RebootFailed)
	if reboot == RebootCommand {
		p(markNotReadyFunc, ReasonRebooting)
	}
}

// markNotReadyFunc is the shell function that does what markNotReady does,
// for a script whose reboot step runs a command.
const markNotReadyFunc = `
# mark_not_ready NODE: give the pods on NODE that are Running and Ready, and
# not on the host's network, a Ready=False condition, so that Services stop
# sending them new connections before the reboot takes their addresses away
# (the kubelet writes their status again when the node is back)
mark_not_ready() {
  local ns name ready host
  kubectl get pods -A --field-selector spec.nodeName="$1" \
      -o jsonpath='{range .items[?(@.status.phase=="Running")]}{.metadata.namespace} {.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.spec.hostNetwork}{"\n"}{end}' |
    while read -r ns name ready host; do
      [[ $ready == True && $host != true ]] || continue
      kubectl -n "$ns" patch pod "$name" --subresource=status --type=strategic >/dev/null \
        -p '{"status":{"conditions":[{"type":"Ready","status":"False","reason":"%s","message":"kubectl cni-migrate reboots node '"$1"'"}]}}' ||
        echo "warning: could not mark pod $ns/$name NotReady; Services send it new connections until Kubernetes sees node $1 down" >&2
    done
}
`

// scriptDrainFlags are the kubectl drain flags of the options.
func scriptDrainFlags(o Options) []string {
	drainFlags := []string{"--ignore-daemonsets", "--timeout=" + durationFlag(o.DrainTimeout)}
	if o.GracePeriodSeconds >= 0 {
		drainFlags = append(drainFlags, fmt.Sprintf("--grace-period=%d", o.GracePeriodSeconds))
	}
	if o.DeleteEmptyDirData {
		drainFlags = append(drainFlags, "--delete-emptydir-data")
	}
	if o.DisableEviction {
		drainFlags = append(drainFlags, "--disable-eviction")
	}
	if o.Force {
		drainFlags = append(drainFlags, "--force")
	}
	return drainFlags
}

// scriptReboot writes step 5, the reboot, of a node. record is the shell
// function that records phase; skipNote says (in a comment) what skipping
// the reboot leaves; pending is run (indented lines) before a reboot that
// has not happened yet.
func scriptReboot(b *strings.Builder, o Options, ns, node, record, phase, skipNote, pending string) error {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	switch o.Reboot {
	case RebootSkip:
		p(`  # 5. reboot: skipped on request. %[6]s
%[7]s  %[5]s %[1]s %[2]s %[3]s=%[4]s
  ;&
`, node, phase, AnnotationReboot, RebootSkip, record, skipNote, pending)
	default:
		p(`  # 5. reboot: record the bootID and the agent's container, reboot, wait for
  # another bootID and Ready
  boot=$(annotation %[1]s boot-id)
  if [[ -z "$boot" ]]; then
    boot=$(kubectl get node %[1]s -o jsonpath='{.status.nodeInfo.bootID}')
    agent=$(kubectl -n %[6]s get pod -l %[7]s --field-selector spec.nodeName=%[1]s -o jsonpath='{.items[*].status.containerStatuses[?(@.name=="%[8]s")].containerID}')
    agent=${agent%%%% *}
    kubectl annotate node %[1]s --overwrite "%[2]s=$boot" ${agent:+"%[9]s=$agent"} %[3]s=%[4]s
  fi
  if [[ "$(kubectl get node %[1]s -o jsonpath='{.status.nodeInfo.bootID}')" == "$boot" ]]; then
%[5]s`, node, AnnotationBootID, AnnotationReboot, o.Reboot, pending, ns, AgentLabel, AgentContainerName, AnnotationAgentContainer)
		if o.Reboot == RebootCommand {
			cmdline, needsIP, err := scriptRebootCommand(o.RebootCommand, node)
			if err != nil {
				return err
			}
			if needsIP {
				p("    node_ip=$(kubectl get node %s -o jsonpath='{.status.addresses[?(@.type==\"InternalIP\")].address}')\n", node)
			}
			p("    mark_not_ready %s\n", node)
			p("    %s || echo \"the reboot command exited $?; waiting for the node anyway\" >&2\n", cmdline)
			p("    [[ \"$(kubectl get node %[1]s -o jsonpath='{.status.nodeInfo.bootID}')\" != \"$boot\" ]] || mark_not_ready %[1]s\n", node)
		} else {
			p("    echo \"reboot node %s now (e.g. ssh %s sudo systemctl reboot); waiting for it\" >&2\n", node, node)
		}
		p(`  fi
  wait_reboot %[1]s "$boot" %[2]d
  kubectl wait --for=condition=Ready node/%[1]s --timeout=%[2]ds
  %[6]s %[1]s %[3]s %[4]s=%[5]s
  ;&
`, node, secs(o.RebootTimeout), phase, AnnotationReboot, o.Reboot, record)
	}
	return nil
}
