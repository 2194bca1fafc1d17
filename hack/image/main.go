// Command image builds the plugin's container image, the one that
// `kubectl cni-migrate policy-bridge --deploy` runs by default
// (ghcr.io/cni-migrate/kubectl-cni-migrate:VERSION), from the linux
// binaries of a release build, without Docker: an OCI image index with one
// image per platform, each a single layer holding the static binary at
// /usr/local/bin/kubectl-cni_migrate (its entrypoint), run as user 65532.
// It pushes the index to a registry (-push, credentials from the Docker
// config, as `docker login` leaves them) or writes it as an OCI layout
// directory (-oci-layout), and prints the index's digest.
//
//	go run . -bin-dir ../../_out/image-bin -version v1.2.3 -push ghcr.io/cni-migrate/kubectl-cni-migrate:v1.2.3
//
// The binaries are read from BIN-DIR/linux_ARCH/kubectl-cni_migrate, the
// layout of `make dist`'s build directory. Same binaries and -mtime, same
// digests: the layer's entries carry -mtime and no owner names, and the
// image's creation time is -mtime too.
//
// The tool is a module of its own so that go-containerregistry stays out of
// the plugin's go.mod.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BinaryPath is where the image holds the plugin; the policy bridge's
// Deployment runs it by this path (policybridge.BinaryPath, checked by
// TestBinaryPathMatchesBridge).
const BinaryPath = "/usr/local/bin/kubectl-cni_migrate"

// User is the image's user: nonroot, as the bridge's pod also asks
// (runAsUser 65532).
const User = "65532:65532"

// Options is what an image is built from.
type Options struct {
	// BinDir holds linux_ARCH/kubectl-cni_migrate for every platform.
	BinDir string
	// Platforms are "linux/ARCH" entries.
	Platforms []string
	// Version, Revision and Source go into the OCI labels.
	Version, Revision, Source string
	// MTime is the layer entries' and the image's time.
	MTime time.Time
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var o Options
	var platforms, push, ociLayout string
	var mtime int64
	fs.StringVar(&o.BinDir, "bin-dir", "", "directory holding linux_ARCH/kubectl-cni_migrate")
	fs.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated linux/ARCH platforms")
	fs.StringVar(&o.Version, "version", "", "the release's version (label org.opencontainers.image.version)")
	fs.StringVar(&o.Revision, "revision", "", "the commit (label org.opencontainers.image.revision)")
	fs.StringVar(&o.Source, "source", "https://github.com/cni-migrate/kubectl-cni-migrate", "the source repository (label org.opencontainers.image.source)")
	fs.Int64Var(&mtime, "mtime", 0, "the layer entries' and the image's time, in seconds since 1970 (SOURCE_DATE_EPOCH)")
	fs.StringVar(&push, "push", "", "push the index to this reference (REGISTRY/REPO:TAG)")
	fs.StringVar(&ociLayout, "oci-layout", "", "write the index to this OCI layout directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: every input is a flag", fs.Args())
	}
	if o.BinDir == "" || o.Version == "" {
		return errors.New("-bin-dir and -version are required (make image sets both)")
	}
	if push == "" && ociLayout == "" {
		return errors.New("nothing to do: give -push REF, -oci-layout DIR or both")
	}
	o.Platforms = strings.Split(platforms, ",")
	o.MTime = time.Unix(mtime, 0).UTC()
	idx, err := Build(o)
	if err != nil {
		return err
	}
	if ociLayout != "" {
		if err := clearLayout(ociLayout); err != nil {
			return err
		}
		// index.json names the image index by the version, as a
		// registry's tag would (skopeo copy oci:DIR:VERSION ...).
		p, err := layout.Write(ociLayout, empty.Index)
		if err == nil {
			err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": o.Version}))
		}
		if err != nil {
			return fmt.Errorf("writing the OCI layout %s: %w", ociLayout, err)
		}
	}
	if push != "" {
		ref, err := name.ParseReference(push, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("-push %q: %w (give REGISTRY/REPO:TAG)", push, err)
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("pushing %s: %w (log in to the registry first, e.g. docker login)", ref, err)
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, d)
	return err
}

// clearLayout removes an earlier OCI layout at dir, and refuses to remove
// a directory that holds anything else.
func clearLayout(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("-oci-layout %s holds files and no oci-layout: give a new directory or an earlier OCI layout", dir)
	}
	return os.RemoveAll(dir)
}

// Build makes the image index: one image per platform, in the order given.
func Build(o Options) (v1.ImageIndex, error) {
	if len(o.Platforms) == 0 {
		return nil, errors.New("no platform")
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		osName, arch, ok := strings.Cut(p, "/")
		if !ok || osName != "linux" || arch == "" || strings.Contains(arch, "/") {
			return nil, fmt.Errorf("platform %q: want linux/ARCH (the bridge runs on Linux nodes)", p)
		}
		bin := filepath.Join(o.BinDir, "linux_"+arch, "kubectl-cni_migrate")
		img, err := platformImage(o, arch, bin)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}},
		})
	}
	return idx, nil
}

func platformImage(o Options, arch, bin string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("the linux/%s binary: %w (build it first: make image builds every platform)", arch, err)
	}
	layerTar, err := binaryLayer(data, o.MTime)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: o.MTime}
	cf.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		User:       User,
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "kubectl-cni-migrate",
			"org.opencontainers.image.description": "kubectl cni-migrate: its policy bridge, run in the cluster by policy-bridge --deploy",
			"org.opencontainers.image.source":      o.Source,
			"org.opencontainers.image.version":     o.Version,
			"org.opencontainers.image.revision":    o.Revision,
			"org.opencontainers.image.licenses":    "Apache-2.0",
		},
	}
	cf.History = nil
	return mutate.ConfigFile(img, cf)
}

// binaryLayer is the layer's tar: the directories down to BinaryPath's and
// the binary, owned by root, mode 0755, with mtime.
func binaryLayer(data []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := strings.TrimPrefix(filepath.Dir(BinaryPath), "/")
	parts := strings.Split(dir, "/")
	for i := range parts {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: strings.Join(parts[:i+1], "/") + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(BinaryPath, "/"), Mode: 0o755, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(h); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
