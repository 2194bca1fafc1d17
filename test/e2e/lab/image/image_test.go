package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		in, full, repoTag string
		bad               bool
	}{
		{in: "lab.local/pause:1", full: "lab.local/pause:1", repoTag: "lab.local/pause:1"},
		{in: "lab.local/pause", full: "lab.local/pause:latest", repoTag: "lab.local/pause:latest"},
		{in: "flannel/flannel:v0.28.4", full: "docker.io/flannel/flannel:v0.28.4", repoTag: "flannel/flannel:v0.28.4"},
		{in: "busybox", full: "docker.io/library/busybox:latest", repoTag: "busybox:latest"},
		{in: "localhost:5000/x:1", full: "localhost:5000/x:1", repoTag: "localhost:5000/x:1"},
		{in: "lab.local/x@sha256:" + sha256Hex(nil), bad: true},
		{in: "", bad: true},
	} {
		full, err := FullName(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("FullName(%q) = %q, want an error", tc.in, full)
			}
			continue
		}
		if err != nil || full != tc.full {
			t.Errorf("FullName(%q) = %q, %v; want %q", tc.in, full, err, tc.full)
		}
		if rt, err := RepoTag(tc.in); err != nil || rt != tc.repoTag {
			t.Errorf("RepoTag(%q) = %q, %v; want %q", tc.in, rt, err, tc.repoTag)
		}
	}
}

// fixture makes a small rootfs and a file to add.
func fixture(t *testing.T) (string, string) {
	t.Helper()
	d := t.TempDir()
	root := filepath.Join(d, "rootfs")
	for _, p := range []string{"usr/bin", "etc", "proc/1", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("lab\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "proc/1/status"), []byte("skipped"), 0o644))
	must(t, os.Symlink("usr/bin", filepath.Join(root, "bin")))
	bin := filepath.Join(d, "tool")
	must(t, os.WriteFile(bin, []byte("#!/bin/sh\necho tool\n"), 0o755))
	return root, bin
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWriteArchive(t *testing.T) {
	root, bin := fixture(t)
	layers := []Layer{
		{Dir: root},
		{Files: map[string]string{"/usr/local/bin/tool": bin}, Symlinks: map[string]string{"/tool": "/usr/local/bin/tool"}},
	}
	images := []Image{
		{Names: []string{"lab.local/a:1"}, Entrypoint: []string{"/tool"}},
		{Names: []string{"lab.local/b:1", "lab.local/b:latest"}, Cmd: []string{"sh"}, WorkingDir: "/w"},
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	must(t, WriteArchive(a, layers, images))
	must(t, WriteArchive(b, layers, images))
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Error("two archives of the same inputs differ")
	}

	files := untar(t, bytes.NewReader(ab))
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	must(t, json.Unmarshal(files["manifest.json"], &manifest))
	if len(manifest) != 2 {
		t.Fatalf("manifest has %d images, want 2", len(manifest))
	}
	if got := manifest[1].RepoTags; !slices.Equal(got, []string{"lab.local/b:1", "lab.local/b:latest"}) {
		t.Errorf("RepoTags = %v", got)
	}
	if !slices.Equal(manifest[0].Layers, manifest[1].Layers) || len(manifest[0].Layers) != 2 {
		t.Errorf("images must share the 2 layers: %v %v", manifest[0].Layers, manifest[1].Layers)
	}
	var cfg struct {
		Config struct {
			Entrypoint []string
			Env        []string
		} `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	must(t, json.Unmarshal(files[manifest[0].Config], &cfg))
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/tool"}) || len(cfg.Config.Env) == 0 {
		t.Errorf("config = %+v", cfg.Config)
	}
	for i, l := range manifest[0].Layers {
		if want := "sha256:" + sha256Hex(files[l]); cfg.RootFS.DiffIDs[i] != want {
			t.Errorf("layer %s: diff_id %s, want %s", l, cfg.RootFS.DiffIDs[i], want)
		}
	}

	base := untar(t, bytes.NewReader(files[manifest[0].Layers[0]]))
	if string(base["etc/hostname"]) != "lab\n" {
		t.Errorf("rootfs layer lacks etc/hostname: %v", keys(base))
	}
	if _, ok := base["proc/1/status"]; ok {
		t.Error("the contents of /proc must be left out")
	}
	if _, ok := base["proc/"]; !ok {
		t.Errorf("/proc itself must be kept: %v", keys(base))
	}
	top := untar(t, bytes.NewReader(files[manifest[0].Layers[1]]))
	if string(top["usr/local/bin/tool"]) != "#!/bin/sh\necho tool\n" {
		t.Errorf("file layer: %v", keys(top))
	}
}

// TestImageLayers: an image made of some of the archive's layers gets just
// those (and its user); one layer used by two images is stored once.
func TestImageLayers(t *testing.T) {
	root, bin := fixture(t)
	layers := []Layer{
		{Dir: root},
		{Files: map[string]string{"/usr/local/bin/tool": bin}},
		{Files: map[string]string{"/opt/cni/bin/other": bin}},
	}
	images := []Image{
		{Names: []string{"lab.local/all:1"}},
		{Names: []string{"lab.local/other:1"}, Layers: []int{0, 2}, User: "999"},
	}
	a := filepath.Join(t.TempDir(), "a.tar")
	must(t, WriteArchive(a, layers, images))
	ab, _ := os.ReadFile(a)
	files := untar(t, bytes.NewReader(ab))
	var manifest []struct {
		Config string
		Layers []string
	}
	must(t, json.Unmarshal(files["manifest.json"], &manifest))
	if len(manifest) != 2 || len(manifest[0].Layers) != 3 || len(manifest[1].Layers) != 2 {
		t.Fatalf("manifest = %+v, want 3 layers and 2", manifest)
	}
	if manifest[1].Layers[0] != manifest[0].Layers[0] || manifest[1].Layers[1] != manifest[0].Layers[2] {
		t.Errorf("image other has layers %v, want layers 0 and 2 of %v", manifest[1].Layers, manifest[0].Layers)
	}
	var cfg struct {
		Config struct{ User string } `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	must(t, json.Unmarshal(files[manifest[1].Config], &cfg))
	if cfg.Config.User != "999" || len(cfg.RootFS.DiffIDs) != 2 {
		t.Errorf("config of other = %+v", cfg)
	}
	n := 0
	for name := range files {
		if filepath.Ext(name) == ".tar" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d layer files in the archive, want 3", n)
	}
	if err := WriteArchive(a, layers, []Image{{Names: []string{"lab.local/x:1"}, Layers: []int{3}}}); err == nil {
		t.Error("an image naming a missing layer must be refused")
	}
}

func TestWriteArchiveErrors(t *testing.T) {
	root, bin := fixture(t)
	for name, tc := range map[string]struct {
		layers []Layer
		images []Image
	}{
		"path below a symlink": {[]Layer{{Dir: root, Files: map[string]string{"/bin/tool": bin}}}, []Image{{Names: []string{"lab.local/a:1"}}}},
		"missing file":         {[]Layer{{Files: map[string]string{"/x": filepath.Join(root, "nope")}}}, []Image{{Names: []string{"lab.local/a:1"}}}},
		"relative path":        {[]Layer{{Files: map[string]string{"x": bin}}}, []Image{{Names: []string{"lab.local/a:1"}}}},
		"digest name":          {[]Layer{{Files: map[string]string{"/x": bin}}}, []Image{{Names: []string{"lab.local/a@sha256:" + sha256Hex(nil)}}}},
	} {
		if err := WriteArchive(filepath.Join(t.TempDir(), "x.tar"), tc.layers, tc.images); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFingerprint(t *testing.T) {
	root, bin := fixture(t)
	layers := []Layer{{Dir: root}, {Files: map[string]string{"/tool": bin}}}
	images := []Image{{Names: []string{"lab.local/a:1"}}}
	f1, err := Fingerprint(layers, images)
	must(t, err)
	f2, _ := Fingerprint(layers, images)
	if f1 != f2 {
		t.Error("fingerprint is not stable")
	}
	f3, _ := Fingerprint(layers, []Image{{Names: []string{"lab.local/a:2"}}})
	must(t, os.WriteFile(bin, []byte("#!/bin/sh\necho changed tool\n"), 0o755))
	f4, _ := Fingerprint(layers, images)
	if f3 == f1 || f4 == f1 {
		t.Error("fingerprint does not change with an image's name or a file's content")
	}
}

func untar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		b, err := io.ReadAll(tr)
		must(t, err)
		out[h.Name] = b
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
