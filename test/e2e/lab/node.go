package lab

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// Node is one real Kubernetes node: a network namespace joined to the
// lab's bridge, and an init process in new mount, UTS and PID namespaces
// that runs containerd and the kubelet. Everything the node starts lives in
// its PID namespace, so killing the init ends all of it (the kernel kills
// a PID namespace with its init).
type Node struct {
	Name string
	// IP is the node's address on the lab network (eth0).
	IP string
	// Index numbers the nodes from 0.
	Index int
	// ControlPlane nodes carry node-role.kubernetes.io/control-plane.
	ControlPlane bool
	// Dir holds what survives a reboot (the node's disks) and its logs.
	Dir string

	lab *Lab

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	boots  int
	bootID string
	// firewall are the iptables rules (chain, spec...) applied at each boot.
	firewall [][]string
}

// NetNS is the name of the node's network namespace.
func (n *Node) NetNS() string { return fmt.Sprintf("%s%d-n%d", namePrefix, n.lab.owner, n.Index) }

// NetNSPath is its file.
func (n *Node) NetNSPath() string { return nsPath(n.NetNS()) }

// BootID is the boot ID the node's kernel reports now.
func (n *Node) BootID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bootID
}

// Boots counts the node's starts (1 after the first boot).
func (n *Node) Boots() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.boots
}

func (n *Node) cgroup() string { return fmt.Sprintf("%s%d/%s", namePrefix, n.lab.owner, n.Name) }

// persistent are the node's directories that are bind mounts of plain
// directories below Dir/fs (not overlayfs), kept across reboots like the
// rest of Dir; fs/opt/cni/bin seeds the node's /opt/cni/bin at its first boot.
var persistent = []string{"/var/lib/kubelet", "/var/lib/containerd", "/opt/cni/bin"}

// shadowedSysctls are kernel-wide settings the kubelet and the Cilium agent
// write. Each node gets files of its own bind-mounted over them, so the
// host's values never change.
var shadowedSysctls = []string{
	"kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "vm/panic_on_oom",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"kernel/unprivileged_bpf_disabled", "kernel/timer_migration", "net/core/bpf_jit_enable",
}

func (n *Node) prepare() error {
	for _, d := range persistent {
		if err := os.MkdirAll(filepath.Join(n.Dir, "fs", d), 0o755); err != nil {
			return err
		}
	}
	if n.lab.imagesRoot != "" {
		if err := seedContainerd(context.Background(), n.lab.imagesRoot, filepath.Join(n.Dir, "fs/var/lib/containerd")); err != nil {
			n.lab.logf("lab: node %s imports the images itself: %v", n.Name, err)
		}
	}
	for _, d := range []string{"etc.upper", "sysctl", "logs", "mnt/cgroup"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	// The reference CNI plugins from Debian's containernetworking-plugins.
	bins, _ := filepath.Glob("/usr/lib/cni/*")
	for _, b := range bins {
		if err := copyFile(b, filepath.Join(n.Dir, "fs/opt/cni/bin", filepath.Base(b)), 0o755); err != nil {
			return err
		}
	}
	for _, s := range shadowedSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", s))
		if err != nil {
			continue // not in this kernel: nothing to shadow
		}
		if err := os.WriteFile(filepath.Join(n.Dir, "sysctl", strings.ReplaceAll(s, "/", ".")), v, 0o644); err != nil {
			return err
		}
	}
	// /etc is a copy-on-write overlay of the host's; these files are the node's own.
	for name, content := range map[string]string{
		"hostname":   n.Name + "\n",
		"machine-id": randomHex(16) + "\n",
		"hosts":      fmt.Sprintf("127.0.0.1 localhost\n%s %s\n", n.IP, n.Name),
	} {
		if err := os.WriteFile(filepath.Join(n.Dir, "etc.upper", name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(n.Dir, "etc.upper/cni/net.d"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "resolv.conf"), []byte("nameserver "+n.lab.GatewayIP+"\n"), 0o644); err != nil {
		return err
	}
	if err := makeCgroup(n.cgroup()); err != nil {
		return err
	}
	if _, _, err := n.lab.Cluster.WriteClientKubeconfig(filepath.Join(n.Dir, "kubelet.kubeconfig"),
		"system:node:"+n.Name, []string{"system:nodes"}, n.lab.Cluster.InternalServer()); err != nil {
		return err
	}
	for name, tmpl := range map[string]*template.Template{
		"containerd.toml": containerdConfig, "kubelet.yaml": kubeletConfig, "init.sh": initScript,
	} {
		if err := renderFile(filepath.Join(n.Dir, name), tmpl, n.templateData()); err != nil {
			return err
		}
	}
	return nil
}

type nodeTemplate struct {
	Name, IP, Dir, CAFile, CgroupRoot, ClusterDNS, Labels string
	Images, ImagesStamp, RunImages, RunImagesStamp        string
	PauseImage, MonitorDir, Kubelet                       string
	Sysctls                                               []sysctlShadow
}

type sysctlShadow struct{ File, Path string }

func (n *Node) templateData() nodeTemplate {
	// The kubelet may not set node-role labels itself (NodeRestriction);
	// the lab sets them once the node registered, as kubeadm does.
	labels := "lab.cni-migrate.io/node=" + n.Name
	var sysctls []sysctlShadow
	for _, s := range shadowedSysctls {
		f := strings.ReplaceAll(s, "/", ".")
		if _, err := os.Stat(filepath.Join(n.Dir, "sysctl", f)); err == nil {
			sysctls = append(sysctls, sysctlShadow{File: f, Path: s})
		}
	}
	return nodeTemplate{
		Name: n.Name, IP: n.IP, Dir: n.Dir, CAFile: n.lab.Cluster.CAFile(), CgroupRoot: "/" + n.cgroup(),
		ClusterDNS: n.lab.DNSServiceIP, Labels: labels, Sysctls: sysctls,
		Images: n.lab.images.Base, ImagesStamp: n.lab.images.FP, RunImages: n.lab.images.Run, RunImagesStamp: n.lab.images.RunFP,
		PauseImage: Images.Pause,
		MonitorDir: n.lab.MonitorDir, Kubelet: n.lab.bin("kubelet"),
	}
}

// plug creates the node's network namespace and its link to the bridge.
func (n *Node) plug(ctx context.Context) error {
	ns := n.NetNS()
	if err := addNetNS(ctx, ns); err != nil {
		return err
	}
	// The kernel destroys a deleted namespace's interfaces asynchronously,
	// which can take a minute after a node ran Cilium: each boot's fabric
	// end has a name of its own so the next boot need not wait for it. The
	// node's own end keeps its MAC across boots, as a machine's NIC does,
	// so the other nodes' neighbour entries stay right.
	n.mu.Lock()
	boot := n.boots
	n.mu.Unlock()
	peer := fmt.Sprintf("veth%db%d", n.Index, boot)
	mac := fmt.Sprintf("02:c1:a8:00:%02x:%02x", n.Index>>8&0xff, n.Index&0xff)
	fab := n.lab.fabricNS()
	steps := [][]string{
		{"link", "add", "eth0", "netns", ns, "address", mac, "type", "veth", "peer", "name", peer, "netns", fab},
	}
	for _, s := range steps {
		if err := ipIn(ctx, fab, s...); err != nil {
			return err
		}
	}
	for _, s := range [][]string{{"link", "set", peer, "master", "br0"}, {"link", "set", peer, "up"}} {
		if err := ipIn(ctx, fab, s...); err != nil {
			return err
		}
	}
	for _, s := range [][]string{
		{"addr", "add", n.IP + "/24", "dev", "eth0"},
		{"link", "set", "eth0", "up"},
		// The lab has no way out: the gateway is the bridge's address in
		// the fabric namespace, which routes nowhere.
		{"route", "add", "default", "via", n.lab.GatewayIP},
	} {
		if err := ipIn(ctx, ns, s...); err != nil {
			return err
		}
	}
	return nil
}

// boot starts the node: a fresh network namespace and init, a new boot ID.
func (n *Node) boot(ctx context.Context) error {
	if err := n.plug(ctx); err != nil {
		return err
	}
	if err := n.rebootFirewall(ctx); err != nil {
		return err
	}
	bootID := randomUUID()
	if err := os.WriteFile(filepath.Join(n.Dir, "boot_id"), []byte(bootID+"\n"), 0o644); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(n.Dir, "logs", "init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "### %s boot %s\n", time.Now().Format(time.RFC3339Nano), bootID)
	// nsenter joins the network namespace and execs unshare, which makes
	// the other namespaces, forks the init (PID 1) and kills it when it is
	// killed itself; the test's death kills unshare (Pdeathsig).
	cmd := exec.Command("nsenter", "--net="+n.NetNSPath(), "--",
		"unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "--propagation", "slave",
		"--kill-child=SIGKILL", "--", "/bin/bash", filepath.Join(n.Dir, "init.sh"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = n.Dir
	if err := cluster.StartAttached(cmd); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.boots++
	n.bootID = bootID
	n.mu.Unlock()
	return nil
}

// halt kills everything that runs on the node and deletes its network
// namespace, with every interface, route, iptables rule and BPF program
// the CNIs made in it: what a power cycle does to a machine's network.
func (n *Node) halt(ctx context.Context) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	var errs []error
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			errs = append(errs, fmt.Errorf("node %s: init did not exit", n.Name))
		}
	}
	if err := killNetNS(ctx, n.NetNSPath(), 30*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := delNetNS(ctx, n.NetNS()); err != nil {
		errs = append(errs, err)
	}
	// A machine boots with no cgroups of its containers left; the node's
	// own cgroup stays (the kubelet's --cgroup-root). Left in place, the
	// dead containers' cgroups cost the next kubelet's cAdvisor about 3 s
	// each before the node registers (75 s after a lab reboot seen).
	for _, ctrl := range cgroupControllers() {
		children, _ := os.ReadDir(filepath.Join(cgroupRoot, ctrl, n.cgroup()))
		for _, c := range children {
			if c.IsDir() {
				removeCgroupTree(filepath.Join(cgroupRoot, ctrl, n.cgroup(), c.Name()))
			}
		}
	}
	return errors.Join(errs...)
}

// Reboot halts the node and boots it again with a new boot ID. It returns
// once the new init runs (like `reboot` over ssh, it does not wait for the
// kubelet).
func (n *Node) Reboot(ctx context.Context) error {
	if err := n.halt(ctx); err != nil {
		return fmt.Errorf("reboot %s: %w", n.Name, err)
	}
	return n.boot(ctx)
}

// Running reports whether the node's init runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Exec runs a command on the node (in all of its namespaces, as root on
// the machine would) and returns its output.
func (n *Node) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	pid, err := n.initPID()
	if err != nil {
		return nil, err
	}
	full := append([]string{"--target", fmt.Sprint(pid), "--net", "--mount", "--uts", "--pid", "--", name}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("on %s: %s %s: %w: %s", n.Name, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// initPID is the PID (in the host's namespace) of the node's init: the
// child of unshare.
func (n *Node) initPID() (int, error) {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0, fmt.Errorf("node %s is not running", n.Name)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	var pid int
	if _, err := fmt.Sscan(string(data), &pid); err != nil {
		return 0, fmt.Errorf("node %s: no init yet", n.Name)
	}
	return pid, nil
}

func renderFile(path string, t *template.Template, data any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := t.Execute(f, data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
