package image

import (
	"fmt"
	"regexp"
	"strings"
)

// The parts of a docker reference (github.com/distribution/reference).
var (
	domainRE    = regexp.MustCompile(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$`)
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagRE       = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
)

// normalize parses a docker reference "[domain/]path[:tag]" and returns its
// domain (docker.io when it has none), its path (with "library/" for a
// single-component docker.io path) and its tag ("latest" when it has none),
// the way containerd and Docker normalise a reference.
func normalize(ref string) (domain, repo, tag string, err error) {
	if strings.Contains(ref, "@") {
		return "", "", "", fmt.Errorf("image: %q: digests are not allowed in image names", ref)
	}
	name := ref
	tag = "latest"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i+1:]
	}
	if !tagRE.MatchString(tag) {
		return "", "", "", fmt.Errorf("image: %q: invalid tag %q", ref, tag)
	}
	domain, repo = "docker.io", name
	if i := strings.Index(name, "/"); i >= 0 {
		d := name[:i]
		if strings.ContainsAny(d, ".:") || d == "localhost" || strings.ToLower(d) != d {
			domain, repo = d, name[i+1:]
		}
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if !domainRE.MatchString(domain) {
		return "", "", "", fmt.Errorf("image: %q: invalid domain %q", ref, domain)
	}
	if domain == "docker.io" && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	for _, c := range strings.Split(repo, "/") {
		if !componentRE.MatchString(c) {
			return "", "", "", fmt.Errorf("image: %q: invalid path component %q", ref, c)
		}
	}
	if len(domain)+1+len(repo) > 255 {
		return "", "", "", fmt.Errorf("image: %q: name longer than 255 characters", ref)
	}
	return domain, repo, tag, nil
}

// FullName returns the fully qualified form of an image reference, the name
// containerd gives an image it imports: "busybox" is
// "docker.io/library/busybox:latest", "flannel/flannel:v0.28.4" is
// "docker.io/flannel/flannel:v0.28.4", "lab.local/pause:1" stays as it is.
func FullName(ref string) (string, error) {
	domain, repo, tag, err := normalize(ref)
	if err != nil {
		return "", err
	}
	return domain + "/" + repo + ":" + tag, nil
}

// RepoTag returns the form of an image reference `docker save` writes in a
// manifest's RepoTags (Docker's "familiar" form):
// "docker.io/library/x:t" is "x:t", "docker.io/a/b:t" is "a/b:t", a name on
// another registry is kept whole; a name without a tag gets ":latest".
// containerd's import turns it back into FullName(ref).
func RepoTag(ref string) (string, error) {
	domain, repo, tag, err := normalize(ref)
	if err != nil {
		return "", err
	}
	if domain != "docker.io" {
		return domain + "/" + repo + ":" + tag, nil
	}
	if r, ok := strings.CutPrefix(repo, "library/"); ok && !strings.Contains(r, "/") {
		repo = r
	}
	return repo + ":" + tag, nil
}
