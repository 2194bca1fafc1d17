// Package nodeconfig builds and applies the CiliumNodeConfig that switches a
// labelled node's Cilium agent from "beside the old CNI" to "owns the CNI".
package nodeconfig

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Defaults from the Cilium migration guide.
const (
	DefaultName      = "cilium-default"
	DefaultLabel     = "io.cilium.migration/cilium-default=true"
	DefaultNamespace = "kube-system"
	// FieldManager is the server-side apply field manager of the plugin.
	FieldManager = "cni-migrate"
	// ManagedByLabel marks objects the plugin created.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "kubectl-cni-migrate"
)

// Options describe the CiliumNodeConfig.
type Options struct {
	Version   ciliumver.Version
	Namespace string
	Name      string
	// Label is "key=value": nodes carrying it get the config.
	Label string
	// ChainingMode is the cni-chaining-mode the config sets: "none" (the
	// guide's; "" means it) or "portmap", which chains the portmap plugin
	// after Cilium's for hostPorts, as values-initial.yaml's
	// cni.chainingMode does when the cluster keeps kube-proxy and the old
	// CNI chains portmap (the config's value wins over cilium-config's on
	// the nodes it selects).
	ChainingMode string
}

// ChainingModes are the cni-chaining-mode values Options takes.
var ChainingModes = []string{"none", "portmap"}

// ParseLabel splits and validates "key=value".
func ParseLabel(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", errs.Newf(errs.Usage, "write it as key=value, e.g. "+DefaultLabel, "--node-label %q has no '='", s)
	}
	if msgs := validation.IsQualifiedName(key); len(msgs) > 0 {
		return "", "", errs.Newf(errs.Usage, "use a label key such as io.cilium.migration/cilium-default", "--node-label key %q is invalid: %s", key, msgs[0])
	}
	if msgs := validation.IsValidLabelValue(value); len(msgs) > 0 {
		return "", "", errs.Newf(errs.Usage, "use a label value such as true", "--node-label value %q is invalid: %s", value, msgs[0])
	}
	return key, value, nil
}

// Validate checks the options.
func (o Options) Validate() error {
	if msgs := validation.IsDNS1123Subdomain(o.Name); len(msgs) > 0 {
		return errs.Newf(errs.Usage, "use a lower-case DNS name such as "+DefaultName, "--name %q is invalid: %s", o.Name, msgs[0])
	}
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		return errs.Newf(errs.Usage, "pass the namespace Cilium runs in with -n", "namespace %q is invalid: %s", o.Namespace, msgs[0])
	}
	if o.ChainingMode != "" && !slices.Contains(ChainingModes, o.ChainingMode) {
		return errs.Newf(errs.Usage, "use --cni-chaining-mode none or portmap", "--cni-chaining-mode %q is not one the migration supports", o.ChainingMode)
	}
	_, _, err := ParseLabel(o.Label)
	return err
}

// Build returns the CiliumNodeConfig of the guide for o.Version.
func Build(o Options) (*unstructured.Unstructured, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	key, value, _ := ParseLabel(o.Label)
	chaining := o.ChainingMode
	if chaining == "" {
		chaining = "none"
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": o.Version.NodeConfigAPIVersion(),
		"kind":       "CiliumNodeConfig",
		"metadata": map[string]any{
			"name":      o.Name,
			"namespace": o.Namespace,
			"labels":    map[string]any{ManagedByLabel: ManagedByValue},
		},
		"spec": map[string]any{
			"nodeSelector": map[string]any{
				"matchLabels": map[string]any{key: value},
			},
			// Values of defaults are strings: the CRD rejects anything else.
			"defaults": map[string]any{
				// Write the CNI config only once the agent is ready, so pods
				// are not scheduled onto a node whose network is not up.
				"write-cni-conf-when-ready": "/host/etc/cni/net.d/05-cilium.conflist",
				// Let the agent write its own CNI config on this node.
				"custom-cni-conf":   "false",
				"cni-chaining-mode": chaining,
				// Rename other CNI configs so only Cilium's is used.
				"cni-exclusive": "true",
			},
		},
	}}
	return obj, nil
}

// CheckVersion refuses a requested version whose CiliumNodeConfig
// apiVersion differs from the one the installed Cilium reads: its agents
// would not see the config (or only through a deprecated version).
func CheckVersion(requested, installed ciliumver.Version, explicit bool) error {
	if !explicit || requested.NodeConfigAPIVersion() == installed.NodeConfigAPIVersion() {
		return nil
	}
	return errs.Newf(errs.Usage, "drop --cilium-version to use the installed version, or pass --cilium-version "+installed.String(),
		"the installed Cilium %s reads %s CiliumNodeConfigs but --cilium-version %s would write %s",
		installed, installed.NodeConfigAPIVersion(), requested, requested.NodeConfigAPIVersion())
}

// GVR returns the resource of a CiliumNodeConfig apiVersion.
func GVR(apiVersion string) schema.GroupVersionResource {
	gv, _ := schema.ParseGroupVersion(apiVersion)
	return gv.WithResource("ciliumnodeconfigs")
}

// Served returns the cilium.io versions that serve ciliumnodeconfigs.
func Served(d discovery.DiscoveryInterface) ([]string, error) {
	groups, err := d.ServerGroups()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range groups.Groups {
		if g.Name != "cilium.io" {
			continue
		}
		for _, v := range g.Versions {
			rl, err := d.ServerResourcesForGroupVersion(v.GroupVersion)
			if err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, err
			}
			for _, r := range rl.APIResources {
				if r.Name == "ciliumnodeconfigs" {
					out = append(out, v.GroupVersion)
				}
			}
		}
	}
	return out, nil
}

// CheckServed fails when the cluster does not serve the object's apiVersion,
// before anything is sent.
func CheckServed(apiVersion string, served []string) error {
	for _, s := range served {
		if s == apiVersion {
			return nil
		}
	}
	if len(served) == 0 {
		return errs.Newf(errs.Unsupported, "install Cilium with values-initial.yaml first (its operator installs the CRDs)",
			"this cluster has no CiliumNodeConfig CRD")
	}
	return errs.Newf(errs.Usage, "pass the --cilium-version that is installed (v2alpha1 is for Cilium < 1.16, v2 from 1.16)",
		"this cluster serves CiliumNodeConfig as %s, not %s", strings.Join(served, ", "), apiVersion)
}

// Apply server-side applies obj with the plugin's field manager. dryRun
// sends it with server-side dry run.
func Apply(ctx context.Context, dyn dynamic.Interface, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := dyn.Resource(GVR(obj.GetAPIVersion())).Namespace(obj.GetNamespace()).Apply(ctx, obj.GetName(), obj, opts)
	if err != nil {
		return nil, fmt.Errorf("applying CiliumNodeConfig %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return out, nil
}
