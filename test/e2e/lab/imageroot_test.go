package lab

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestSeedContainerd(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	files := map[string]string{
		"io.containerd.content.v1.content/blobs/sha256/aa":        "blob",
		"io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs/x": "layer file",
		"io.containerd.snapshotter.v1.overlayfs/metadata.db":      "snapshots db",
		"io.containerd.metadata.v1.bolt/meta.db":                  "metadata db",
		imageRootStamp:                                            "fp\n",
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := seedContainerd(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		a, err := os.Stat(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.Stat(filepath.Join(dst, name))
		if err != nil {
			t.Fatalf("%s not seeded: %v", name, err)
		}
		got, _ := os.ReadFile(filepath.Join(dst, name))
		if string(got) != data {
			t.Errorf("%s = %q, want %q", name, got, data)
		}
		// The databases are the node's own, everything else is shared.
		if shared, db := os.SameFile(a, b), filepath.Ext(name) == ".db"; shared == db {
			t.Errorf("%s: hard link %v, want %v", name, shared, !db)
		}
	}
	// A write to the node's database leaves the image root's as it was.
	if err := os.WriteFile(filepath.Join(dst, "io.containerd.metadata.v1.bolt/meta.db"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(src, "io.containerd.metadata.v1.bolt/meta.db")); string(got) != "metadata db" {
		t.Errorf("the image root's meta.db changed with the node's: %q", got)
	}
}

func TestSeedContainerdFails(t *testing.T) {
	dst := t.TempDir()
	if err := os.WriteFile(filepath.Join(dst, "partial"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := seedContainerd(context.Background(), filepath.Join(t.TempDir(), "missing"), dst); err == nil {
		t.Fatal("seeding from a missing root: no error")
	}
	if entries, _ := os.ReadDir(dst); len(entries) != 0 {
		t.Errorf("after a failed seed the node's root holds %d entries, want none (it imports the archive itself)", len(entries))
	}
}
