package migrate

import (
	"fmt"
	"path"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/shell"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/sourcecni"
)

// CiliumBackupSuffix is what the Cilium agent appends to the other CNI
// configurations in the CNI directory when it writes its own with
// cni-exclusive=true (daemon/cmd/cni: cleanupOtherCNI).
const CiliumBackupSuffix = ".cilium_bak"

// chartCNIConfDir is where Cilium's chart mounts the node's CNI
// configuration directory (cni.confPath, /etc/cni/net.d unless a
// distribution moves it) in the agent: /host/etc/cni/net.d, which the
// CiliumNodeConfig's write-cni-conf-when-ready names.
const chartCNIConfDir = "/etc/cni/net.d"

// HostCNIConfFile turns the CiliumNodeConfig's write-cni-conf-when-ready,
// without its /host prefix (file, "" for DefaultCNIConfFile), into the path
// on the node: a file in the agent's /host/etc/cni/net.d is in cni.confPath
// on the node, the distribution's CNI directory (detect.Distribution's
// CNIConfDir, the one the values set as cni.confPath: k3s's
// /var/lib/rancher/k3s/agent/etc/cni/net.d), /etc/cni/net.d without one.
// Other paths are returned as they are.
func HostCNIConfFile(file string, d *detect.Distribution) string {
	if file == "" {
		file = DefaultCNIConfFile
	}
	if d == nil || d.CNIConfDir == "" || path.Dir(file) != chartCNIConfDir {
		return file
	}
	return path.Join(d.CNIConfDir, path.Base(file))
}

// CNIConfigRestore is the instruction a rollback prints at its reboot step:
// what neither the agent restart nor the reboot restores on the node, and
// the commands that do, to run as root on the node.
//
// The facts behind it (Cilium 1.14 to 1.20, daemon/cmd/cni/config.go and
// the chart's cilium-configmap.yaml): with the CiliumNodeConfig the agent
// wrote its config (write-cni-conf-when-ready) and, with cni-exclusive,
// renamed every other *.conf, *.conflist and *.json in that directory to
// *.cilium_bak. Without the CiliumNodeConfig, cilium-config in migration
// mode (cni.customConf=true) sets no write-cni-conf-when-ready, and the
// agent's CNI config manager then does nothing at all: it neither removes
// its file nor renames the others back, and the preStop cni-uninstall.sh
// removes nothing with cni.uninstall=false. Container runtimes use the
// first config file in name order (containerd's go-cni, CRI-O), so
// 05-cilium.conflist keeps winning over 10-flannel.conflist until removed.
func CNIConfigRestore(node string, plan *Plan) string {
	file := DefaultCNIConfFile
	if plan != nil && plan.CNIConfFile != "" {
		file = plan.CNIConfFile
	}
	dir := path.Dir(file)
	var b strings.Builder
	fmt.Fprintf(&b, "the reboot does not restore the node's CNI config: Cilium's agent no longer manages %s, so its %s stays there and, sorting first, keeps new pods on Cilium\n", dir, path.Base(file))
	fmt.Fprintf(&b, "before the reboot, as root on %s:\n", node)
	fmt.Fprintf(&b, "  rm -f %s\n", shell.Quote(file))
	if node := oldCNINode(plan); node.CNIConf != "" {
		conf := path.Join(dir, node.CNIConf)
		fmt.Fprintf(&b, "  mv -n %[1]s%[2]s %[1]s\n", shell.Quote(conf), CiliumBackupSuffix)
		b.WriteString(node.CNIConfNote)
	} else {
		fmt.Fprintf(&b, "  then rename the old CNI's config back: mv -n %s/NAME%s %s/NAME (not 05-cilium.conf%s; see docs/rollback.md)", dir, CiliumBackupSuffix, dir, CiliumBackupSuffix)
	}
	return b.String()
}

// oldCNINode is what the registry knows the old CNI leaves on a node; empty
// when the old CNI is not known (not detected, or not registered: the
// instructions then name its config file NAME).
func oldCNINode(plan *Plan) sourcecni.Node {
	if plan == nil || plan.OldCNI == nil {
		return sourcecni.Node{}
	}
	src, err := sourcecni.For(plan.OldCNI)
	if err != nil {
		return sourcecni.Node{}
	}
	return src.Node
}
