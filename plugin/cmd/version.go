package cmd

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// VersionInfo is what `version -o json|yaml` prints: the build, and the
// Cilium releases the plugin installs (its default, and the pinned patch
// release of every supported minor), so that scripts and tests follow the
// plugin's default rather than a copy of it.
type VersionInfo struct {
	metav1.TypeMeta `json:",inline"`
	BuildInfo       `json:",inline"`
	Go              string         `json:"go"`
	Platform        string         `json:"platform"`
	Cilium          CiliumVersions `json:"cilium"`
}

// CiliumVersions are the Cilium releases of VersionInfo.
type CiliumVersions struct {
	Default   string   `json:"default"`
	Supported []string `json:"supported"`
}

// DeepCopyObject makes VersionInfo a runtime.Object for kubectl's printers.
func (v *VersionInfo) DeepCopyObject() k8sruntime.Object {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data: marshalling cannot fail
	}
	out := &VersionInfo{}
	if err := json.Unmarshal(data, out); err != nil {
		panic(err)
	}
	return out
}

func newVersionInfo(info BuildInfo) *VersionInfo {
	v := &VersionInfo{
		TypeMeta:  metav1.TypeMeta{APIVersion: "cni-migrate.io/v1alpha1", Kind: "Version"},
		BuildInfo: info,
		Go:        runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		Cilium:    CiliumVersions{Default: ciliumver.Default().String()},
	}
	for _, s := range ciliumver.Supported() {
		v.Cilium.Supported = append(v.Cilium.Supported, s.String())
	}
	return v
}

func newCmdVersion(c *common, info BuildInfo) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version and the Cilium release it installs by default",
		Example: `  kubectl cni-migrate version
  # the default Cilium release, for a script
  kubectl cni-migrate version -o json | jq -r .cilium.default`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.ValidateFormat(format); err != nil {
				return err
			}
			v := newVersionInfo(info)
			if format != "" {
				return output.PrintStructured(v, format, c.streams.Out)
			}
			_, err := fmt.Fprintf(c.streams.Out, "kubectl cni-migrate %s (commit %s, built %s, %s %s)\nCilium: %s by default (supported: %s)\n",
				v.Version, v.Commit, v.Date, v.Go, v.Platform, v.Cilium.Default, ciliumver.SupportedRange())
			return err
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "", "output format: json or yaml (default: text)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
