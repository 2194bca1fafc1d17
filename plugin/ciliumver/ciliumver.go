// Package ciliumver parses and describes the Cilium versions the plugin can
// install: which minors are supported, which patch release is pinned and
// tested for each, and the few facts that differ between them (the
// CiliumNodeConfig API version and the Helm chart version to ask for).
package ciliumver

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Version is a Cilium release: a minor (1.18) or a patch release (1.18.11).
type Version struct {
	Major, Minor, Patch int
	// HasPatch is false for a minor-only version such as "1.18"; Patch is 0 then.
	HasPatch bool
}

// DefaultVersion is the Cilium release installed when the user names none.
const DefaultVersion = "1.20.2"

// The supported range of minors (all with major 1).
const (
	minMinor = 14
	maxMinor = 20
)

// SupportedRange names the supported minors for messages, e.g. "1.14 to 1.20".
func SupportedRange() string {
	return fmt.Sprintf("1.%d to 1.%d", minMinor, maxMinor)
}

// Default returns DefaultVersion parsed.
func Default() Version {
	return Version{Major: 1, Minor: 20, Patch: 2, HasPatch: true}
}

// Supported lists every supported minor with the patch release the plugin
// pins and is tested with, oldest first. The result is a fresh slice.
func Supported() []Version {
	pinned := []struct{ minor, patch int }{
		{14, 19},
		{15, 19},
		{16, 5},
		{17, 6},
		{18, 11},
		{19, 0},
		{20, 2},
	}
	out := make([]Version, 0, len(pinned))
	for _, p := range pinned {
		out = append(out, Version{Major: 1, Minor: p.minor, Patch: p.patch, HasPatch: true})
	}
	return out
}

// Parse reads "1.18", "1.18.11" or "v1.18.11". Anything else, and any version
// outside the supported minors, is an *errs.Error with code errs.Usage.
func Parse(s string) (Version, error) {
	body := strings.TrimPrefix(s, "v")
	parts := strings.Split(body, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, notAVersion(s)
	}
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, ok := number(p)
		if !ok {
			return Version{}, notAVersion(s)
		}
		nums[i] = n
	}
	v := Version{Major: nums[0], Minor: nums[1]}
	if len(nums) == 3 {
		v.Patch, v.HasPatch = nums[2], true
	}
	if v.Major != 1 || v.Minor < minMinor || v.Minor > maxMinor {
		return Version{}, errs.New(errs.Usage,
			fmt.Sprintf("Cilium %s is not supported", v),
			fmt.Sprintf("choose a Cilium version from %s, or leave it out to get the default %s", SupportedRange(), DefaultVersion))
	}
	return v, nil
}

// number parses a non-empty run of ASCII digits without a leading zero
// (except "0" itself), so that "01", "+1", " 1" and "1_0" are rejected.
func number(s string) (int, bool) {
	if s == "" || len(s) > 6 {
		return 0, false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func notAVersion(s string) error {
	return errs.New(errs.Usage,
		fmt.Sprintf("%q is not a Cilium version", s),
		fmt.Sprintf("give a version like 1.18 or 1.18.11 (supported: %s; default %s)", SupportedRange(), DefaultVersion))
}

// String returns "1.18.11", or "1.18" for a minor-only version.
func (v Version) String() string {
	if v.HasPatch {
		return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	}
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// MinorString returns "1.18" for both 1.18 and 1.18.11.
func (v Version) MinorString() string {
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// AtLeast reports whether v's minor is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	if v.Major != major {
		return v.Major > major
	}
	return v.Minor >= minor
}

// Pinned returns v itself when it names a patch release, else the patch
// release pinned for v's minor (see Supported). ok is false for a minor the
// plugin does not support.
func (v Version) Pinned() (Version, bool) {
	if v.HasPatch {
		return v, true
	}
	for _, s := range Supported() {
		if s.Major == v.Major && s.Minor == v.Minor {
			return s, true
		}
	}
	return Version{}, false
}

// NodeConfigAPIVersion is the apiVersion for the migration's CiliumNodeConfig.
//
// Checked in the CRDs under pkg/k8s/apis/cilium.io/client/crds of each
// release: 1.14.19 and 1.15.19 serve only v2alpha1; from 1.16.5 on the CRD
// stores v2 and serves v2alpha1 as deprecated (still so in 1.20.2, where it
// was restored for clusters created on 1.15 or older; cilium/cilium#48087).
func (v Version) NodeConfigAPIVersion() string {
	if v.AtLeast(1, 16) {
		return "cilium.io/v2"
	}
	return "cilium.io/v2alpha1"
}

// HelmChartVersion is the argument for `helm install/upgrade --version`.
//
// A patch release is passed as is ("1.18.11"). For a minor-only version it is
// the tilde range "~1.18.0": Helm documents --version as "a version
// constraint ... a specific tag (e.g. 1.1.1) or ... a valid range (e.g.
// ^2.0.0)", evaluated with Masterminds/semver, where ~1.18.0 means
// >=1.18.0 <1.19.0 and excludes pre-releases. Helm then picks the newest
// 1.18 patch, which may be newer than the one pinned in Supported.
func (v Version) HelmChartVersion() string {
	if v.HasPatch {
		return v.String()
	}
	return fmt.Sprintf("~%d.%d.0", v.Major, v.Minor)
}
