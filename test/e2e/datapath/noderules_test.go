package datapath

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// TestNodeRulesGuard runs the policy bridge's node rules (the script the
// unit test pins, plugin/policybridge/testdata/noderules-calico.sh.golden)
// on a node of three network namespaces made here: an old pod behind a
// cali interface (10.244.0.5), a Cilium pod behind cilium_host (10.245.0.7)
// and the node between them, with felix's and Cilium's FORWARD chains as
// they behave (felix: port 8081 denied both ways, its accept bit on what it
// allows and at the end of FORWARD; Cilium: everything to and from
// cilium_host accepted, its jump first, as after an agent start). It
// checks with real connections that a flow felix denies never gets
// through Cilium's chain: not once the script runs, and not while Cilium's
// jump is first again and the script cannot react (stopped): the guard then
// drops every new connection between the networks, felix's verdict
// missing; and that the script removes its rules when it stops.
func TestNodeRulesGuard(t *testing.T) {
	need(t)
	rootfs := filepath.Join(cluster.DefaultCache(), "datapath", "rootfs")
	if _, err := os.Stat(filepath.Join(rootfs, "usr/sbin/xtables-nft-multi")); err != nil {
		t.Fatalf("no iptables in the lab's rootfs (make datapath-tools): %v", err)
	}
	script, err := os.ReadFile(filepath.Join("..", "..", "..", "plugin", "policybridge", "testdata", "noderules-calico.sh.golden"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	prefix := fmt.Sprintf("cmnr%d-", os.Getpid())
	node, old, nu := prefix+"node", prefix+"old", prefix+"new"
	sh := func(ns, cmd string) (string, error) {
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "chroot", rootfs, "bash", "-c", cmd).CombinedOutput()
		return string(out), err
	}
	must := func(ns, cmd string) {
		t.Helper()
		if out, err := sh(ns, cmd); err != nil {
			t.Fatalf("%s: %s: %v\n%s", ns, cmd, err, out)
		}
	}
	for _, ns := range []string{node, old, nu} {
		if out, err := exec.CommandContext(ctx, "ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
		}
		t.Cleanup(func() {
			// Every process left in the namespace first, by PID.
			if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
				for _, f := range strings.Fields(string(out)) {
					var pid int
					if _, err := fmt.Sscan(f, &pid); err == nil {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			_ = exec.Command("ip", "netns", "del", ns).Run()
		})
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("link", "add", "cali1", "netns", node, "type", "veth", "peer", "name", "eth0", "netns", old)
	ip("link", "add", "cilium_host", "netns", node, "type", "veth", "peer", "name", "eth0", "netns", nu)
	must(old, "ip link set lo up && ip link set eth0 up && ip addr add 10.244.0.5/32 dev eth0 && ip route add default dev eth0")
	must(nu, "ip link set lo up && ip link set eth0 up && ip addr add 10.245.0.7/32 dev eth0 && ip route add default dev eth0")
	// The sysctls from the host's shell: the rootfs has no /proc.
	if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", node, "sh", "-c",
		"echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv4/conf/cali1/proxy_arp && echo 1 > /proc/sys/net/ipv4/conf/cilium_host/proxy_arp").CombinedOutput(); err != nil {
		t.Fatalf("sysctls: %v\n%s", err, out)
	}
	must(node, `set -e
ip link set lo up; ip link set cali1 up; ip link set cilium_host up
ip route add 10.244.0.5/32 dev cali1; ip route add 10.245.0.0/16 dev cilium_host
iptables-nft-restore <<'EOF'
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:cali-FORWARD - [0:0]
:CILIUM_FORWARD - [0:0]
-A FORWARD -m comment --comment "cilium-feeder: CILIUM_FORWARD" -j CILIUM_FORWARD
-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD
-A FORWARD -m comment --comment "cali:S93hcgKJrXEqnTfs Policy explicitly accepted packet." -m mark --mark 0x10000/0x10000 -j ACCEPT
-A FORWARD -m comment --comment "cali:mp77cMpurHhyjLrM" -j MARK --set-xmark 0x10000/0x10000
-A cali-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A cali-FORWARD -p tcp --dport 8081 -j DROP
-A cali-FORWARD -i cali+ -j MARK --set-xmark 0x10000/0x10000
-A cali-FORWARD -o cali+ -j MARK --set-xmark 0x10000/0x10000
-A CILIUM_FORWARD -o cilium_host -j ACCEPT
-A CILIUM_FORWARD -i cilium_host -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
EOF`)
	// Servers on 8080 (allowed) and 8081 (denied by felix) in both pods.
	for _, ns := range []string{old, nu} {
		for _, port := range []string{"8080", "8081"} {
			srv := exec.Command("ip", "netns", "exec", ns, "chroot", rootfs, "nc", "-lk", port)
			srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
		}
	}
	time.Sleep(300 * time.Millisecond)
	// connects tries a connection; one that should pass gets three tries
	// of a second (a first SYN can wait on a neighbour lookup or a busy
	// CPU: seen once, right after a lab's teardown), one that should not
	// gets one, and any connection at all is a failure.
	connects := func(from, to, port string, want bool) bool {
		tries := 1
		if want {
			tries = 3
		}
		for range tries {
			if _, err := sh(from, "nc -z -w 1 "+to+" "+port); err == nil {
				return true
			}
		}
		return false
	}
	// flows: old->new and new->old, allowed and denied.
	check := func(when string, allowed8080, allowed8081 bool) {
		t.Helper()
		for _, f := range []struct{ from, to, dir string }{{old, "10.245.0.7", "old->new"}, {nu, "10.244.0.5", "new->old"}} {
			if got := connects(f.from, f.to, "8080", allowed8080); got != allowed8080 {
				t.Errorf("%s: %s port 8080 connects: %v, want %v", when, f.dir, got, allowed8080)
			}
			if got := connects(f.from, f.to, "8081", allowed8081); got != allowed8081 {
				t.Errorf("%s: %s port 8081 (felix denies it) connects: %v, want %v", when, f.dir, got, allowed8081)
			}
		}
	}
	// The race as the lab met it: Cilium's jump first, no node rules.
	check("Cilium's chain first, no node rules", true, true)

	dir := t.TempDir()
	log := filepath.Join(dir, "rules.log")
	logf, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// The script goes in through its standard input (the rootfs stays as
	// it is); it runs in a process group of its own, stopped and killed
	// as one.
	rules := exec.Command("ip", "netns", "exec", node, "chroot", rootfs, "bash", "-s")
	rules.Stdin = bytes.NewReader(script)
	rules.Stdout, rules.Stderr = logf, logf
	rules.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := rules.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := rules.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL); _ = rules.Wait() })
	dump := func() string {
		out, _ := sh(node, "iptables-nft-save")
		b, _ := os.ReadFile(log)
		return "iptables:\n" + out + "\nthe script's log:\n" + string(b)
	}
	waitFor := func(what string, ok func(save string) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			save, _ := sh(node, "iptables-nft-save")
			if ok(save) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20 s\n%s", what, dump())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	felixFirst := func(save string) bool {
		f := strings.Index(save, "cni-migrate:felix-first:1\" -j cali-FORWARD")
		c := strings.Index(save, "-j CILIUM_FORWARD")
		return f >= 0 && c > f && strings.Contains(save, "cni-migrate:felix-verdict-drop:1") && strings.Contains(save, "cni-migrate:felix-verdict-mark:2")
	}
	waitFor("felix's jump first and the guard in place", felixFirst)
	check("the node rules running", true, false)

	// An agent start while the script cannot react: Cilium's jump first
	// again. Felix's verdict is missing from every new connection between
	// the networks, and the guard drops them all, allowed ones included,
	// until the script puts felix first again.
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	must(node, `iptables-nft -I FORWARD 1 -m comment --comment "cilium-feeder: CILIUM_FORWARD" -j CILIUM_FORWARD`)
	check("Cilium's chain first again, the node rules stopped", false, false)
	if err := syscall.Kill(-pgid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor("felix's jump first again after the script resumed", felixFirst)
	check("the node rules resumed", true, false)

	// Stopped for good: its rules go.
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rules.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the script did not stop on SIGTERM\n%s", dump())
	}
	if save, _ := sh(node, "iptables-nft-save"); strings.Contains(save, "cni-migrate:") {
		t.Errorf("rules left after SIGTERM:\n%s", save)
	}
	if t.Failed() {
		t.Logf("%s", dump())
	}
}
