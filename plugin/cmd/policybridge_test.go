package cmd

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func TestPublishedVersion(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.2.3":                  true,
		"v0.10.0":                 true,
		"v1.2.3-rc.1":             true,
		"":                        false,
		"dev":                     false,
		"abc1234":                 false, // git describe --always before the first tag
		"v1.2.3-4-gabc1234":       false, // past a tag
		"v1.2.3-dirty":            false,
		"v1.2.3-4-gabc1234-dirty": false,
		"1.2.3":                   false,
	} {
		if got := publishedVersion(v); got != want {
			t.Errorf("publishedVersion(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestDeployNeedsImage: a build without a published image refuses
// --deploy without --image, in one line naming make image; a release
// build does not.
func TestDeployNeedsImage(t *testing.T) {
	for _, tc := range []struct {
		version, image string
		refused        bool
	}{
		{"dev", "", true},
		{"v1.2.3-4-gabc1234", "", true},
		{"dev", "registry.example/kubectl-cni-migrate:test", false},
		{"v1.2.3", "", false},
	} {
		o := &policyBridgeOptions{deploy: true, image: tc.image, version: tc.version, interval: 1, timeout: 1}
		err := o.Validate()
		if !tc.refused {
			if err != nil {
				t.Errorf("version %q image %q: %v", tc.version, tc.image, err)
			}
			continue
		}
		line := FormatError(err)
		if ExitCode(err) != errs.Usage || !strings.Contains(line, "make image") || strings.Contains(line, "\n") {
			t.Errorf("version %q: exit %d %q; want a one-line usage error naming make image", tc.version, ExitCode(err), line)
		}
	}
}
