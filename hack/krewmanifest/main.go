// Command krewmanifest renders the krew plugin manifest template
// (krew/cni-migrate.yaml) for a release, the way krew-release-bot does:
// `{{ .TagName }}` becomes the version and
// `{{ addURIAndSha "URL" .TagName }}` becomes the archive's `uri` and
// `sha256` lines. The sums are computed from the archives in -dist (the
// file named by the URL's last element), so the manifest matches what
// `make dist` built; -base-url replaces everything before that last element
// (e.g. a test file server, or a mirror).
//
//	go run ./hack/krewmanifest -version v1.2.3 -dist dist -o dist/cni-migrate.yaml
//
// The result is checked before it is written: apiVersion and kind, the
// version, and for every platform a selector, an http(s) uri, a lowercase
// sha256, bin and files; every archive in -dist must be referenced.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// semverRE is semver 2.0 with krew's leading "v".
const semverRE = `^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`

// Options are the inputs of Render.
type Options struct {
	// Version is the release tag, e.g. v1.2.3.
	Version string
	// BaseURL, when set, replaces the directory part of every archive URL.
	BaseURL string
	// Sums maps an archive's file name to its lowercase hex sha256.
	Sums map[string]string
}

// Manifest is the part of a krew Plugin manifest that is checked.
type Manifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string     `json:"version"`
		ShortDescription string     `json:"shortDescription"`
		Description      string     `json:"description"`
		Caveats          string     `json:"caveats"`
		Platforms        []Platform `json:"platforms"`
	} `json:"spec"`
}

// Platform is one entry of spec.platforms.
type Platform struct {
	Selector *struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	URI    string `json:"uri"`
	Sha256 string `json:"sha256"`
	Bin    string `json:"bin"`
	Files  []struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"files"`
}

// Render fills in the template and checks the result.
func Render(tmpl string, o Options) ([]byte, *Manifest, error) {
	if !regexp.MustCompile(semverRE).MatchString(o.Version) {
		return nil, nil, fmt.Errorf("version %q is not a semantic version with a leading v (e.g. v1.2.3)", o.Version)
	}
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, fmt.Errorf("base URL %q: want http(s)://host/path", o.BaseURL)
		}
	}
	used := map[string]bool{}
	addURIAndSha := func(rawURL, tag string) (string, error) {
		t, err := template.New("url").Option("missingkey=error").Parse(rawURL)
		if err != nil {
			return "", fmt.Errorf("url %q: %w", rawURL, err)
		}
		var b strings.Builder
		if err := t.Execute(&b, struct{ TagName string }{tag}); err != nil {
			return "", fmt.Errorf("url %q: %w", rawURL, err)
		}
		u := b.String()
		name := path.Base(u)
		sum, ok := o.Sums[name]
		if !ok {
			return "", fmt.Errorf("archive %s (from %s) not found among %s", name, u, strings.Join(sortedKeys(o.Sums), ", "))
		}
		used[name] = true
		if o.BaseURL != "" {
			u = strings.TrimSuffix(o.BaseURL, "/") + "/" + name
		}
		// The template puts the call where `uri` belongs in a platform
		// entry, four spaces in; sha256 follows at the same depth.
		return fmt.Sprintf("uri: %s\n    sha256: %s", u, sum), nil
	}
	t, err := template.New("manifest").Option("missingkey=error").
		Funcs(template.FuncMap{"addURIAndSha": addURIAndSha}).Parse(tmpl)
	if err != nil {
		return nil, nil, err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, struct{ TagName string }{o.Version}); err != nil {
		return nil, nil, err
	}
	var unused []string
	for name := range o.Sums {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return nil, nil, fmt.Errorf("the template has no platform for %s", strings.Join(unused, ", "))
	}
	m, err := Check(out.Bytes(), o.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("rendered manifest: %w", err)
	}
	return out.Bytes(), m, nil
}

// Check parses a rendered manifest and checks what krew needs of it.
func Check(data []byte, version string) (*Manifest, error) {
	var m Manifest
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	var errs []error
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" {
		errs = append(errs, fmt.Errorf("apiVersion/kind %s/%s", m.APIVersion, m.Kind))
	}
	if m.Metadata.Name == "" {
		errs = append(errs, errors.New("metadata.name is empty"))
	}
	if m.Spec.Version != version {
		errs = append(errs, fmt.Errorf("spec.version %q, want %q", m.Spec.Version, version))
	}
	if m.Spec.ShortDescription == "" || strings.ContainsAny(m.Spec.ShortDescription, "\r\n") {
		errs = append(errs, fmt.Errorf("spec.shortDescription %q: want one non-empty line", m.Spec.ShortDescription))
	}
	if m.Spec.Description == "" || m.Spec.Caveats == "" {
		errs = append(errs, errors.New("spec.description and spec.caveats must be set"))
	}
	if len(m.Spec.Platforms) == 0 {
		errs = append(errs, errors.New("spec.platforms is empty"))
	}
	sha := regexp.MustCompile(`^[a-f0-9]{64}$`)
	seen := map[string]bool{}
	for i, p := range m.Spec.Platforms {
		where := fmt.Sprintf("spec.platforms[%d]", i)
		if p.Selector == nil || p.Selector.MatchLabels["os"] == "" || p.Selector.MatchLabels["arch"] == "" {
			errs = append(errs, fmt.Errorf("%s: selector.matchLabels needs os and arch", where))
		} else {
			key := p.Selector.MatchLabels["os"] + "/" + p.Selector.MatchLabels["arch"]
			if seen[key] {
				errs = append(errs, fmt.Errorf("%s: a second entry for %s", where, key))
			}
			seen[key] = true
		}
		if u, err := url.Parse(p.URI); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("%s: uri %q", where, p.URI))
		}
		if !sha.MatchString(p.Sha256) {
			errs = append(errs, fmt.Errorf("%s: sha256 %q is not 64 lowercase hex digits", where, p.Sha256))
		}
		if p.Bin == "" || len(p.Files) == 0 {
			errs = append(errs, fmt.Errorf("%s: bin and files must be set", where))
		}
		binCopied := false
		for _, f := range p.Files {
			if f.From == p.Bin {
				binCopied = true
			}
		}
		if !binCopied {
			errs = append(errs, fmt.Errorf("%s: files do not copy bin %q", where, p.Bin))
		}
	}
	return &m, errors.Join(errs...)
}

// SumDir returns the sha256 of every .tar.gz and .zip in dir.
func SumDir(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || (!strings.HasSuffix(e.Name(), ".tar.gz") && !strings.HasSuffix(e.Name(), ".zip")) {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		_ = f.Close()
		if err != nil {
			return nil, err
		}
		sums[e.Name()] = hex.EncodeToString(h.Sum(nil))
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("no .tar.gz or .zip archive in %s (run make dist)", dir)
	}
	return sums, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("krewmanifest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tmplPath := fs.String("template", "krew/cni-migrate.yaml", "manifest template (krew-release-bot syntax)")
	version := fs.String("version", "", "release version, e.g. v1.2.3 (required)")
	dist := fs.String("dist", "dist", "directory holding the archives")
	baseURL := fs.String("base-url", "", "download URL of the directory holding the archives (default: the template's)")
	out := fs.String("o", "", "output file (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	tmpl, err := os.ReadFile(*tmplPath)
	if err != nil {
		return err
	}
	sums, err := SumDir(*dist)
	if err != nil {
		return err
	}
	data, m, err := Render(string(tmpl), Options{Version: *version, BaseURL: *baseURL, Sums: sums})
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(data)
		return err
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s: %s %s, %d platforms\n", *out, m.Metadata.Name, m.Spec.Version, len(m.Spec.Platforms))
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "krewmanifest:", err)
		}
		os.Exit(1)
	}
}
