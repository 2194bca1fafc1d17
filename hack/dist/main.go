// Command dist packs the cross-compiled plugin binaries into the archives
// krew installs from, and writes their sha256 sums (see `make dist`).
//
//	go run ./hack/dist -in _out/dist -out dist -license LICENSE \
//	    -completion cmd/kubectl-cni_migrate/kubectl_complete-cni_migrate \
//	    -mtime 1700000000 linux/amd64 windows/amd64 ...
//
// For each os/arch it reads IN/<os>_<arch>/kubectl-cni_migrate (.exe on
// Windows) and writes OUT/kubectl-cni_migrate_<os>_<arch>.tar.gz (.zip on
// Windows) holding the binary, LICENSE and, except on Windows, the shell
// completion helper, all at the top level where the krew manifest's `files`
// expect them. Entries are sorted by name and carry fixed metadata (mtime,
// owner 0:0, modes 0755/0644), and gzip writes no name or time, so the same
// binaries always give the same archives.
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Plugin is the binary's name without extension.
const Plugin = "kubectl-cni_migrate"

// SumsFile is the name of the sha256 sums file in the output directory, in
// the format of `sha256sum` (check with `sha256sum -c`).
const SumsFile = "sha256sums.txt"

// Platform is one GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

// ParsePlatform parses "os/arch".
func ParsePlatform(s string) (Platform, error) {
	osName, arch, ok := strings.Cut(s, "/")
	if !ok || osName == "" || arch == "" || strings.Contains(arch, "/") {
		return Platform{}, fmt.Errorf("platform %q: want os/arch, e.g. linux/amd64", s)
	}
	return Platform{OS: osName, Arch: arch}, nil
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Windows reports whether the platform is Windows (zip, .exe).
func (p Platform) Windows() bool { return p.OS == "windows" }

// BinaryName is the plugin binary's file name on the platform.
func (p Platform) BinaryName() string {
	if p.Windows() {
		return Plugin + ".exe"
	}
	return Plugin
}

// ArchiveName is the archive's file name, as the krew manifest refers to it.
func (p Platform) ArchiveName() string {
	ext := ".tar.gz"
	if p.Windows() {
		ext = ".zip"
	}
	return Plugin + "_" + p.OS + "_" + p.Arch + ext
}

// Entry is one file in an archive.
type Entry struct {
	Name string
	Mode os.FileMode
	Data []byte
}

// Inputs are the files that go into every archive besides the binary.
type Inputs struct {
	License    []byte
	Completion []byte // unix archives only; nil leaves it out
	MTime      time.Time
}

// Entries returns the sorted entries of the platform's archive.
func Entries(p Platform, binary []byte, in Inputs) []Entry {
	es := []Entry{
		{Name: p.BinaryName(), Mode: 0o755, Data: binary},
		{Name: "LICENSE", Mode: 0o644, Data: in.License},
	}
	if !p.Windows() && in.Completion != nil {
		es = append(es, Entry{Name: "kubectl_complete-cni_migrate", Mode: 0o755, Data: in.Completion})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	return es
}

// TarGz writes entries as a gzip-compressed tar with fixed metadata.
func TarGz(w io.Writer, entries []Entry, mtime time.Time) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     e.Name,
			Mode:     int64(e.Mode.Perm()),
			Size:     int64(len(e.Data)),
			ModTime:  mtime.UTC(),
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(e.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// Zip writes entries as a zip with fixed metadata and Unix modes.
func Zip(w io.Writer, entries []Entry, mtime time.Time) error {
	zw := zip.NewWriter(w)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: mtime.UTC()}
		hdr.SetMode(e.Mode.Perm())
		f, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if _, err := f.Write(e.Data); err != nil {
			return err
		}
	}
	return zw.Close()
}

// Archive returns the platform's archive.
func Archive(p Platform, binary []byte, in Inputs) ([]byte, error) {
	var b bytes.Buffer
	entries := Entries(p, binary, in)
	var err error
	if p.Windows() {
		err = Zip(&b, entries, in.MTime)
	} else {
		err = TarGz(&b, entries, in.MTime)
	}
	return b.Bytes(), err
}

// Sums renders sha256 sums in the format of `sha256sum`, sorted by name.
func Sums(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		sum := sha256.Sum256(files[n])
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), n)
	}
	return b.String()
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("dist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "_out/dist", "directory with <os>_<arch>/"+Plugin+"[.exe]")
	out := fs.String("out", "dist", "directory the archives and "+SumsFile+" are written to")
	license := fs.String("license", "LICENSE", "license file put in every archive")
	completion := fs.String("completion", "", "shell completion helper put in the unix archives")
	mtime := fs.Int64("mtime", 0, "modification time of every entry, in seconds since the epoch (e.g. the commit time)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("no platform given (e.g. linux/amd64)")
	}
	inputs := Inputs{MTime: time.Unix(*mtime, 0)}
	var err error
	if inputs.License, err = os.ReadFile(*license); err != nil {
		return err
	}
	if *completion != "" {
		if inputs.Completion, err = os.ReadFile(*completion); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	archives := map[string][]byte{}
	for _, a := range fs.Args() {
		p, err := ParsePlatform(a)
		if err != nil {
			return err
		}
		bin, err := os.ReadFile(filepath.Join(*in, p.OS+"_"+p.Arch, p.BinaryName()))
		if err != nil {
			return fmt.Errorf("%s: %w (build it first: make dist)", p, err)
		}
		data, err := Archive(p, bin, inputs)
		if err != nil {
			return fmt.Errorf("%s: %w", p.ArchiveName(), err)
		}
		if err := os.WriteFile(filepath.Join(*out, p.ArchiveName()), data, 0o644); err != nil {
			return err
		}
		archives[p.ArchiveName()] = data
		fmt.Fprintf(stderr, "packed %s (%d bytes)\n", filepath.Join(*out, p.ArchiveName()), len(data))
	}
	return os.WriteFile(filepath.Join(*out, SumsFile), []byte(Sums(archives)), 0o644)
}

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dist:", err)
		}
		os.Exit(1)
	}
}
