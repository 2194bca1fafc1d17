package lab

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// A node's containerd starts from the lab's images already imported: the
// lab imports the image archive once into a containerd root of its own
// (imageRoot, kept in the cache beside the archive) and each node's
// /var/lib/containerd starts as a hard-linked copy of it. Importing the
// 1.5 GB archive in every node at its first boot took 45 to 76 s per lab
// on 2 cores (the nodes import at once), and kept the layers twice on
// every node's disk; a copy of links takes about a second and shares them.
// Containerd never writes a committed snapshot or a content blob in place
// (a container writes to a snapshot of its own, a removal unlinks), so
// shared files stay right; its bolt databases (*.db) are written, so each
// node gets copies of those.

// imageRootStamp in a containerd root holds the fingerprint of the image
// archive imported into it; the nodes' init script imports the archive
// again when it differs (or is missing).
const imageRootStamp = ".lab-images"

// imageRootDir is where the containerd root of an image archive is kept.
func imageRootDir(archive string) string { return strings.TrimSuffix(archive, ".tar") + ".containerd" }

// imageRoot returns a containerd root with archive imported (stamped with
// fp), importing it first when the cache has none. Roots of other
// archives of its kind are removed with their archives (buildImages).
func imageRoot(ctx context.Context, archive, fp, scratch string, logf func(string, ...any)) (string, error) {
	root := imageRootDir(archive)
	if b, err := os.ReadFile(filepath.Join(root, imageRootStamp)); err == nil && strings.TrimSpace(string(b)) == fp {
		return root, nil
	}
	t0 := time.Now()
	tmp := root + ".tmp"
	for _, d := range []string{root, tmp} {
		if err := os.RemoveAll(d); err != nil {
			return "", err
		}
	}
	run := filepath.Join(scratch, "image-root")
	if err := os.MkdirAll(run, 0o700); err != nil {
		return "", err
	}
	defer os.RemoveAll(run)
	sock := filepath.Join(run, "containerd.sock")
	cfg := filepath.Join(run, "containerd.toml")
	// Only what an import needs: no CRI (it would start a CNI and
	// sandboxes), no /opt plugin (it writes the host's /opt/containerd).
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt"]
[grpc]
  address = %q
`, tmp, filepath.Join(run, "state"), sock)), 0o644); err != nil {
		return "", err
	}
	log, err := os.Create(filepath.Join(scratch, "image-root.log"))
	if err != nil {
		return "", err
	}
	defer log.Close()
	// Its own mount namespace: the snapshotter's mounts while it unpacks
	// never show in the host's.
	cd := exec.Command("unshare", "--mount", "--propagation", "private", "containerd", "--config", cfg)
	cd.Stdout, cd.Stderr = log, log
	if err := cluster.StartAttached(cd); err != nil {
		return "", fmt.Errorf("lab: start containerd for the image root: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cd.Wait() }()
	stop := func() {
		_ = syscall.Kill(-cd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 300 {
			stop()
			return "", fmt.Errorf("lab: containerd for the image root did not start in 30 s (log: %s)", log.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := cluster.RunCommand(ctx, exec.Command("ctr", "--address", sock, "-n", "k8s.io", "images", "import", archive))
	_, _ = log.Write(out)
	stop()
	if err != nil {
		return "", fmt.Errorf("lab: import %s into the image root: %w (log: %s)", archive, err, log.Name())
	}
	if err := os.WriteFile(filepath.Join(tmp, imageRootStamp), []byte(fp+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", err
	}
	logf("lab: imported the image archive into %s in %v", root, time.Since(t0).Round(time.Millisecond))
	return root, nil
}

// seedContainerd makes dst (a node's empty containerd root) a copy of the
// image root src: files hard-linked, the bolt databases copied. It
// returns an error when src and dst are on different file systems; dst is
// then left empty and the node imports the archive itself.
func seedContainerd(ctx context.Context, src, dst string) error {
	if err := run(ctx, "cp", "-al", src+"/.", dst); err != nil {
		clearDir(dst)
		return fmt.Errorf("hard-link %s into %s: %w", src, dst, err)
	}
	err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".db") {
			return err
		}
		return unshareFile(p)
	})
	if err != nil {
		clearDir(dst)
		return fmt.Errorf("copy the databases of %s: %w", dst, err)
	}
	return nil
}

// unshareFile replaces a hard link by a copy of its own.
func unshareFile(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if err := copyFile(p, p+".copy", st.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(p+".copy", p)
}

func clearDir(d string) {
	entries, _ := os.ReadDir(d)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(d, e.Name()))
	}
}

// sameFS reports whether a and b are on one file system (hard links
// between them work).
func sameFS(a, b string) bool {
	var sa, sb syscall.Stat_t
	if syscall.Stat(a, &sa) != nil || syscall.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}
