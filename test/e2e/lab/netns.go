package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// netnsDir is where `ip netns` keeps its namespace files.
const netnsDir = "/run/netns"

// nsPath is the file of the named network namespace.
func nsPath(name string) string { return filepath.Join(netnsDir, name) }

// run runs a command and returns its combined output in the error.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// ipIn runs `ip -n NS args...` (ip in the namespace NS).
func ipIn(ctx context.Context, ns string, args ...string) error {
	return run(ctx, "ip", append([]string{"-n", ns}, args...)...)
}

// execIn runs a command inside the network namespace ns only (the host's
// mount namespace).
func execIn(ctx context.Context, ns string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in %s: %s %s: %w: %s", ns, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

func addNetNS(ctx context.Context, name string) error {
	if err := run(ctx, "ip", "netns", "add", name); err != nil {
		return err
	}
	return ipIn(ctx, name, "link", "set", "lo", "up")
}

// delNetNS deletes a network namespace; its interfaces go with it once no
// process is left in it.
func delNetNS(ctx context.Context, name string) error {
	if _, err := os.Stat(nsPath(name)); os.IsNotExist(err) {
		return nil
	}
	return run(ctx, "ip", "netns", "del", name)
}

// netnsInode identifies a network namespace file.
func netnsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// pidsInNetNS lists the processes whose network namespace is the one at path.
func pidsInNetNS(path string) []int {
	ino, err := netnsInode(path)
	if err != nil {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == ino {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killNetNS sends SIGKILL to every process in the namespace and waits
// until none is left.
func killNetNS(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids := pidsInNetNS(path)
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in %s after %v", pids, path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// staleLabs removes the namespaces and cgroups of labs whose owning
// process is gone (a test killed with SIGKILL cannot clean up itself), and
// the nodes' images from such labs' directories beside dir's.
func staleLabs(ctx context.Context, parent string) {
	defer pruneStaleDirs(parent)
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		owner, ok := labOwner(e.Name())
		if !ok || processAlive(owner) {
			continue
		}
		_ = killNetNS(ctx, nsPath(e.Name()), 10*time.Second)
		_ = delNetNS(ctx, e.Name())
	}
	for _, ctrl := range cgroupControllers() {
		dirs, _ := os.ReadDir(filepath.Join(cgroupRoot, ctrl))
		for _, d := range dirs {
			if owner, ok := labOwner(d.Name()); ok && !processAlive(owner) {
				removeCgroupTree(filepath.Join(cgroupRoot, ctrl, d.Name()))
			}
		}
	}
}

// Every name a lab creates on the host starts with namePrefix and the
// owner's PID: cmlab<PID>-....
const namePrefix = "cmlab"

func labOwner(name string) (int, bool) {
	if !strings.HasPrefix(name, namePrefix) {
		return 0, false
	}
	rest := strings.TrimPrefix(name, namePrefix)
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		rest = rest[:i]
	}
	pid, err := strconv.Atoi(rest)
	return pid, err == nil
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

func execLookPath(name string) (string, error) { return exec.LookPath(name) }
