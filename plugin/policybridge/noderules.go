package policybridge

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
)

// NodeRules are the rules a node still on the old CNI needs while the
// networks coexist (docs/policy-continuity.md, measured on the lab):
//
//   - nat POSTROUTING, first: -s OLD -d CILIUM -j RETURN, so that no rule
//     (Cilium's host->cluster masquerade, flannel's --ip-masq, Calico's
//     natOutgoing) rewrites an old pod's address on its way to a Cilium
//     pod: Cilium then knows the client by its CiliumEndpoint;
//   - with Felix (Calico's felix enforces policies on the node: Calico,
//     Canal), mangle PREROUTING: -i cilium_host -d OLD -j MARK --set-mark
//     0, so that felix does not read Cilium's identity mark, put on what
//     Cilium's tunnel delivers to the host, as its own mark bits;
//   - with Felix, filter FORWARD, first: -j cali-FORWARD, so that felix's
//     policies see the traffic between the networks before Cilium's
//     CILIUM_FORWARD accepts everything to and from cilium_host (Cilium's
//     agent puts its chain first whenever it starts; felix puts its own
//     back only at its next refresh: the lab let denied flows through for
//     70 s after an agent restart on a Calico node);
//   - with Felix, felix's verdict required of every new connection between
//     an old pod (a cali interface) and Cilium's network, whatever the
//     order of the FORWARD chains: mangle FORWARD marks such a packet
//     (GuardMark), and mangle POSTROUTING drops it when felix's accept bit
//     is not set, then clears the mark. Felix sets its accept bit on every
//     forwarded packet its policies allow or that reaches the end of
//     FORWARD (felix's own rules at the end of FORWARD mark the rest for its
//     mangle POSTROUTING chain), and drops what they deny; a packet without
//     the bit was accepted before felix's chain ran (Cilium's CILIUM_FORWARD
//     in the moment between an agent start and the jump above coming back:
//     the lab's last denied flows let through, 2026-12-07).
type NodeRules struct {
	Old, Cilium []netip.Prefix
	Felix       bool
	// FelixAcceptMark is felix's accept bit: the lowest bit of its
	// iptablesMarkMask (0: felix's default mask 0xffff0000, bit 0x10000).
	FelixAcceptMark uint32
	// Interval is how often, in seconds, the rules are checked (an agent
	// restart puts Cilium's chains first again).
	Interval int
}

// Comments tag the rules, so that they are found and removed.
const (
	commentNoNAT      = "cni-migrate:no-nat"
	commentClearMark  = "cni-migrate:clear-cilium-mark"
	commentFelixFirst = "cni-migrate:felix-first"
	commentGuardMark  = "cni-migrate:felix-verdict-mark"
	commentGuardDrop  = "cni-migrate:felix-verdict-drop"
	commentGuardClear = "cni-migrate:felix-verdict-clear"
)

// GuardMark is the packet mark bit the node rules put on a new connection
// between the networks in mangle FORWARD and take off in mangle
// POSTROUTING: a bit neither felix (its mask, 0xffff0000 by default),
// kube-proxy (0x4000, 0x8000) nor Cilium (0x0f00 and 0x1000 for its magic
// marks, upper bits for identities) uses.
const GuardMark = 0x2000

// DefaultFelixAcceptMark is felix's accept bit with its default
// iptablesMarkMask (0xffff0000).
const DefaultFelixAcceptMark = 0x10000

// FelixAcceptBit is the accept bit felix allocates from a mark mask (the
// lowest set bit; felix takes its bits from the bottom of the mask, the
// accept bit first), DefaultFelixAcceptMark for 0.
func FelixAcceptBit(mask uint32) uint32 {
	if mask == 0 {
		return DefaultFelixAcceptMark
	}
	return mask & -mask
}

// Script is a bash script that keeps the rules on the iptables backend the
// node uses (the one with more nat rules, as kube-proxy's wrapper decides),
// re-checked every Interval seconds, and removes them when it is stopped
// (SIGTERM, SIGINT). With the argument "remove" it only removes them.
func (r NodeRules) Script() string {
	// Each rule's comment is its own (TAG:N), by which the script finds it
	// in iptables -S, however the backend prints the rest.
	var nat, mangle, guardMark []string
	// IPv4 only: the script drives iptables, not ip6tables (dual-stack
	// pod networks keep their IPv6 NAT as it is).
	for _, o := range r.Old {
		if !o.Addr().Is4() {
			continue
		}
		for _, c := range r.Cilium {
			if !c.Addr().Is4() {
				continue
			}
			nat = append(nat, fmt.Sprintf("-s %s -d %s -m comment --comment %s:%d -j RETURN", o, c, commentNoNAT, len(nat)+1))
			if r.Felix {
				guardMark = append(guardMark,
					fmt.Sprintf("-i cali+ -s %s -d %s -m conntrack --ctstate NEW -m comment --comment %s:%d -j MARK --set-xmark %#x/%#x", o, c, commentGuardMark, len(guardMark)+1, GuardMark, GuardMark),
					fmt.Sprintf("-o cali+ -s %s -d %s -m conntrack --ctstate NEW -m comment --comment %s:%d -j MARK --set-xmark %#x/%#x", c, o, commentGuardMark, len(guardMark)+2, GuardMark, GuardMark))
			}
		}
		if r.Felix {
			// What Cilium's tunnel delivers, and (the in-place method's
			// nodes hold both networks) what a Cilium pod sends to an old
			// pod on its own node.
			mangle = append(mangle,
				fmt.Sprintf("-i cilium_host -d %s -m comment --comment %s:%d -j MARK --set-mark 0", o, commentClearMark, len(mangle)+1),
				fmt.Sprintf("-i lxc+ -d %s -m comment --comment %s:%d -j MARK --set-mark 0", o, commentClearMark, len(mangle)+2))
		}
	}
	var forward, guardPost []string
	if r.Felix {
		forward = append(forward, fmt.Sprintf("-m comment --comment %s:1 -j cali-FORWARD", commentFelixFirst))
		accept := cmp.Or(r.FelixAcceptMark, DefaultFelixAcceptMark)
		if len(guardMark) > 0 {
			guardPost = append(guardPost,
				fmt.Sprintf("-m mark --mark %#x/%#x -m mark ! --mark %#x/%#x -m comment --comment %s:1 -j DROP", GuardMark, GuardMark, accept, accept, commentGuardDrop),
				fmt.Sprintf("-m mark --mark %#x/%#x -m comment --comment %s:1 -j MARK --set-xmark 0x0/%#x", GuardMark, GuardMark, commentGuardClear, GuardMark))
		}
	}
	interval := r.Interval
	if interval <= 0 {
		interval = 5
	}
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/bash
# kubectl cni-migrate: the rules of a node still on the old CNI while it and
# Cilium coexist (docs/policy-continuity.md). Kept every %d s; removed on
# SIGTERM or SIGINT, or by running this script with the argument "remove".
set -u
NAT_RULES=(
`, interval)
	for _, l := range nat {
		fmt.Fprintf(&b, "  %q\n", l)
	}
	b.WriteString(")\nMANGLE_RULES=(\n")
	for _, l := range mangle {
		fmt.Fprintf(&b, "  %q\n", l)
	}
	b.WriteString(")\nFORWARD_RULES=(\n")
	for _, l := range forward {
		fmt.Fprintf(&b, "  %q\n", l)
	}
	// GUARD_POST holds the drop first, then the clearing of the mark.
	b.WriteString(")\nGUARD_MARK_RULES=(\n")
	for _, l := range guardMark {
		fmt.Fprintf(&b, "  %q\n", l)
	}
	b.WriteString(")\nGUARD_POST_RULES=(\n")
	for _, l := range guardPost {
		fmt.Fprintf(&b, "  %q\n", l)
	}
	fmt.Fprintf(&b, `)
INTERVAL=%d

# felix_first puts a jump to felix's chain before Cilium's CILIUM_FORWARD
# when Cilium's came first. Felix's own jump will do (felix puts it first
# at each refresh, and then removes ours).
felix_first() {
  local rule rules felix cilium
  for rule in "${FORWARD_RULES[@]}"; do
    rules=$($IPT -t filter -S FORWARD 2>/dev/null | grep '^-A')
    felix=$(grep -n -- '-j cali-FORWARD' <<<"$rules" | head -1 | cut -d: -f1)
    cilium=$(grep -n -- '-j CILIUM_FORWARD' <<<"$rules" | head -1 | cut -d: -f1)
    if [ -n "$cilium" ] && { [ -z "$felix" ] || [ "$felix" -gt "$cilium" ]; }; then
      $IPT -t filter -I FORWARD 1 $rule && echo "$(date -u +%%FT%%TZ) filter FORWARD: inserted at 1: $rule"
    fi
  done
}

# guard keeps felix's verdict required between the networks: the drop of
# what lacks felix's accept bit before the clearing of the mark in mangle
# POSTROUTING (the drop inserted first, the clearing appended), then the
# marking in mangle FORWARD.
guard() {
  local rule
  if [ ${#GUARD_POST_RULES[@]} -eq 2 ]; then
    $IPT -t mangle -C POSTROUTING ${GUARD_POST_RULES[0]} 2>/dev/null || { $IPT -t mangle -I POSTROUTING 1 ${GUARD_POST_RULES[0]} && echo "$(date -u +%%FT%%TZ) mangle POSTROUTING: inserted at 1: ${GUARD_POST_RULES[0]}"; }
    $IPT -t mangle -C POSTROUTING ${GUARD_POST_RULES[1]} 2>/dev/null || { $IPT -t mangle -A POSTROUTING ${GUARD_POST_RULES[1]} && echo "$(date -u +%%FT%%TZ) mangle POSTROUTING: appended: ${GUARD_POST_RULES[1]}"; }
  fi
  for rule in "${GUARD_MARK_RULES[@]}"; do
    $IPT -t mangle -C FORWARD $rule 2>/dev/null || { $IPT -t mangle -A FORWARD $rule && echo "$(date -u +%%FT%%TZ) mangle FORWARD: appended: $rule"; }
  done
}

# The backend with more nat rules is the one the node's networking uses.
backend() {
  local nft legacy
  nft=$(iptables-nft-save -t nat 2>/dev/null | grep -c '^-A')
  legacy=$(iptables-legacy-save -t nat 2>/dev/null | grep -c '^-A')
  if [ "${legacy:-0}" -gt "${nft:-0}" ]; then echo iptables-legacy; else echo iptables-nft; fi
}

# ensure TABLE CHAIN RULES...: each rule once, and all of them first in the
# chain, in order (inserted again when anything came before them).
ensure() {
  local table=$1 chain=$2; shift 2
  local i=1 rule
  for rule in "$@"; do
    local tag=${rule##*--comment }; tag=${tag%%%% *}
    if ! $IPT -t "$table" -S "$chain" 2>/dev/null | grep '^-A' | sed -n "${i}p" | grep -qF -- "$tag"; then
      while $IPT -t "$table" -D "$chain" $rule 2>/dev/null; do :; done
      $IPT -t "$table" -I "$chain" "$i" $rule && echo "$(date -u +%%FT%%TZ) $table $chain: inserted at $i: $rule"
    fi
    i=$((i + 1))
  done
}

remove() {
  local rule
  for rule in "${NAT_RULES[@]}"; do while $IPT -t nat -D POSTROUTING $rule 2>/dev/null; do :; done; done
  for rule in "${MANGLE_RULES[@]}"; do while $IPT -t mangle -D PREROUTING $rule 2>/dev/null; do :; done; done
  for rule in "${FORWARD_RULES[@]}"; do while $IPT -t filter -D FORWARD $rule 2>/dev/null; do :; done; done
  for rule in "${GUARD_MARK_RULES[@]}"; do while $IPT -t mangle -D FORWARD $rule 2>/dev/null; do :; done; done
  for rule in "${GUARD_POST_RULES[@]}"; do while $IPT -t mangle -D POSTROUTING $rule 2>/dev/null; do :; done; done
  echo "$(date -u +%%FT%%TZ) rules removed ($IPT)"
}

IPT=$(backend)
if [ "${1:-}" = remove ]; then remove; exit 0; fi
trap 'remove; exit 0' TERM INT
# With the nft backend, a change of the nat POSTROUTING or filter FORWARD
# chains by someone else (Cilium's agent putting its chains first as it
# starts) wakes the loop at once instead of at its next round; Cilium's
# jump put first in filter FORWARD gets felix's put back before it from
# here, without waiting for the loop.
trap ':' USR1
if [ "$IPT" = iptables-nft ] && command -v xtables-monitor >/dev/null; then
  main=$$
  unbuffered=""
  command -v stdbuf >/dev/null && unbuffered="stdbuf -oL"
  $unbuffered xtables-monitor -e -4 2>/dev/null | while read -r line; do
    case "$line" in
      *cni-migrate:*) ;;
      *"-t filter -A FORWARD"*CILIUM_FORWARD*) felix_first; kill -USR1 "$main" 2>/dev/null ;;
      *"-t nat -A POSTROUTING"*|*"-t filter -A FORWARD"*) kill -USR1 "$main" 2>/dev/null ;;
    esac
  done &
fi
echo "$(date -u +%%FT%%TZ) keeping ${#NAT_RULES[@]} nat, $((${#MANGLE_RULES[@]} + ${#GUARD_MARK_RULES[@]} + ${#GUARD_POST_RULES[@]})) mangle and ${#FORWARD_RULES[@]} filter rules with $IPT"
while :; do
  felix_first
  guard
  ensure nat POSTROUTING "${NAT_RULES[@]}"
  # Anywhere in mangle PREROUTING will do (felix keeps its own jump first).
  for rule in "${MANGLE_RULES[@]}"; do
    $IPT -t mangle -C PREROUTING $rule 2>/dev/null || { $IPT -t mangle -A PREROUTING $rule && echo "$(date -u +%%FT%%TZ) mangle PREROUTING: appended: $rule"; }
  done
  sleep "$INTERVAL" & wait $!
done
`, interval)
	return b.String()
}
