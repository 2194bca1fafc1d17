package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// cgroupRoot holds the host's cgroup v1 hierarchies (one directory per
// controller, as on these machines).
const cgroupRoot = "/sys/fs/cgroup"

// cgroupControllers lists the v1 hierarchies below cgroupRoot (the cgroup2
// mount "unified" left out: the kubelet runs in cgroup v1 mode here).
func cgroupControllers() []string {
	entries, _ := os.ReadDir(cgroupRoot)
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "unified" {
			out = append(out, e.Name())
		}
	}
	return out
}

// makeCgroup creates rel (e.g. "cmlab123/worker-1") in every hierarchy, as
// the kubelet's --cgroup-root wants. A new cpuset cgroup starts with no
// CPUs and no memory nodes, so each level copies its parent's.
func makeCgroup(rel string) error {
	for _, ctrl := range cgroupControllers() {
		parent := filepath.Join(cgroupRoot, ctrl)
		for _, part := range strings.Split(rel, "/") {
			dir := filepath.Join(parent, part)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("cgroup %s: %w", dir, err)
			}
			if ctrl == "cpuset" {
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					if cur, _ := os.ReadFile(filepath.Join(dir, f)); strings.TrimSpace(string(cur)) != "" {
						continue
					}
					v, err := os.ReadFile(filepath.Join(parent, f))
					if err != nil {
						return err
					}
					if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
						return fmt.Errorf("cgroup %s/%s: %w", dir, f, err)
					}
				}
			}
			parent = dir
		}
	}
	return nil
}

// removeCgroupTree removes a cgroup directory and its children, deepest
// first (a cgroup directory can only be removed when empty of children
// and processes).
func removeCgroupTree(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}
