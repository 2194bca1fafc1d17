// Package errs holds the plugin's error type and its documented exit codes.
//
// Every error a user can cause or fix carries an exit code and a fix: the
// command layer prints it as one line, "error: <what>; <fix>", and main exits
// with the code. Library packages return these errors; only main exits.
package errs

import (
	"errors"
	"fmt"
	"strings"
)

// Exit codes. They are part of the plugin's interface: scripts depend on them,
// docs/exit-codes.md lists them, and a test keeps the two in step.
const (
	// OK: the command did what it was asked.
	OK = 0
	// Internal: an unexpected error (a bug, or something not classified).
	Internal = 1
	// Usage: a flag or argument is invalid (bad CIDR, port, version, values file).
	Usage = 2
	// ChecksFailed: `plan` ran and at least one check FAILed.
	ChecksFailed = 3
	// Unsafe: the input is valid but unsafe for this cluster (a CIDR that
	// overlaps the cluster's networks, a tunnel port the old CNI uses).
	Unsafe = 4
	// Unreachable: the API server did not answer, or answered with an error
	// that is not about permissions.
	Unreachable = 5
	// Unsupported: the cluster is not one this version can migrate (no
	// supported CNI found, several found, or Cilium already owns the network).
	Unsupported = 6
	// IO: a local file or directory could not be read or written.
	IO = 7
	// Forbidden: the credentials were rejected or lack a permission.
	Forbidden = 8
	// DrainBlocked: draining a node did not finish within --timeout, most
	// often because a PodDisruptionBudget allows no eviction; the node
	// stays cordoned and its phase recorded.
	DrainBlocked = 10
	// AgentNotReady: the Cilium agent on a node was not Ready in time.
	AgentNotReady = 11
	// VerificationFailed: the probe pod on a node did not get an address
	// from the network it should be on now (node: Cilium's pod CIDR;
	// rollback: the old CNI's, outside Cilium's) or could not reach the API
	// server; the node stays cordoned.
	VerificationFailed = 12
	// RebootFailed: the reboot command failed or the node did not come
	// back (new bootID, Ready) in time.
	RebootFailed = 13
	// WaitingForReboot: --reboot=manual (node, rollback) recorded the node's
	// bootID and waits for the user to reboot it; run the command again
	// afterwards.
	WaitingForReboot = 14
	// Precondition: the cluster or node is not ready for this step of the
	// migration (Cilium not in migration mode, CiliumNodeConfig missing or
	// not selecting the node, a control-plane node before the workers, a
	// rollback after finalize or a node being rolled back).
	Precondition = 15
	// WaitingForUpgrade: finalize wrote values-final.yaml and waits for the
	// helm upgrade the user runs; run finalize again afterwards.
	WaitingForUpgrade = 16
	// HelmFailed: the helm upgrade finalize ran (--yes) failed.
	HelmFailed = 17
	// Locked: another run holds the migration lock, or this one lost it.
	Locked = 18
	// ConnectivityFailed: a connectivity check failed (`connectivity`), or
	// the matrix was not green for the settle period within the gate's
	// timeout (`rollout`/`node --gate connectivity`: the nodes not yet begun
	// are untouched).
	ConnectivityFailed = 19
	// SweepFailed: finalize --remove-old-cni could not remove what the old
	// CNI left on a node (its Job failed); the run is recorded and finalize
	// again sweeps again.
	SweepFailed = 20
	// Interrupted: the user stopped the command (Ctrl-C); what was done is
	// recorded and a re-run continues.
	Interrupted = 130
)

// Error is an error with an exit code and a fix for the user.
type Error struct {
	Code int
	// Msg says what is wrong, without a trailing period.
	Msg string
	// Fix says what the user can do about it, without a trailing period.
	Fix string
	// Err is the underlying cause, if any (not printed; kept for errors.Is/As).
	Err error
}

func (e *Error) Error() string {
	if e.Fix == "" {
		return e.Msg
	}
	return e.Msg + "; " + e.Fix
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with the given code, message and fix.
func New(code int, msg, fix string) *Error {
	return &Error{Code: code, Msg: msg, Fix: fix}
}

// Newf is New with a formatted message.
func Newf(code int, fix, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...), Fix: fix}
}

// Wrap returns an Error that keeps err as its cause.
func Wrap(code int, err error, msg, fix string) *Error {
	return &Error{Code: code, Msg: msg, Fix: fix, Err: err}
}

// Code returns the exit code for err: the code of the first *Error in its
// chain, OK for nil, and Internal for anything else.
func Code(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ExitCode describes one exit code.
type ExitCode struct {
	Code    int
	Name    string
	Meaning string
}

// Codes lists the exit codes with their meaning, for docs and tests.
func Codes() []ExitCode {
	return []ExitCode{
		{OK, "ok", "the command did what it was asked"},
		{Internal, "internal", "an unexpected error; please report it"},
		{Usage, "usage", "a flag or argument is invalid (CIDR, port, Cilium version, values file, output format)"},
		{ChecksFailed, "checks-failed", "`plan` found at least one FAIL"},
		{Unsafe, "unsafe", "the input is valid but unsafe for this cluster (overlapping CIDR, clashing tunnel port, `values --values` that would break the migration; `--allow-unsafe-values` writes those anyway)"},
		{Unreachable, "unreachable", "the API server did not answer in time or returned an error"},
		{Unsupported, "unsupported", "no supported CNI was found, several were, or Cilium already owns the network"},
		{IO, "io", "a local file or directory could not be read or written"},
		{Forbidden, "forbidden", "the credentials were rejected or lack a permission the command needs"},
		{DrainBlocked, "drain-blocked", "a drain did not finish: a PodDisruptionBudget allowed no eviction within --timeout, or pods need --delete-emptydir-data or --force; the node stays cordoned (`--strategy in-place`: the same for the evictions of a namespace; the namespaces before it are done)"},
		{AgentNotReady, "agent-not-ready", "the restarted Cilium agent on a node was not Ready within --agent-timeout (`policy-bridge --deploy`: the policy bridge or its node rules were not Ready within --timeout)"},
		{VerificationFailed, "verification-failed", "the probe pod on the node got an address from the wrong network (node: not in Cilium's pod CIDR; rollback: not back in the old CNI's) or could not reach the API server or the old network, or the old CNI's pod on the node was not Ready again within --agent-timeout, or the node was not Ready for its verification within --reboot-timeout (or went NotReady during it); the node stays cordoned (`--strategy in-place`: a restarted pod got an address outside Cilium's pod CIDR, or the replacements did not run again within --restart-timeout)"},
		{RebootFailed, "reboot-failed", "the reboot command failed or the node did not come back (new bootID, Ready) within --reboot-timeout"},
		{WaitingForReboot, "waiting-for-reboot", "`node` or `rollback` with `--reboot=manual` waits for you to reboot the node; run the same command again afterwards"},
		{Precondition, "precondition", "the cluster is not ready for this step: Cilium not in migration mode (`--strategy in-place`: in migration mode, or a node without a Ready agent), CiliumNodeConfig missing or not selecting the node, node missing, control-plane node before the workers, rollback after finalize, node being rolled back, finalize while Calico policies have no Cilium translation in the cluster (`calico-policies --apply`, or `--accept-untranslated`), node or rollout while Cilium enforces policies and the policy bridge does not run (`policy-bridge --deploy`), policy-report while Cilium computes no policy verdicts"},
		{WaitingForUpgrade, "waiting-for-upgrade", "finalize wrote values-final.yaml; run the helm upgrade it printed, then finalize again"},
		{HelmFailed, "helm-failed", "the helm upgrade finalize ran with --yes failed, or Cilium's Helm release is left pending by an operation that did not finish and is not one finalize can roll back itself (the error names the helm rollback to run); fix it and run finalize again"},
		{Locked, "locked", "another run (node, rollout or rollback) holds the migration lock, the Lease kube-system/cni-migrate-rollout, or this run lost it to another and stopped before its next change; wait for it, or --force-unlock a dead one"},
		{ConnectivityFailed, "connectivity-failed", "a connectivity check failed (`connectivity`), or the matrix did not stay green for --gate-settle within --gate-timeout (`rollout`/`node --gate connectivity`; the batch is recorded, the nodes not yet begun untouched)"},
		{SweepFailed, "sweep-failed", "`finalize --remove-old-cni` removed the old CNI's objects but could not remove what it left on a node (its interfaces, routes, iptables chains and ipsets, CNI files: the node's sweep Job failed or did not end); run finalize again, or remove them by hand as the error says"},
		{Interrupted, "interrupted", "stopped by Ctrl-C or SIGTERM; run the same command again to continue"},
	}
}

// Name returns the name of an exit code ("drain-blocked"), "internal" for
// a code that is not one of Codes.
func Name(code int) string {
	for _, c := range Codes() {
		if c.Code == code {
			return c.Name
		}
	}
	return "internal"
}

// OneLine folds s (an error's text, often from the API server or a
// command) onto one line: its words with single spaces.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
