package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one child process of the cluster (etcd, kube-apiserver, ...).
type process struct {
	Name    string
	Path    string
	Args    []string
	LogPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited
	err  error         // exit error, valid after done
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// StartProcess starts an extra process that belongs to the cluster: it is
// logged to Dir/logs/NAME.log, recorded in the PID file, and stopped by Stop
// (before the control plane, in reverse start order).
func (c *Cluster) StartProcess(name, path string, args ...string) error {
	_, err := c.startProcess(name, path, args, nil)
	return err
}

func (c *Cluster) startProcess(name, path string, args []string, env []string) (*process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, errors.New("cluster is stopped")
	}
	logDir := filepath.Join(c.Dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	p := &process{Name: name, Path: path, Args: args, LogPath: filepath.Join(logDir, name+".log"), done: make(chan struct{})}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "### %s %s %s\n", time.Now().Format(time.RFC3339), path, strings.Join(args, " "))
	cmd := exec.Command(path, args...)
	if c.opts.NetNS != "" {
		// nsenter enters the namespace and execs path: the PID, and so
		// Pdeathsig and the PID file, stay those of the component.
		cmd = exec.Command("nsenter", append([]string{"--net=" + c.opts.NetNS, "--", path}, args...)...)
	}
	cmd.Dir = c.Dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Stdin = nil
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr(c.opts.Detach)
	start := cmd.Start
	if !c.opts.Detach {
		start = func() error { return startOnLockedThread(cmd) }
	}
	if err := start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	if err := c.writePIDFileLocked(); err != nil {
		return p, err
	}
	c.logf("started %s (pid %d), log %s", name, p.pid(), p.LogPath)
	return p, nil
}

// sysProcAttr puts each child in its own process group so that Stop can
// signal the group. Attached children also die with the test process
// (Pdeathsig) even if it is killed with SIGKILL; detached ones (for the
// e2e-cluster CLI) get their own session and outlive their parent.
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// Pdeathsig fires when the OS thread that started the child exits, not the
// process. The Go runtime may retire threads, so attached children are all
// started from one goroutine locked to its thread for the life of the
// process.
var (
	spawnOnce sync.Once
	spawnCh   chan spawnRequest
)

type spawnRequest struct {
	cmd *exec.Cmd
	err chan error
}

func startOnLockedThread(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawnCh {
				r.err <- r.cmd.Start()
			}
		}()
	})
	r := spawnRequest{cmd: cmd, err: make(chan error, 1)}
	spawnCh <- r
	return <-r.err
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	pgid := p.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, pgid)
		}
	}
	// Anything left in the group (there should be nothing) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// PIDFileName is the name of the file in Dir that records the cluster's
// processes, one "NAME PID PATH" line each.
const PIDFileName = "pids"

func (c *Cluster) writePIDFileLocked() error {
	var b bytes.Buffer
	for _, p := range c.procs {
		fmt.Fprintf(&b, "%s %d %s\n", p.Name, p.pid(), p.Path)
	}
	tmp := filepath.Join(c.Dir, PIDFileName+".tmp")
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.Dir, PIDFileName))
}

// StopDir stops the processes recorded in dir's PID file by a cluster that
// was started detached (by another process), newest first, and waits for
// them to exit. A PID whose command line no longer matches the recorded
// binary is skipped (the process is gone and the PID was reused).
func StopDir(dir string, grace time.Duration) error {
	f, err := os.Open(filepath.Join(dir, PIDFileName))
	if err != nil {
		return err
	}
	defer f.Close()
	type rec struct {
		name, path string
		pid        int
	}
	var recs []rec
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		pid, err := strconv.Atoi(fields[1])
		if err != nil || pid <= 1 {
			continue
		}
		recs = append(recs, rec{fields[0], fields[2], pid})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var errs []error
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if !pidRuns(r.pid, r.path) {
			continue
		}
		_ = syscall.Kill(-r.pid, syscall.SIGTERM)
		_ = syscall.Kill(r.pid, syscall.SIGTERM)
		if err := waitGone(r.pid, r.path, grace); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
		}
	}
	return errors.Join(errs...)
}

// waitGone waits for pid to exit, sending SIGKILL to its group after grace.
func waitGone(pid int, path string, grace time.Duration) error {
	deadline := time.Now().Add(grace)
	killed := false
	for pidRuns(pid, path) {
		if time.Now().After(deadline) {
			if killed {
				return fmt.Errorf("pid %d did not exit after SIGKILL", pid)
			}
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = true
			deadline = time.Now().Add(10 * time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// pidRuns reports whether pid is a live (non-zombie) process running path.
func pidRuns(pid int, path string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return string(argv0) == path
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	const max = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartAttached starts cmd as a child that dies with the test process
// (Pdeathsig from a thread that lives as long as the process, its own
// process group). The caller waits for it.
func StartAttached(cmd *exec.Cmd) error {
	cmd.SysProcAttr = sysProcAttr(false)
	return startOnLockedThread(cmd)
}

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after grace),
// as an outage would: every client's requests fail and watches break. etcd
// and the other components keep running. StartAPIServer brings it back.
func (c *Cluster) StopAPIServer(grace time.Duration) error {
	p := c.proc("kube-apiserver")
	if p == nil {
		return errors.New("no kube-apiserver in this cluster")
	}
	c.logf("stopping kube-apiserver (pid %d)", p.pid())
	return p.stop(grace)
}

// StartAPIServer starts kube-apiserver again with the flags it had (same
// port and certificates) and waits until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	old := c.proc("kube-apiserver")
	if old == nil {
		return errors.New("no kube-apiserver in this cluster")
	}
	if !old.exited() {
		return errors.New("kube-apiserver still runs")
	}
	c.mu.Lock()
	for i, p := range c.procs {
		if p == old {
			c.procs = append(c.procs[:i], c.procs[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	p, err := c.startProcess(old.Name, old.Path, old.Args, nil)
	if err != nil {
		return err
	}
	adminTLS, err := c.clientTLS("admin")
	if err != nil {
		return err
	}
	return c.waitHTTP(ctx, p, fmt.Sprintf("https://127.0.0.1:%d/readyz", c.ports.apiserver), adminTLS, 2*time.Minute)
}

func (c *Cluster) proc(name string) *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.procs) - 1; i >= 0; i-- {
		if c.procs[i].Name == name {
			return c.procs[i]
		}
	}
	return nil
}
