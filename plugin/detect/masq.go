package detect

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
)

// flannelIPMasq reads flanneld's --ip-masq from a flannel or Canal
// DaemonSet: the flag in the flannel container's command or arguments, else
// the FLANNELD_IP_MASQ variable (flanneld reads every flag from FLANNELD_*
// variables; Canal sets this one from canal-config's masquerade key).
// flanneld's own default is off. nil when no flannel container is found.
func flannelIPMasq(s *Snapshot, ds *appsv1.DaemonSet) *bool {
	ctr := container(ds, "flannel", "kube-flannel", "flannel")
	if ctr == nil {
		return nil
	}
	on := false
	if v, ok := envOf(s, ds.Namespace, ctr)["FLANNELD_IP_MASQ"]; ok {
		on, _ = strconv.ParseBool(v)
	}
	on = boolFlag(args(ctr), "--ip-masq", on)
	return &on
}
