package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fakeBins writes a binary per arch whose bytes name the arch.
func fakeBins(t *testing.T, arches ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, a := range arches {
		p := filepath.Join(dir, "linux_"+a, "kubectl-cni_migrate")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("binary for "+a), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startRegistry is an in-memory registry on 127.0.0.1 (httptest's).
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type entry struct {
	name string
	typ  byte
	mode int64
	uid  int
	mod  time.Time
	data string
}

func layerEntries(t *testing.T, img v1.Image) []entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want 1", len(layers), err)
	}
	mt, err := layers[0].MediaType()
	if err != nil || mt != types.OCILayer {
		t.Errorf("layer media type %q, %v; want %q", mt, err, types.OCILayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []entry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{h.Name, h.Typeflag, h.Mode, h.Uid, h.ModTime.UTC(), string(data)})
	}
}

func TestPushAndLayout(t *testing.T) {
	bins := fakeBins(t, "amd64", "arm64")
	reg := startRegistry(t)
	ref := reg + "/cni-migrate/kubectl-cni-migrate:v1.2.3"
	dir := filepath.Join(t.TempDir(), "oci")
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"-bin-dir", bins, "-version", "v1.2.3", "-revision", "abc123",
		"-mtime", "1700000000", "-push", ref, "-oci-layout", dir}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	printed := strings.TrimSpace(stdout.String())

	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	if d.String() != printed {
		t.Errorf("printed digest %s, the registry holds %s", printed, d)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %q", im.MediaType)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("%d manifests, want 2", len(im.Manifests))
	}
	mtime := time.Unix(1700000000, 0).UTC()
	for i, arch := range []string{"amd64", "arm64"} {
		desc := im.Manifests[i]
		if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != arch {
			t.Errorf("manifest %d platform %+v, want linux/%s", i, desc.Platform, arch)
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != arch || !cf.Created.Time.Equal(mtime) {
			t.Errorf("%s config: os %q arch %q created %v", arch, cf.OS, cf.Architecture, cf.Created)
		}
		c := cf.Config
		if strings.Join(c.Entrypoint, " ") != BinaryPath || c.User != User ||
			c.Labels["org.opencontainers.image.version"] != "v1.2.3" || c.Labels["org.opencontainers.image.revision"] != "abc123" {
			t.Errorf("%s config: %+v", arch, c)
		}
		want := []entry{
			{"usr/", tar.TypeDir, 0o755, 0, mtime, ""},
			{"usr/local/", tar.TypeDir, 0o755, 0, mtime, ""},
			{"usr/local/bin/", tar.TypeDir, 0o755, 0, mtime, ""},
			{"usr/local/bin/kubectl-cni_migrate", tar.TypeReg, 0o755, 0, mtime, "binary for " + arch},
		}
		got := layerEntries(t, img)
		if len(got) != len(want) {
			t.Fatalf("%s layer: %+v, want %+v", arch, got, want)
		}
		for j := range want {
			if got[j] != want[j] {
				t.Errorf("%s layer entry %d: %+v, want %+v", arch, j, got[j], want[j])
			}
		}
	}

	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	lidx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	lim, err := lidx.IndexManifest()
	if err != nil || len(lim.Manifests) != 1 || lim.Manifests[0].Digest.String() != printed ||
		lim.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v1.2.3" {
		t.Errorf("OCI layout holds %+v, %v; want the index %s named v1.2.3", lim, err, printed)
	}
}

func TestReproducible(t *testing.T) {
	bins := fakeBins(t, "amd64", "arm64")
	digest := func(mtime int64) string {
		idx, err := Build(Options{BinDir: bins, Platforms: []string{"linux/amd64", "linux/arm64"}, Version: "v1", MTime: time.Unix(mtime, 0)})
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	a, b, c := digest(1), digest(1), digest(2)
	if a != b {
		t.Errorf("same inputs, two digests: %s %s", a, b)
	}
	if a == c {
		t.Errorf("another -mtime, the same digest %s", a)
	}
}

func TestErrors(t *testing.T) {
	bins := fakeBins(t, "amd64")
	out := filepath.Join(t.TempDir(), "oci")
	notLayout := t.TempDir()
	if err := os.WriteFile(filepath.Join(notLayout, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-version", "v1", "-oci-layout", out}, "-bin-dir and -version are required"},
		{[]string{"-bin-dir", bins, "-oci-layout", out}, "-bin-dir and -version are required"},
		{[]string{"-bin-dir", bins, "-version", "v1"}, "give -push REF, -oci-layout DIR"},
		{[]string{"-bin-dir", bins, "-version", "v1", "-oci-layout", out}, "the linux/arm64 binary"},
		{[]string{"-bin-dir", bins, "-version", "v1", "-oci-layout", out, "-platforms", "darwin/arm64"}, "want linux/ARCH"},
		{[]string{"-bin-dir", bins, "-version", "v1", "-oci-layout", out, "-platforms", "linux"}, "want linux/ARCH"},
		{[]string{"-bin-dir", bins, "-version", "v1", "-platforms", "linux/amd64", "-push", "Bad Ref"}, "give REGISTRY/REPO:TAG"},
		{[]string{"-bin-dir", bins, "-version", "v1", "extra"}, "every input is a flag"},
		{[]string{"-bin-dir", bins, "-version", "v1", "-platforms", "linux/amd64", "-oci-layout", notLayout}, "holds files and no oci-layout"},
	} {
		err := run(context.Background(), tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(notLayout, "keep")); err != nil {
		t.Errorf("a directory that is no OCI layout lost its files: %v", err)
	}
}

// TestBinaryPathMatchesBridge: the image holds the plugin where the policy
// bridge's Deployment runs it, and where the lab's image of the plugin
// (which the lab's runs of the bridge prove) holds it.
func TestBinaryPathMatchesBridge(t *testing.T) {
	for file, want := range map[string]string{
		"../../plugin/policybridge/deploy.go": "const BinaryPath = \"" + BinaryPath + "\"",
		"../../test/e2e/lab/images.go":        "l.Files[\"" + BinaryPath + "\"] = plugin",
	} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), want) {
			t.Errorf("%s has no %s", file, want)
		}
	}
}

// TestRealBinary runs the plugin out of the image, as a node would: the
// binary make test-image built for this machine (IMAGE_TEST_BIN_DIR) is
// pushed in an image of this platform, pulled back by platform, unpacked
// and run (version -o json).
func TestRealBinary(t *testing.T) {
	bins := os.Getenv("IMAGE_TEST_BIN_DIR")
	if bins == "" {
		t.Skip("IMAGE_TEST_BIN_DIR not set (make test-image sets it)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the image's binaries are linux ones")
	}
	version := os.Getenv("IMAGE_TEST_VERSION")
	reg := startRegistry(t)
	ref := reg + "/cni-migrate/kubectl-cni-migrate:" + version
	if err := run(context.Background(), []string{"-bin-dir", bins, "-version", version, "-platforms", "linux/" + runtime.GOARCH, "-push", ref}, io.Discard); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	if err != nil {
		t.Fatal(err)
	}
	var bin string
	for _, e := range layerEntries(t, img) {
		if "/"+e.name == BinaryPath {
			bin = filepath.Join(t.TempDir(), "kubectl-cni_migrate")
			if err := os.WriteFile(bin, []byte(e.data), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if bin == "" {
		t.Fatalf("no %s in the linux/%s image", BinaryPath, runtime.GOARCH)
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("%s version: %v", BinaryPath, err)
	}
	var v struct{ Version, Platform string }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out)
	}
	if v.Version != version || v.Platform != "linux/"+runtime.GOARCH {
		t.Errorf("the image's plugin says %+v, want version %s on linux/%s", v, version, runtime.GOARCH)
	}
}
