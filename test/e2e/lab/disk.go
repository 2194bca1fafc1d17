package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A node's containerd keeps the images twice: as blobs in its content
// store and unpacked as snapshots. Measured with Cilium and Calico images
// (an archive of 1.37 GB): 3.4 GB per node. When the cache and the lab are
// on one file system the nodes share these by hard links to the image root
// (imageroot.go), kept in the cache once per archive; each node then adds
// its databases and its containers' layers. The control plane, logs and
// monitor add well under 1 GB.
const (
	nodeImageCopies = 2.5               // a containerd root per byte of archive
	defaultArchive  = int64(1500) << 20 // before the first archive is written
	labOverhead     = int64(1) << 30
	sharedNodeNeed  = int64(256) << 20 // a node seeded from the image root
)

// diskNeed is the free space a lab of nodes needs in its directory, given
// the size of its image archive (0 when none is built yet) and whether the
// nodes share the image root, with the part of it the archive and the
// image root take in the cache when they are still to be written (counted
// always: a lab cannot tell beforehand which archive it will use).
func diskNeed(nodes int, archive int64, shared bool) int64 {
	build := int64(0)
	if archive == 0 {
		archive, build = defaultArchive, defaultArchive
	}
	root := int64(float64(archive) * nodeImageCopies)
	if shared {
		return root + sharedNodeNeed*int64(nodes) + labOverhead + build
	}
	return root*int64(nodes) + labOverhead + build
}

// checkDisk fails with the figures when dir's file system has less room
// than a lab of nodes needs: a lab that runs out of space half way fails
// with an etcd panic or a kubelet that cannot start a container, far from
// the cause.
func checkDisk(dir string, nodes int, archive int64, shared bool) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("lab: free space of %s: %w", dir, err)
	}
	free := int64(st.Bavail) * st.Bsize
	need := diskNeed(nodes, archive, shared)
	if free < need {
		return fmt.Errorf("lab: %s has %s free, a lab of %d nodes needs about %s (the images, unpacked, and the nodes' containerd); free space (old lab directories are /tmp/cni-migrate-lab-*) or set TMPDIR to a larger file system",
			dir, gib(free), nodes, gib(need))
	}
	return nil
}

func gib(b int64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

// newestArchive is the size of the newest image archive in the cache, 0
// when there is none.
func newestArchive(cache string) int64 {
	old, _ := filepath.Glob(filepath.Join(cache, "datapath", "images", "lab-*.tar"))
	var size int64
	for _, o := range old {
		if st, err := os.Stat(o); err == nil && st.Size() > size {
			size = st.Size()
		}
	}
	return size
}

// prune removes what makes a halted node's directory large (its
// containerd's images and containers) and keeps its logs and the state a
// failure is read from. Only for a node whose init and namespace are gone.
func (n *Node) prune() error {
	d := filepath.Join(n.Dir, "fs", "var", "lib", "containerd")
	if err := os.RemoveAll(d); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("node %s: remove its containerd state: %w", n.Name, err)
	}
	return nil
}

// ownerFile in a lab's directory holds the PID of the process that ran it.
const ownerFile = "lab.owner"

// pruneStaleDirs prunes the nodes of every lab directory in parent whose
// owner is gone (after staleLabs removed its namespaces): a killed test's
// directory would otherwise keep about 3 GB per node.
func pruneStaleDirs(parent string) {
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		dir := filepath.Join(parent, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || processAlive(pid) {
			continue
		}
		nodes, _ := os.ReadDir(filepath.Join(dir, "nodes"))
		for _, nd := range nodes {
			n := &Node{Name: nd.Name(), Dir: filepath.Join(dir, "nodes", nd.Name())}
			_ = n.prune()
		}
	}
}
