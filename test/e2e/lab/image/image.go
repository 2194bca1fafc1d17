// Package image builds container images without a registry or Docker: it
// writes a docker-archive (the "docker save" format) that
// `ctr -n k8s.io images import FILE` accepts.
//
// The archive holds uncompressed layer tars named by their sha256, one config
// JSON per image (also named by its sha256) and a manifest.json. An image
// gets all of the archive's layers or those it names (Image.Layers); images
// differ in their config (entrypoint, cmd, env, working directory, user) and
// their layers, and containerd stores each layer once however many images
// use it.
//
// Layers are written deterministically: entries in sorted path order (parents
// before children), a fixed modification time and no user or group names, so
// the same inputs always give the same layer digests and the same archive
// bytes.
package image

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Layer is one filesystem layer.
//
// Its entries come from four sources, applied in this order, a later source
// replacing an earlier one's entry at the same path: Dir, Trees, Files,
// Symlinks. Replacing a directory that has entries below it with a
// non-directory, or adding a path below a non-directory (e.g. below the
// symlink /bin -> usr/bin of a merged-/usr rootfs), is an error.
type Layer struct {
	// Dir, if set, is a directory on disk whose whole tree becomes the layer
	// (Dir/usr/bin/x is /usr/bin/x in the image). The contents of Dir/dev,
	// Dir/proc, Dir/sys are left out (the directories themselves kept).
	// Ownership, mode and symlinks are kept as they are on disk.
	Dir string
	// Files maps an absolute path in the image to a file on disk, added
	// after Dir (mode kept; parent directories created 0755 root:root).
	// The disk path is followed if it is a symlink and must then be a
	// regular file; the file is owned by root:root in the image (like a
	// Dockerfile COPY).
	Files map[string]string
	// Trees maps an absolute directory in the image to a directory on disk
	// whose tree is copied there (e.g. "/var/lib/cilium/bpf" -> ".../bpf").
	// Modes and symlinks are kept; entries are owned by root:root in the
	// image (like a Dockerfile COPY).
	Trees map[string]string
	// Symlinks maps an absolute path in the image to a link target.
	Symlinks map[string]string
}

// Image is one image config, with all layers of the archive or those that
// Layers picks.
type Image struct {
	// Names are the image's references, e.g.
	// "docker.io/flannel/flannel:v0.28.4" or "lab.local/pause:1". A name
	// without a tag gets ":latest"; digests are not allowed.
	Names []string
	// Entrypoint is the config's Entrypoint.
	Entrypoint []string
	// Cmd is the config's Cmd.
	Cmd []string
	// Env is the config's Env; it defaults to DefaultEnv when empty.
	Env []string
	// WorkingDir is the config's WorkingDir.
	WorkingDir string
	// User is the config's User ("" runs as root).
	User string
	// Layers are the indexes of the archive's layers this image is made
	// of, lowest first; nil means all of them in order.
	Layers []int
}

// DefaultEnv is the environment of an Image whose Env is empty.
var DefaultEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// epoch is the modification time of every entry of a layer and the creation
// time of every image.
var epoch = time.Unix(0, 0).UTC()

// formatVersion changes whenever the bytes WriteArchive writes for the same
// inputs change, so that Fingerprint changes too.
const formatVersion = "cni-migrate/image v2"

// Entry kinds.
const (
	kindDir = iota
	kindFile
	kindSymlink
)

// entry is one path of a layer, before it is written.
type entry struct {
	name   string // clean, relative to the root, no leading or trailing slash
	kind   int
	src    string // disk path of a file, or of a directory ("" if synthesised)
	target string // symlink target
	mode   int64  // permission bits plus setuid, setgid, sticky
	uid    int
	gid    int
	size   int64
	mtime  int64 // nanoseconds, of the disk source (for Fingerprint only)
	dev    uint64
	ino    uint64
	nlink  uint64
	// group is the ownership policy of the source (0: as on disk, 1:
	// root:root); only entries of the same policy become hard links of one
	// another.
	group int
}

// inode identifies a file on disk with its ownership policy: a second entry
// of the same inode becomes a hard link to the first.
type inode struct {
	dev, ino uint64
	group    int
}

// layerIndex is the set of entries of one layer.
type layerIndex struct {
	entries map[string]*entry
}

// buildIndex walks the sources of l and returns the layer's entries in the
// order they are written.
func buildIndex(l Layer) ([]*entry, error) {
	ix := &layerIndex{entries: map[string]*entry{}}
	if l.Dir != "" {
		if err := ix.addTree("", l.Dir, false, true); err != nil {
			return nil, err
		}
	}
	for _, dst := range sortedKeys(l.Trees) {
		name, err := imagePath(dst)
		if err != nil {
			return nil, fmt.Errorf("image: Trees: %w", err)
		}
		if err := ix.addTree(name, l.Trees[dst], true, false); err != nil {
			return nil, err
		}
	}
	for _, dst := range sortedKeys(l.Files) {
		name, err := imagePath(dst)
		if err != nil {
			return nil, fmt.Errorf("image: Files: %w", err)
		}
		if name == "" {
			return nil, fmt.Errorf("image: Files: %q is the root directory", dst)
		}
		src := l.Files[dst]
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("image: Files[%q]: %w", dst, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("image: Files[%q]: %s is not a regular file", dst, src)
		}
		e := fromInfo(name, src, fi, true)
		if err := ix.put(e); err != nil {
			return nil, err
		}
	}
	for _, dst := range sortedKeys(l.Symlinks) {
		name, err := imagePath(dst)
		if err != nil {
			return nil, fmt.Errorf("image: Symlinks: %w", err)
		}
		if name == "" {
			return nil, fmt.Errorf("image: Symlinks: %q is the root directory", dst)
		}
		if l.Symlinks[dst] == "" {
			return nil, fmt.Errorf("image: Symlinks[%q]: empty target", dst)
		}
		if err := ix.put(&entry{name: name, kind: kindSymlink, target: l.Symlinks[dst], mode: 0o777, group: 1}); err != nil {
			return nil, err
		}
	}
	out := make([]*entry, 0, len(ix.entries))
	for _, e := range ix.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return pathLess(out[i].name, out[j].name) })
	return out, nil
}

// addTree adds the tree of the disk directory src at name ("" is the root).
// rootOwned makes every entry root:root; skipSpecial leaves out the contents
// of dev, proc and sys directly below src.
func (ix *layerIndex) addTree(name, src string, rootOwned, skipSpecial bool) error {
	root, err := filepath.EvalSymlinks(src)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("image: %s is not a directory", src)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		m := fi.Mode()
		switch {
		case m.IsDir(), m.IsRegular(), m&fs.ModeSymlink != 0:
		default:
			return nil // sockets, FIFOs, device nodes
		}
		full := path.Join(name, rel)
		if full != "" {
			e := fromInfo(full, p, fi, rootOwned)
			if e.kind == kindSymlink {
				if e.target, err = os.Readlink(p); err != nil {
					return fmt.Errorf("image: %w", err)
				}
			}
			if err := ix.put(e); err != nil {
				return err
			}
		}
		if skipSpecial && m.IsDir() && (rel == "dev" || rel == "proc" || rel == "sys") {
			return fs.SkipDir
		}
		return nil
	})
}

// put adds e, replacing an entry at the same path and creating missing parent
// directories 0755 root:root.
func (ix *layerIndex) put(e *entry) error {
	if old, ok := ix.entries[e.name]; ok && old.kind == kindDir && e.kind != kindDir {
		prefix := e.name + "/"
		for n := range ix.entries {
			if strings.HasPrefix(n, prefix) {
				return fmt.Errorf("image: /%s: a non-directory would replace a directory with entries (/%s)", e.name, n)
			}
		}
	}
	for dir := path.Dir(e.name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		p, ok := ix.entries[dir]
		if !ok {
			ix.entries[dir] = &entry{name: dir, kind: kindDir, mode: 0o755, group: 1}
			continue
		}
		if p.kind != kindDir {
			return fmt.Errorf("image: /%s: parent /%s is not a directory in the layer", e.name, dir)
		}
		break // its own parents were created with it
	}
	ix.entries[e.name] = e
	return nil
}

// fromInfo makes the entry of a directory, regular file or symlink on disk
// (without the symlink's target).
func fromInfo(name, src string, fi fs.FileInfo, rootOwned bool) *entry {
	e := &entry{name: name, src: src, mtime: fi.ModTime().UnixNano()}
	m := fi.Mode()
	switch {
	case m.IsDir():
		e.kind = kindDir
	case m&fs.ModeSymlink != 0:
		e.kind = kindSymlink
	default:
		e.kind = kindFile
		e.size = fi.Size()
	}
	e.mode = int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		e.mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		e.mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		e.mode |= 0o1000
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.dev, e.ino, e.nlink = uint64(st.Dev), st.Ino, uint64(st.Nlink)
		if !rootOwned {
			e.uid, e.gid = int(st.Uid), int(st.Gid)
		}
	}
	if rootOwned {
		e.group = 1
	}
	return e
}

// imagePath turns an absolute image path into an entry name ("" for "/").
func imagePath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", fmt.Errorf("%q has a \"..\" element", p)
		}
	}
	return strings.TrimPrefix(path.Clean(p), "/"), nil
}

// pathLess orders paths component by component: "a" < "a/b" < "a-b".
func pathLess(a, b string) bool {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] == b[i] {
			continue
		}
		if a[i] == '/' {
			return true
		}
		if b[i] == '/' {
			return false
		}
		return a[i] < b[i]
	}
	return len(a) < len(b)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeLayer writes the tar of entries to w.
func writeLayer(w io.Writer, entries []*entry) error {
	links := map[inode]string{}
	buf := make([]byte, 1<<20)
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: epoch,
		}
		switch e.kind {
		case kindDir:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case kindSymlink:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.target
		case kindFile:
			if e.nlink > 1 {
				k := inode{e.dev, e.ino, e.group}
				if first, ok := links[k]; ok {
					hdr.Typeflag = tar.TypeLink
					hdr.Linkname = first
					if err := tw.WriteHeader(hdr); err != nil {
						return fmt.Errorf("image: /%s: %w", e.name, err)
					}
					continue
				}
				links[k] = e.name
			}
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.size
			if c, ok := capability(e.src); ok {
				hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": c}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("image: /%s: %w", e.name, err)
		}
		if e.kind == kindFile {
			if err := copyFile(tw, e, buf); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// copyFile copies the contents of the file of e, which must still have the
// size it had when it was indexed.
func copyFile(w io.Writer, e *entry, buf []byte) error {
	f, err := os.Open(e.src)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	n, err := io.CopyBuffer(w, io.LimitReader(f, e.size), buf)
	if err != nil {
		return fmt.Errorf("image: %s: %w", e.src, err)
	}
	if n != e.size {
		return fmt.Errorf("image: %s: changed while being written (size %d, was %d)", e.src, n, e.size)
	}
	return nil
}

// capability returns the security.capability extended attribute of the file
// at p, if it has one.
func capability(p string) (string, bool) {
	if p == "" {
		return "", false
	}
	b := make([]byte, 256)
	n, err := syscall.Getxattr(p, "security.capability", b)
	if err != nil || n <= 0 {
		return "", false
	}
	return string(b[:n]), true
}

// Docker image config, as much of it as WriteArchive writes.
type (
	imageConfig struct {
		Architecture string        `json:"architecture"`
		OS           string        `json:"os"`
		Created      time.Time     `json:"created"`
		Config       containerConf `json:"config"`
		RootFS       rootFS        `json:"rootfs"`
		History      []history     `json:"history"`
	}
	containerConf struct {
		Env        []string `json:"Env,omitempty"`
		Entrypoint []string `json:"Entrypoint,omitempty"`
		Cmd        []string `json:"Cmd,omitempty"`
		WorkingDir string   `json:"WorkingDir,omitempty"`
		User       string   `json:"User,omitempty"`
	}
	rootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	}
	history struct {
		Created   time.Time `json:"created"`
		CreatedBy string    `json:"created_by"`
		Comment   string    `json:"comment,omitempty"`
	}
	manifestEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
)

// WriteArchive writes a docker-archive with the layers (in order, lowest
// first) and the images to path (atomically: temp file + rename).
//
// Each layer is streamed into a temporary file next to path while its sha256
// (its diff ID) is computed, then copied into the archive, so no layer is held
// in memory; the directory of path needs room for the archive plus its
// largest layer. Images whose configs are identical share one manifest entry.
func WriteArchive(path string, layers []Layer, images []Image) (err error) {
	if len(layers) == 0 {
		return errors.New("image: no layers")
	}
	if len(images) == 0 {
		return errors.New("image: no images")
	}
	// Check the images before the (long) layers are written.
	tags := make([][]string, len(images))
	for i, im := range images {
		if len(im.Names) == 0 {
			return fmt.Errorf("image: image %d has no names", i)
		}
		for _, l := range im.Layers {
			if l < 0 || l >= len(layers) {
				return fmt.Errorf("image: image %s: no layer %d (%d layers)", im.Names[0], l, len(layers))
			}
		}
		for _, n := range im.Names {
			t, err := RepoTag(n)
			if err != nil {
				return err
			}
			tags[i] = append(tags[i], t)
		}
	}
	dir := filepath.Dir(path)
	out, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	bw := bufio.NewWriterSize(out, 1<<20)
	tw := tar.NewWriter(bw)

	var diffIDs, layerFiles []string
	seen := map[string]bool{}
	for i, l := range layers {
		sum, err := addLayer(tw, dir, l, seen)
		if err != nil {
			return fmt.Errorf("%w (layer %d)", err, i)
		}
		diffIDs = append(diffIDs, "sha256:"+sum)
		layerFiles = append(layerFiles, sum+".tar")
	}

	var hist []history
	for i := range layers {
		hist = append(hist, history{Created: epoch, CreatedBy: fmt.Sprintf("%s: layer %d", formatVersion, i)})
	}
	var manifest []*manifestEntry
	byConfig := map[string]*manifestEntry{}
	for i, im := range images {
		picked := im.Layers
		if picked == nil {
			for l := range layers {
				picked = append(picked, l)
			}
		}
		var ids, files []string
		var h []history
		for _, l := range picked {
			ids, files, h = append(ids, diffIDs[l]), append(files, layerFiles[l]), append(h, hist[l])
		}
		b, err := json.Marshal(configOf(im, ids, h))
		if err != nil {
			return err
		}
		name := sha256Hex(b) + ".json"
		if m, ok := byConfig[name]; ok {
			m.RepoTags = appendNew(m.RepoTags, tags[i]...)
			continue
		}
		if err := addFile(tw, name, b); err != nil {
			return err
		}
		m := &manifestEntry{Config: name, RepoTags: appendNew(nil, tags[i]...), Layers: files}
		byConfig[name] = m
		manifest = append(manifest, m)
	}
	b, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := addFile(tw, "manifest.json", b); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := out.Chmod(0o644); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := os.Rename(out.Name(), path); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}

// addLayer writes the tar of l to a temporary file in dir, computing its
// sha256, then adds it to the archive as <sha256>.tar (once: a layer equal to
// an earlier one is not added again).
func addLayer(tw *tar.Writer, dir string, l Layer, seen map[string]bool) (string, error) {
	entries, err := buildIndex(l)
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".layer-*.tar.tmp")
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, h), 1<<20)
	if err := writeLayer(bw, entries); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if seen[sum] {
		return sum, nil
	}
	seen[sum] = true
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	if err := tw.WriteHeader(archiveHeader(sum+".tar", size)); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	if _, err := io.CopyBuffer(tw, struct{ io.Reader }{tmp}, make([]byte, 1<<20)); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	return sum, nil
}

func addFile(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(archiveHeader(name, int64(len(b)))); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}

func archiveHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch}
}

func configOf(im Image, diffIDs []string, hist []history) imageConfig {
	env := im.Env
	if len(env) == 0 {
		env = DefaultEnv
	}
	return imageConfig{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      epoch,
		Config:       containerConf{Env: env, Entrypoint: im.Entrypoint, Cmd: im.Cmd, WorkingDir: im.WorkingDir, User: im.User},
		RootFS:       rootFS{Type: "layers", DiffIDs: diffIDs},
		History:      hist,
	}
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		dup := false
		for _, l := range list {
			dup = dup || l == it
		}
		if !dup {
			list = append(list, it)
		}
	}
	return list
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Fingerprint returns a hash of the inputs of WriteArchive: the path, type,
// size, modification time, mode, ownership and link target of every entry the
// layers' sources give (the files are not read), and the image configs. A
// caller can skip rewriting an archive whose inputs' fingerprint did not
// change. It is a hex sha256 (64 characters).
func Fingerprint(layers []Layer, images []Image) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", formatVersion)
	for i, l := range layers {
		entries, err := buildIndex(l)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "layer %d %d\n", i, len(entries))
		first := map[inode]string{}
		for _, e := range entries {
			// Hash the hard-link structure, not the inode numbers, so that
			// an identical copy of a tree has the same fingerprint.
			link := ""
			if e.kind == kindFile && e.nlink > 1 {
				k := inode{e.dev, e.ino, e.group}
				if f, ok := first[k]; ok {
					link = f
				} else {
					first[k] = e.name
				}
			}
			fmt.Fprintf(h, "%q %d %q %q %q %o %d %d %d %d %d\n",
				e.name, e.kind, e.src, e.target, link, e.mode, e.uid, e.gid, e.size, e.mtime, e.group)
		}
	}
	for _, im := range images {
		b, err := json.Marshal(struct {
			Image
			Arch string
		}{im, runtime.GOARCH})
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "image %s\n", b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
