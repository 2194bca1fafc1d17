package cmd

import (
	"sort"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// registerKubeconfigCompletions completes kubectl's global flags from the
// kubeconfig (contexts, clusters, users) and the cluster (namespaces).
func registerKubeconfigCompletions(root *cobra.Command, c *common) {
	fromConfig := func(pick func(ctxs, clusters, users []string) []string) cobra.CompletionFunc {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			raw, err := c.configFlags.ToRawKubeConfigLoader().RawConfig()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var ctxs, clusters, users []string
			for k := range raw.Contexts {
				ctxs = append(ctxs, k)
			}
			for k := range raw.Clusters {
				clusters = append(clusters, k)
			}
			for k := range raw.AuthInfos {
				users = append(users, k)
			}
			out := pick(ctxs, clusters, users)
			sort.Strings(out)
			return out, cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = root.RegisterFlagCompletionFunc("context", fromConfig(func(x, _, _ []string) []string { return x }))
	_ = root.RegisterFlagCompletionFunc("cluster", fromConfig(func(_, x, _ []string) []string { return x }))
	_ = root.RegisterFlagCompletionFunc("user", fromConfig(func(_, _, x []string) []string { return x }))
	_ = root.RegisterFlagCompletionFunc("namespace", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		cl, err := c.clients()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		l, err := cl.Kube.CoreV1().Namespaces().List(cmd.Context(), metav1.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, ns := range l.Items {
			out = append(out, ns.Name)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
}
