package connectivity

import (
	"context"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Defaults of the probe's objects.
const (
	// DefaultNamespace holds everything `connectivity` makes.
	DefaultNamespace = "cni-migrate-connectivity"
	// Name of the DaemonSet, its Service and the ConfigMap of the latest matrix.
	Name = "cni-migrate-probe"
	// DefaultImage is agnhost as the Kubernetes e2e tests pin it (v1.34).
	DefaultImage = "registry.k8s.io/e2e-test-images/agnhost:2.56"
	// HTTPPort and UDPPort are the ports netexec serves in every probe pod.
	HTTPPort = 8080
	UDPPort  = 8081
	// DefaultMTU is the pod MTU the mtu check fills (a VXLAN overlay on a
	// 1500-byte network: Flannel's and Cilium's default).
	DefaultMTU = 1450

	// LabelManagedBy marks the objects `connectivity --cleanup` may delete.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "kubectl-cni-migrate"
	labelName      = "app.kubernetes.io/name"
	// ResultKey is the key of the latest matrix (JSON) in the ConfigMap Name.
	ResultKey = "matrix.json"
)

// Labels of the probe pods.
func podLabels() map[string]string {
	return map[string]string{labelName: Name, LabelManagedBy: managedBy}
}

// Selector selects the probe pods.
func Selector() string { return labelName + "=" + Name }

// Objects are the probe's namespace, DaemonSet and Service.
func Objects(namespace, image string) (*corev1.Namespace, *appsv1.DaemonSet, *corev1.Service) {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: podLabels()}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{LabelManagedBy: managedBy}}}
	ds := &appsv1.DaemonSet{
		ObjectMeta: meta(Name),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{labelName: Name}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr.To(intstr.FromString("100%"))},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels()},
				Spec: corev1.PodSpec{
					// One probe on every node, whatever its taints (cordoned,
					// NotReady, control plane): the matrix must see them all.
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To(int64(2)),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true),
						RunAsUser:    ptr.To(int64(65534)),
						RunAsGroup:   ptr.To(int64(65534)),
					},
					Containers: []corev1.Container{{
						Name:  "probe",
						Image: image,
						Args:  []string{"netexec", "--http-port=" + strconv.Itoa(HTTPPort), "--udp-port=" + strconv.Itoa(UDPPort)},
						Ports: []corev1.ContainerPort{
							{Name: "http", ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
							{Name: "udp", ContainerPort: UDPPort, Protocol: corev1.ProtocolUDP},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(HTTPPort)}},
							PeriodSeconds: 2,
						},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: meta(Name),
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{labelName: Name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: HTTPPort, TargetPort: intstr.FromInt32(HTTPPort), Protocol: corev1.ProtocolTCP}},
		},
	}
	return ns, ds, svc
}

// Ensure creates the probe's objects, or reuses those a previous run made
// (the DaemonSet's pod template is updated when it differs, e.g. another
// image). It returns what it did, for the user.
func Ensure(ctx context.Context, c kubernetes.Interface, namespace, image string, dryRun bool) ([]string, error) {
	ns, ds, svc := Objects(namespace, image)
	var did []string
	var opts metav1.CreateOptions
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := c.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := c.CoreV1().Namespaces().Create(ctx, ns, opts); err != nil && !apierrors.IsAlreadyExists(err) {
			return did, err
		}
		did = append(did, "namespace/"+namespace+" created")
		if dryRun {
			// The namespaced objects cannot be dry-run in a namespace
			// that does not exist.
			return append(did, "daemonset.apps/"+Name+" created", "service/"+Name+" created"), nil
		}
	} else if err != nil {
		return did, err
	}
	cur, err := c.AppsV1().DaemonSets(namespace).Get(ctx, Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := c.AppsV1().DaemonSets(namespace).Create(ctx, ds, opts); err != nil {
			return did, err
		}
		did = append(did, "daemonset.apps/"+Name+" created")
	case err != nil:
		return did, err
	case len(cur.Spec.Template.Spec.Containers) == 0 || cur.Spec.Template.Spec.Containers[0].Image != image ||
		!slices.Equal(cur.Spec.Template.Spec.Containers[0].Args, ds.Spec.Template.Spec.Containers[0].Args):
		cur.Spec.Template = ds.Spec.Template
		uopts := metav1.UpdateOptions{DryRun: opts.DryRun}
		if _, err := c.AppsV1().DaemonSets(namespace).Update(ctx, cur, uopts); err != nil {
			return did, err
		}
		did = append(did, "daemonset.apps/"+Name+" updated")
	default:
		did = append(did, "daemonset.apps/"+Name+" reused")
	}
	if _, err := c.CoreV1().Services(namespace).Get(ctx, Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := c.CoreV1().Services(namespace).Create(ctx, svc, opts); err != nil {
			return did, err
		}
		did = append(did, "service/"+Name+" created")
	} else if err != nil {
		return did, err
	}
	return did, nil
}

// Cleanup deletes the namespace `connectivity` made (and everything in it);
// a namespace it did not make is refused. It reports whether there was one.
func Cleanup(ctx context.Context, c kubernetes.Interface, namespace string, dryRun bool) (bool, error) {
	ns, err := c.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if ns.Labels[LabelManagedBy] != managedBy {
		return false, errs.Newf(errs.Precondition, "pass the --probe-namespace connectivity made, or delete the namespace yourself",
			"namespace %s was not made by kubectl cni-migrate connectivity (no %s=%s label)", namespace, LabelManagedBy, managedBy)
	}
	opts := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return true, c.CoreV1().Namespaces().Delete(ctx, namespace, opts)
}
