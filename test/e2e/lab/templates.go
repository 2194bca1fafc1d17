package lab

import "text/template"

// initScript is PID 1 of a node's PID namespace. It runs in the node's own
// network, mount and UTS namespaces (made by nsenter and unshare), builds
// the node's filesystem view, starts containerd and the kubelet and reaps
// orphans. What it mounts is gone when it dies (a reboot); what sits in
// Dir (the overlays' upper layers and the bind-mounted directories) is the
// node's disk and stays.
var initScript = template.Must(template.New("init.sh").Parse(`#!/bin/bash
set -euo pipefail
D={{.Dir}}
echo "init: $(date +%T.%N) node {{.Name}} boot $(cat $D/boot_id)"
hostname {{.Name}}

# /sys of this network namespace; the host's cgroup hierarchies stay visible.
mount --rbind /sys/fs/cgroup $D/mnt/cgroup
mount -t sysfs sysfs /sys
mount --rbind $D/mnt/cgroup /sys/fs/cgroup
umount -l $D/mnt/cgroup
mount -t bpf bpf /sys/fs/bpf

# /run is memory-backed: it starts empty at every boot. (/tmp stays the
# host's: the lab's own directory may be below it.)
mount -t tmpfs -o mode=0755 tmpfs /run

# The node's disk: copy-on-write layers over the host's directories.
for d in etc opt var usr; do
	mkdir -p $D/$d.upper $D/$d.work
	mount -t overlay overlay -o lowerdir=/$d,upperdir=$D/$d.upper,workdir=$D/$d.work /$d
done
# containerd's and the kubelet's state must not sit on overlayfs.
for d in /var/lib/containerd /var/lib/kubelet; do
	mkdir -p $d
	mount --bind $D/fs$d $d
done
mkdir -p /var/lib/lab-monitor /lib/modules /etc/cni/net.d /opt/cni/bin
mount --bind {{.MonitorDir}} /var/lib/lab-monitor
if [ ! -e /opt/cni/bin/.lab-seeded ]; then cp -a $D/fs/opt/cni/bin/. /opt/cni/bin/ && touch /opt/cni/bin/.lab-seeded; fi

# Kernel-wide settings the kubelet and the agents write, shadowed per node.
{{range .Sysctls}}if [ -e /proc/sys/{{.Path}} ]; then mount --bind $D/sysctl/{{.File}} /proc/sys/{{.Path}}; fi
{{end}}
# This boot's ID.
mount --bind $D/boot_id /proc/sys/kernel/random/boot_id

# Containers may ask for shared or slave mounts (HostToContainer).
mount --make-rshared /

mkdir -p /run/containerd $D/logs
containerd --config $D/containerd.toml >>$D/logs/containerd.log 2>&1 &
for i in $(seq 1 600); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.1; done
if [ "$(cat /var/lib/containerd/.lab-images 2>/dev/null || true)" != "{{.ImagesStamp}}" ]; then
	ctr -n k8s.io images import {{.Images}} >>$D/logs/images.log 2>&1
	echo "{{.ImagesStamp}}" >/var/lib/containerd/.lab-images
fi
{{if .RunImages}}if [ "$(cat /var/lib/containerd/.lab-images-run 2>/dev/null || true)" != "{{.RunImagesStamp}}" ]; then
	ctr -n k8s.io images import {{.RunImages}} >>$D/logs/images.log 2>&1
	echo "{{.RunImagesStamp}}" >/var/lib/containerd/.lab-images-run
fi
{{end}}echo "init: $(date +%T.%N) containerd ready"

# Restarted whenever it exits, as systemd does a kubeadm node's kubelet
# (Restart=always; RestartSec=10 there, 2 s here): a kubelet that starts
# while containerd's CRI is still recovering its state exits at once
# ("server is not initialized yet", seen on the lab after a reboot).
(
	while :; do
		{{.Kubelet}} --config=$D/kubelet.yaml --kubeconfig=$D/kubelet.kubeconfig \
			--hostname-override={{.Name}} --node-ip={{.IP}} --node-labels={{.Labels}} \
			--v=2 >>$D/logs/kubelet.log 2>&1
		echo "init: $(date +%T.%N) kubelet exited ($?), restarting in 2 s"
		sleep 2
	done
) &
echo "init: $(date +%T.%N) kubelet started"

trap 'exit 0' TERM
while :; do wait || true; sleep 1; done
`))

// containerdConfig: containerd 1.6's CRI with runc and the node's CNI
// directories; a locally built pause image (no registry).
var containerdConfig = template.Must(template.New("containerd.toml").Parse(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.PauseImage}}"
  # runc cannot set oom_score_adj below its parent's without CAP_SYS_RESOURCE
  restrict_oom_score_adj = true
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`))

// kubeletConfig: cgroup v1 with cgroupfs under a cgroup of the lab's,
// certificate authentication, webhook authorization, cluster DNS.
var kubeletConfig = template.Must(template.New("kubelet.yaml").Parse(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {{.CAFile}}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupRoot: {{.CgroupRoot}}
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
clusterDNS:
- {{.ClusterDNS}}
clusterDomain: cluster.local
resolvConf: {{.Dir}}/resolv.conf
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
rotateCertificates: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
nodeStatusUpdateFrequency: 5s
shutdownGracePeriod: 0s
maxPods: 110
`))
