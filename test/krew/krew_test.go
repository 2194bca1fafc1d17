// Package krew proves the krew distribution of kubectl cni-migrate with krew
// itself: the manifest rendered from the release archives passes krew's
// validate-krew-manifest (which installs every platform from the manifest's
// URLs), and `kubectl krew install --manifest --archive` installs a plugin
// that kubectl runs as `kubectl cni-migrate`, with the version it was built
// with and the completion helper the caveats talk about.
//
// Run it through `make test-krew` (part of `make test`), which packs the
// archives as make dist does (every platform's with this machine's binary,
// the only one run), builds krew and the manifest renderer and sets:
//
//	KREW_BIN_DIR            kubectl-krew and validate-krew-manifest
//	DIST_DIR                the archives of make dist
//	KREW_MANIFEST_RENDERER  hack/krewmanifest, built
//	KREW_TEMPLATE           krew/cni-migrate.yaml
//	PLUGIN_VERSION          the version the archives were built with
//	KUBECTL                 kubectl (default: from PATH)
package krew

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const plugin = "cni-migrate"

func mustEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run this test through `make test-krew`", name)
	}
	return v
}

// fileServer serves dir on 127.0.0.1 under /releases/VERSION/ and counts the
// downloads of each file.
type fileServer struct {
	URL       string
	mu        sync.Mutex
	downloads map[string]int
}

func serve(t *testing.T, dir, version string) *fileServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fileServer{URL: "http://" + ln.Addr().String() + "/releases/" + version, downloads: map[string]int{}}
	files := http.StripPrefix("/releases/"+version, http.FileServer(http.Dir(dir)))
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fs.mu.Lock()
			fs.downloads[path.Base(r.URL.Path)]++
			fs.mu.Unlock()
			files.ServeHTTP(w, r)
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return fs
}

func (fs *fileServer) count(name string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.downloads[name]
}

// runner runs commands with a controlled environment: a scratch HOME and
// KREW_ROOT, no KUBECONFIG, and PATH as given.
type runner struct {
	t   *testing.T
	env []string
}

func (r runner) run(name string, args ...string) (string, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = r.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r.t.Logf("$ %s %s (%v, err=%v)\n%s", filepath.Base(name), strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err, indent(out.String()))
	return out.String(), err
}

func (r runner) mustRun(name string, args ...string) string {
	r.t.Helper()
	out, err := r.run(name, args...)
	if err != nil {
		r.t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

func hostArchive() string {
	if runtime.GOOS == "windows" {
		return "kubectl-cni_migrate_windows_" + runtime.GOARCH + ".zip"
	}
	return "kubectl-cni_migrate_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
}

func TestKrewInstall(t *testing.T) {
	krewBin := mustEnv(t, "KREW_BIN_DIR")
	dist := mustEnv(t, "DIST_DIR")
	renderer := mustEnv(t, "KREW_MANIFEST_RENDERER")
	tmpl := mustEnv(t, "KREW_TEMPLATE")
	version := mustEnv(t, "PLUGIN_VERSION")
	kubectl := os.Getenv("KUBECTL")
	if kubectl == "" {
		kubectl = "kubectl"
	}
	kubectl, err := exec.LookPath(kubectl)
	if err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	archives, err := filepath.Glob(filepath.Join(dist, "kubectl-cni_migrate_*"))
	if err != nil || len(archives) != 5 {
		t.Fatalf("want the 5 archives of make dist in %s, got %v (%v)", dist, archives, err)
	}
	hostArch := filepath.Join(dist, hostArchive())
	if _, err := os.Stat(hostArch); err != nil {
		t.Fatalf("no archive for this machine: %v", err)
	}

	work := t.TempDir()
	krewRoot := filepath.Join(work, "krew")
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	// kubectl and sh from the system, krew as the kubectl plugin
	// kubectl-krew, the installed plugin from KREW_ROOT/bin first. Any
	// kubectl-cni_migrate installed on this machine is shadowed.
	pathList := strings.Join([]string{filepath.Join(krewRoot, "bin"), krewBin, filepath.Dir(kubectl), "/usr/local/bin", "/usr/bin", "/bin"}, string(os.PathListSeparator))
	r := runner{t: t, env: []string{
		"PATH=" + pathList, "HOME=" + home, "KREW_ROOT=" + krewRoot,
		"KREW_NO_UPGRADE_CHECK=1", "NO_COLOR=1", "KUBECONFIG=" + filepath.Join(home, "no-kubeconfig"),
	}}

	// 1. Render the manifest for archives served on 127.0.0.1. krew wants
	// the file named after the plugin.
	srv := serve(t, dist, version)
	manifest := filepath.Join(work, plugin+".yaml")
	r.mustRun(renderer, "-template", tmpl, "-version", version, "-dist", dist, "-base-url", srv.URL, "-o", manifest)
	rendered, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rendered manifest:\n%s", indent(string(rendered)))

	// 2. krew's own validator: structure, platform selectors, and an install
	// of every platform (KREW_OS/KREW_ARCH) downloaded from the uri, with a
	// check for the LICENSE.
	out := r.mustRun(filepath.Join(krewBin, "validate-krew-manifest"), "-manifest", manifest)
	for _, want := range []string{"structural validation OK", "all spec.platform[] items are used", "all 5 spec.platforms installed fine"} {
		if !strings.Contains(out, want) {
			t.Fatalf("validate-krew-manifest did not say %q", want)
		}
	}
	for _, a := range archives {
		if n := srv.count(filepath.Base(a)); n == 0 {
			t.Errorf("validate-krew-manifest never downloaded %s", filepath.Base(a))
		}
	}

	// 3. A checksum that does not match is refused: the sums are checked.
	bad := filepath.Join(work, "bad", plugin+".yaml")
	_ = os.MkdirAll(filepath.Dir(bad), 0o755)
	sha := regexp.MustCompile(`sha256: [0-9a-f]{64}`)
	if err := os.WriteFile(bad, sha.ReplaceAll(rendered, []byte("sha256: "+strings.Repeat("deadbeef", 8))), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := r.run(kubectl, "krew", "install", "--manifest="+bad, "--archive="+hostArch); err == nil || !strings.Contains(out, "checksum does not match") {
		t.Fatalf("krew did not refuse an archive whose sha256 does not match (%v):\n%s", err, out)
	}

	// 4. Install as the issue says: manifest plus local archive.
	before := srv.count(hostArchive())
	out = r.mustRun(kubectl, "krew", "install", "--manifest="+manifest, "--archive="+hostArch)
	for _, want := range []string{"Installed plugin: " + plugin, "kubectl cni-migrate plan", "kubectl_complete-cni_migrate", "rbac.yaml"} {
		if !strings.Contains(out, want) {
			t.Errorf("install output lacks %q (caveats)", want)
		}
	}
	if srv.count(hostArchive()) != before {
		t.Errorf("--archive install downloaded the archive")
	}
	store := filepath.Join(krewRoot, "store", plugin, version)
	for name, exec := range map[string]bool{"kubectl-cni_migrate": true, "kubectl_complete-cni_migrate": true, "LICENSE": false} {
		fi, err := os.Stat(filepath.Join(store, name))
		if err != nil {
			t.Fatalf("installed files: %v", err)
		}
		if got := fi.Mode().Perm()&0o111 != 0; got != exec {
			t.Errorf("%s: mode %v", name, fi.Mode())
		}
	}
	// `krew list` and `uninstall` want a local index, a git clone of
	// krew-index that this machine cannot fetch: an empty repository will do.
	r.mustRun("git", "init", "-q", filepath.Join(krewRoot, "index", "default"))
	// Not on a terminal, krew list prints INDEX/NAME only.
	if out := r.mustRun(kubectl, "krew", "list"); !regexp.MustCompile(`(?m)^(\S+/)?` + plugin + `(\s|$)`).MatchString(out) {
		t.Errorf("krew list does not show %s", plugin)
	}

	// 5. kubectl runs the installed plugin, which reports the release's version.
	out = r.mustRun(kubectl, "cni-migrate", "version")
	if want := "kubectl cni-migrate " + version + " ("; !strings.HasPrefix(out, want) {
		t.Fatalf("version: %q, want prefix %q", out, want)
	}
	if !strings.Contains(out, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version does not name the platform: %q", out)
	}
	if out, err := r.run(kubectl, "plugin", "list"); err != nil || !strings.Contains(out, filepath.Join(krewRoot, "bin", "kubectl-cni_migrate")) {
		t.Errorf("kubectl plugin list: %v", err)
	}

	// 6. The completion set-up the caveats describe, run as written, makes
	// kubectl (>= 1.26) complete the plugin's arguments.
	cp := regexp.MustCompile(`(?m)^\s*(cp "\$\{KREW_ROOT.*\\\n\s*"\$\{KREW_ROOT.*)$`).FindStringSubmatch(string(rendered))
	if cp == nil {
		t.Fatalf("no cp command for kubectl_complete-cni_migrate in the caveats")
	}
	r.mustRun("sh", "-c", cp[1])
	out = r.mustRun(kubectl, "__complete", "cni-migrate", "")
	for _, want := range []string{"plan", "node", "rollout", "finalize", "version"} {
		if !regexp.MustCompile(`(?m)^` + want + `(\t|$)`).MatchString(out) {
			t.Errorf("kubectl __complete cni-migrate '' lacks %s", want)
		}
	}
	out = r.mustRun(kubectl, "__complete", "cni-migrate", "plan", "--cilium-version", "")
	if !regexp.MustCompile(`(?m)^1\.20\.\d+$`).MatchString(out) {
		t.Errorf("no Cilium version completed")
	}

	// 7. Uninstall, then install from the manifest's uri (downloaded from
	// the file server), as `kubectl krew install` from an index would.
	r.mustRun(kubectl, "krew", "uninstall", plugin)
	if _, err := os.Lstat(filepath.Join(krewRoot, "bin", "kubectl-cni_migrate")); !os.IsNotExist(err) {
		t.Fatalf("kubectl-cni_migrate still linked after uninstall: %v", err)
	}
	// The caveats say to remove the copied helper with the plugin. (Left
	// in a krew bin directory without any receipt, here where krew itself
	// was not installed by krew, it makes krew refuse to run: "krew home
	// outdated".)
	if err := os.Remove(filepath.Join(krewRoot, "bin", "kubectl_complete-cni_migrate")); err != nil {
		t.Fatal(err)
	}
	if out, err := r.run(kubectl, "cni-migrate", "version"); err == nil {
		t.Fatalf("the plugin still runs after uninstall: %s", out)
	}
	before = srv.count(hostArchive())
	r.mustRun(kubectl, "krew", "install", "--manifest="+manifest)
	if srv.count(hostArchive()) != before+1 {
		t.Errorf("install from the uri did not download %s", hostArchive())
	}
	if out := r.mustRun(kubectl, "cni-migrate", "version"); !strings.HasPrefix(out, "kubectl cni-migrate "+version+" (") {
		t.Fatalf("version after install from uri: %q", out)
	}
}
