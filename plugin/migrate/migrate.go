package migrate

import (
	"context"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

// Defaults of Options.
const (
	DefaultDrainTimeout  = 5 * time.Minute
	DefaultAgentTimeout  = 3 * time.Minute
	DefaultRebootTimeout = 10 * time.Minute
	DefaultProbeTimeout  = 2 * time.Minute
	// AgentLabel selects the Cilium agent pods.
	AgentLabel = "k8s-app=cilium"
	// AgentContainerName is the agent's container in them.
	AgentContainerName = "cilium-agent"
	// writeTimeout bounds one write that is let finish after an interrupt;
	// it outlasts kube.OutageWait, so a write waits out a short outage.
	writeTimeout = 2 * time.Minute
)

// Options configure a Migrator.
type Options struct {
	// Namespace is where Cilium runs ("" = where it is installed).
	Namespace string
	// NodeLabel is the "key=value" label the CiliumNodeConfig selects.
	NodeLabel string
	// NodeConfigName is the CiliumNodeConfig's name, in Namespace.
	NodeConfigName string
	// AllowControlPlane lets a control-plane node go before the workers.
	AllowControlPlane bool

	// Drain settings, as kubectl drain's flags.
	DrainTimeout       time.Duration // 0 waits forever
	GracePeriodSeconds int           // negative: each pod's own
	DeleteEmptyDirData bool
	DisableEviction    bool
	Force              bool

	AgentTimeout time.Duration

	// Reboot is RebootCommand, RebootManual or RebootSkip.
	Reboot        string
	RebootCommand *RebootTemplate
	RebootTimeout time.Duration

	ProbeImage   string
	ProbeTimeout time.Duration

	// DryRun sends every write with server-side dry run; nothing is
	// changed, nothing is waited for and no reboot command runs.
	DryRun bool

	// ResumeCommand is the command line that continues an unfinished run
	// (printed on interrupts and failures).
	ResumeCommand string

	// Direction is DirectionMigrate (the zero value: node, rollout) or
	// DirectionRollback (rollback).
	Direction Direction
}

// Validate checks the options that do not need the cluster.
func (o Options) Validate() error {
	if _, _, err := nodeconfig.ParseLabel(o.NodeLabel); err != nil {
		return err
	}
	switch o.Reboot {
	case RebootCommand:
		if o.RebootCommand == nil {
			return errs.New(errs.Usage, "--reboot=command needs --reboot-command", "pass e.g. --reboot-command 'ssh {{.Node}} sudo systemctl reboot'")
		}
	case RebootManual, RebootSkip:
		if o.RebootCommand != nil {
			return errs.Newf(errs.Usage, "drop --reboot-command, or use --reboot=command", "--reboot=%s does not run --reboot-command", o.Reboot)
		}
	default:
		return errs.Newf(errs.Usage, "use --reboot=command, manual or skip", "unknown --reboot %q", o.Reboot)
	}
	for name, d := range map[string]time.Duration{"--timeout": o.DrainTimeout, "--agent-timeout": o.AgentTimeout, "--reboot-timeout": o.RebootTimeout, "--probe-timeout": o.ProbeTimeout} {
		if d < 0 || (d == 0 && name != "--timeout") {
			return errs.Newf(errs.Usage, "pass a positive duration such as 5m", "%s %s is not a positive duration", name, d)
		}
	}
	if strings.TrimSpace(o.ProbeImage) == "" {
		return errs.New(errs.Usage, "--probe-image is empty", "pass an image with sh and curl, e.g. "+DefaultProbeImage)
	}
	return nil
}

// CommandRunner runs a reboot command and returns when it exits.
type CommandRunner func(ctx context.Context, argv []string, stdout, stderr io.Writer) error

// ExecRunner runs argv with os/exec, without a shell, in the plugin's
// environment.
func ExecRunner(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdout, c.Stderr = stdout, stderr
	c.WaitDelay = 5 * time.Second
	return c.Run()
}

// Migrator runs the per-node steps, in the direction Options.Direction says.
type Migrator struct {
	cl       *kube.Clients
	opts     Options
	progress *Progress
	now      func() time.Time
	run      CommandRunner
	// freshAgentWait is FreshAgentWait (shorter in tests).
	freshAgentWait time.Duration
	// uids are the UIDs of the nodes being migrated (Target.UID), by
	// name: every node patch carries it as a precondition.
	uids sync.Map
}

// New returns a Migrator. progress receives the progress lines; run runs
// reboot commands (ExecRunner when nil).
func New(cl *kube.Clients, opts Options, progress *Progress, run CommandRunner) *Migrator {
	if run == nil {
		run = ExecRunner
	}
	return &Migrator{cl: cl, opts: opts, progress: progress, now: time.Now, run: run, freshAgentWait: FreshAgentWait}
}

// Target is a node to migrate (or roll back) and its state when the run
// began.
type Target struct {
	Name string
	// UID is the node object's: a node deleted and created again under
	// the same name (a replaced machine) has another, and none of the
	// migration's state.
	UID          types.UID
	ControlPlane bool
	InternalIP   string
	State        State
	// Labelled says whether the node carries the migration label's key.
	Labelled bool
}

// Plan is what Preflight found: the nodes in the order they will be
// migrated and the migration's settings read from the cluster.
type Plan struct {
	Targets []Target
	// Namespace is where Cilium runs; Pool is its cluster-pool pod CIDR.
	Namespace string
	Pool      []netip.Prefix
	// NodeConfig is "apiVersion namespace/name" of the CiliumNodeConfig.
	NodeConfig string
	// CNIConfFile is where the CiliumNodeConfig makes the agent write its
	// CNI configuration, as a path on the node (HostCNIConfFile of
	// write-cni-conf-when-ready: in the distribution's CNI directory, e.g.
	// k3s's, when the chart mounts cni.confPath at /host/etc/cni/net.d;
	// DefaultCNIConfFile when not set).
	CNIConfFile string
	// OldCNI is the CNI the cluster migrates from (nil when not detected).
	OldCNI *detect.CNI
}

// DefaultCNIConfFile is the CNI configuration the Cilium agent writes on a
// node the CiliumNodeConfig selects (write-cni-conf-when-ready in
// values-initial.yaml's CiliumNodeConfig, /host/etc/cni/net.d being
// where the chart mounts the node's cni.confPath; see HostCNIConfFile).
const DefaultCNIConfFile = "/etc/cni/net.d/05-cilium.conflist"

func (m *Migrator) rollback() bool { return m.opts.Direction == DirectionRollback }
