package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestDiskNeed(t *testing.T) {
	root := int64(2.5 * (1 << 30))
	for _, tc := range []struct {
		nodes   int
		archive int64
		shared  bool
		want    int64
	}{
		{3, 1 << 30, false, root*3 + labOverhead},
		{2, 1 << 30, false, root*2 + labOverhead},
		// No archive yet: the default size, and the archive itself.
		{2, 0, false, int64(2.5*float64(defaultArchive))*2 + labOverhead + defaultArchive},
		// Nodes seeded from the image root: it once, a little per node.
		{3, 1 << 30, true, root + 3*sharedNodeNeed + labOverhead},
		{2, 0, true, int64(2.5*float64(defaultArchive)) + 2*sharedNodeNeed + labOverhead + defaultArchive},
	} {
		if got := diskNeed(tc.nodes, tc.archive, tc.shared); got != tc.want {
			t.Errorf("diskNeed(%d, %d, %v) = %d, want %d", tc.nodes, tc.archive, tc.shared, got, tc.want)
		}
	}
}

func TestCheckDisk(t *testing.T) {
	dir := t.TempDir()
	if err := checkDisk(dir, 0, 1, false); err != nil {
		t.Errorf("a lab of no nodes: %v", err)
	}
	for _, shared := range []bool{false, true} {
		err := checkDisk(dir, 1<<20, 1<<30, shared)
		if err == nil || !strings.Contains(err.Error(), "needs about") || !strings.Contains(err.Error(), "TMPDIR") {
			t.Errorf("a lab of a million nodes (shared %v): %v, want the figures and the fix", shared, err)
		}
	}
}

func TestPruneStaleDirs(t *testing.T) {
	parent := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	state := func(lab string) string {
		return filepath.Join(parent, lab, "nodes", "worker-1", "fs", "var", "lib", "containerd")
	}
	for lab, owner := range map[string]int{"dead": dead.Process.Pid, "live": os.Getpid()} {
		if err := os.MkdirAll(state(lab), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(parent, lab, ownerFile), []byte(strconv.Itoa(owner)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(parent, lab, "nodes", "worker-1", "logs"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pruneStaleDirs(parent)
	if _, err := os.Stat(state("dead")); !os.IsNotExist(err) {
		t.Errorf("a dead lab's node images: %v, want removed", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "dead", "nodes", "worker-1", "logs")); err != nil {
		t.Errorf("a dead lab's node logs: %v, want kept", err)
	}
	if _, err := os.Stat(state("live")); err != nil {
		t.Errorf("a running lab's node images: %v, want kept", err)
	}
}
