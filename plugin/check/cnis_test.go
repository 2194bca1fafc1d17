package check

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// calicoCluster is a kubeadm cluster running Calico from calico-vxlan.yaml.
func calicoCluster() *detect.Cluster {
	c := cluster()
	c.CNI = &detect.CNI{Name: "calico", Version: "v3.28.5", Namespace: "kube-system", DaemonSet: "calico-node", ConfigMap: "calico-config",
		Network: "192.168.0.0/16", IPAM: "calico", Install: "manifest", EnforcesPolicy: true, Dataplane: "iptables",
		Backend:                  detect.Backend{Type: "vxlan", Port: 4789, PortDefaulted: true, VNI: 4096},
		Pools:                    []detect.IPPool{{Name: "default-ipv4-ippool", CIDR: "192.168.0.0/16", Encapsulation: "vxlan", BlockSize: 26, NATOutgoing: true}},
		UDPPorts:                 []int{4789},
		NodeAddressAutodetection: "kubernetes-internal-ip"}
	c.PodCIDRs = []detect.SourcedCIDR{{CIDR: "192.168.0.0/16", Source: "calico IPPool default-ipv4-ippool"}}
	return c
}

func operator(c *detect.Cluster) {
	c.CNI.Install, c.CNI.Installation, c.CNI.Namespace, c.CNI.ConfigMap = "operator", "default", "calico-system", ""
}

func TestSourceCNIChecks(t *testing.T) {
	allowed := &access.Result{Checked: 30, Missing: []access.Need{}}
	tests := []struct {
		name    string
		cluster func() *detect.Cluster
		tweak   func(*detect.Cluster)
		opts    proposal.Options
		id      string
		status  Status
		has     []string // in the message
		fix     string   // in the fix
		absent  bool     // the check must not run
	}{
		// Calico.
		{name: "calico vxlan passes", cluster: calicoCluster, id: IDBackend, status: Pass, has: []string{"VXLAN", "UDP port 4789"}},
		{name: "calico found", cluster: calicoCluster, id: IDCNI, status: Pass, has: []string{"calico v3.28.5 found (DaemonSet kube-system/calico-node)"}},
		{name: "calico operator found", cluster: calicoCluster, tweak: operator, id: IDCNI, status: Pass, has: []string{"Tigera operator, Installation default"}},
		{name: "calico ipip warns", cluster: calicoCluster, tweak: func(c *detect.Cluster) {
			c.CNI.Pools[0].Encapsulation, c.CNI.Routing = "ipip", "bgp"
		}, id: IDBackend, status: Warn, has: []string{"IP-in-IP with BGP (BIRD)", "outside the guide's tested path"}, fix: `"vxlanMode":"Always"`},
		{name: "calico bgp without encapsulation warns", cluster: calicoCluster, tweak: func(c *detect.Cluster) {
			c.CNI.Pools[0].Encapsulation, c.CNI.Routing = "none", "bgp"
		}, id: IDBackend, status: Warn, has: []string{"natively with BGP", "not tested with BGP routing", "will not reach migrated pods"}},
		{name: "calico vxlan cross-subnet warns", cluster: calicoCluster, tweak: func(c *detect.Cluster) { c.CNI.Pools[0].Encapsulation = "vxlan-cross-subnet" },
			id: IDBackend, status: Warn, has: []string{"VXLANCrossSubnet"}, fix: "vxlanMode to Always"},
		{name: "calico vxlan with BIRD warns", cluster: calicoCluster, tweak: func(c *detect.Cluster) { c.CNI.Routing = "bgp" },
			id: IDBackend, status: Warn, has: []string{"BIRD (BGP) runs too"}},
		{name: "calico operator ipip fix names the Installation", cluster: calicoCluster, tweak: func(c *detect.Cluster) {
			operator(c)
			c.CNI.Pools[0].Encapsulation = "ipip"
		}, id: IDBackend, status: Warn, fix: "encapsulation: VXLAN in the Installation's ipPools"},
		{name: "calico disabled pools only warns", cluster: calicoCluster, tweak: func(c *detect.Cluster) { c.CNI.Pools[0].Disabled = true },
			id: IDBackend, status: Warn, has: []string{"no enabled IPv4 pool"}},
		{name: "calico ebpf fails", cluster: calicoCluster, tweak: func(c *detect.Cluster) {
			operator(c)
			c.CNI.Dataplane = "bpf"
		}, id: IDBackend, status: Fail, has: []string{"bpf dataplane"}, fix: `"linuxDataplane":"Iptables"`},
		{name: "calico policy-only fails", cluster: calicoCluster, tweak: func(c *detect.Cluster) {
			operator(c)
			c.CNI.Backend.Type = "policy-only (AmazonVPC)"
		}, id: IDBackend, status: Fail, has: []string{"AmazonVPC"}},
		{name: "calico tunnel port clash fails", cluster: calicoCluster, opts: proposal.Options{TunnelPort: 4789},
			id: IDTunnelPort, status: Fail, has: []string{"tunnel port 4789", "calico's vxlan backend", "address already in use"}},
		{name: "calico wireguard port clash fails", cluster: calicoCluster, tweak: func(c *detect.Cluster) { c.CNI.UDPPorts = []int{4789, 51820} },
			opts: proposal.Options{TunnelPort: 51820}, id: IDTunnelPort, status: Fail, has: []string{"tunnel port 51820 is the one calico uses"}},
		{name: "calico network policies stay enforced with the bridge", cluster: calicoCluster, tweak: func(c *detect.Cluster) {
			c.NetworkPolicies = []detect.NamespacedName{{Namespace: "shop", Name: "a"}}
		}, id: IDNetworkPolicy, status: Pass, has: []string{"calico enforces them today, and Cilium from the install on", "policy-bridge --deploy"}},
		{name: "calico network policies without the bridge", cluster: calicoCluster, opts: proposal.Options{PolicyBridge: new(bool)}, tweak: func(c *detect.Cluster) {
			c.NetworkPolicies = []detect.NamespacedName{{Namespace: "shop", Name: "a"}}
		}, id: IDNetworkPolicy, status: Warn, has: []string{"calico enforces them today", "not enforced until finalize", "--policy-bridge=false"}},
		{name: "calico one shot keeps the bridge too", cluster: calicoCluster, opts: proposal.Options{Strategy: proposal.InPlace}, tweak: func(c *detect.Cluster) {
			c.NetworkPolicies = []detect.NamespacedName{{Namespace: "shop", Name: "a"}}
		}, id: IDNetworkPolicy, status: Pass, has: []string{"calico enforces them today", "policy bridge"}},

		// calico-node's address autodetection.
		{name: "autodetection pinned to the InternalIP passes", cluster: calicoCluster, id: IDNodeAddress, status: Pass, has: []string{"kubernetes-internal-ip"}},
		{name: "first-found warns with set env", cluster: calicoCluster, tweak: func(c *detect.Cluster) { c.CNI.NodeAddressAutodetection = "first-found" },
			id: IDNodeAddress, status: Warn, has: []string{"first-found", "cilium/cilium#31273"},
			fix: "kubectl -n kube-system set env daemonset/calico-node IP_AUTODETECTION_METHOD=kubernetes-internal-ip"},
		{name: "operator first-found warns with a patch", cluster: calicoCluster, tweak: func(c *detect.Cluster) {
			operator(c)
			c.CNI.NodeAddressAutodetection = "first-found"
		}, id: IDNodeAddress, status: Warn,
			fix: `kubectl patch installation default --type=merge -p '{"spec":{"calicoNetwork":{"nodeAddressAutodetectionV4":{"firstFound":null,"kubernetes":"NodeInternalIP"}}}}'`},
		{name: "interface regexp matching cilium_host warns", cluster: calicoCluster, tweak: func(c *detect.Cluster) {
			operator(c)
			c.CNI.NodeAddressAutodetection = "interface=eth.*,cil.*"
		}, id: IDNodeAddress, status: Warn, has: []string{"matches cilium_host"}, fix: `{"interface":null,"kubernetes":"NodeInternalIP"}`},
		{name: "interface regexp excluding cilium passes", cluster: calicoCluster, tweak: func(c *detect.Cluster) { c.CNI.NodeAddressAutodetection = "interface=eth0|ens.*" },
			id: IDNodeAddress, status: Pass},
		{name: "skip-interface of cilium passes", cluster: calicoCluster, tweak: func(c *detect.Cluster) { c.CNI.NodeAddressAutodetection = "skip-interface=cilium_.*" },
			id: IDNodeAddress, status: Pass, has: []string{"skips cilium_host"}},
		{name: "skip-interface of others warns", cluster: calicoCluster, tweak: func(c *detect.Cluster) { c.CNI.NodeAddressAutodetection = "skip-interface=docker0" },
			id: IDNodeAddress, status: Warn},
		{name: "cidr outside Cilium's pool passes", cluster: calicoCluster, tweak: func(c *detect.Cluster) { c.CNI.NodeAddressAutodetection = "cidr=192.168.10.0/24" },
			id: IDNodeAddress, status: Pass},
		{name: "cidr covering Cilium's pool warns", cluster: calicoCluster, tweak: func(c *detect.Cluster) { c.CNI.NodeAddressAutodetection = "cidr=10.0.0.0/8" },
			id: IDNodeAddress, status: Warn, has: []string{"includes Cilium's pod CIDR 10.245.0.0/16"}},
		{name: "no autodetection check for flannel", id: IDNodeAddress, absent: true},

		// Calico's own policies (Calico and Canal).
		{name: "no calico policies passes", cluster: calicoCluster, id: IDCalicoPolicies, status: Pass},
		{name: "calico policies warn", cluster: calicoCluster, tweak: func(c *detect.Cluster) {
			c.CalicoPolicies = []detect.NamespacedName{{Name: "deny-metadata"}, {Namespace: "shop", Name: "allow-frontend"}}
		}, id: IDCalicoPolicies, status: Warn, has: []string{"2 Calico policies (1 global)", "global deny-metadata", "shop/allow-frontend"}, fix: "CiliumNetworkPolicies"},

		// Canal.
		{name: "canal vxlan passes", cluster: canalCluster, id: IDBackend, status: Pass, has: []string{"canal uses the vxlan backend"}},
		{name: "canal host-gw names canal", cluster: canalCluster, tweak: func(c *detect.Cluster) { c.CNI.Backend = detect.Backend{Type: "host-gw"} },
			id: IDBackend, status: Warn, has: []string{"canal's flannel host-gw"}},
		{name: "canal policies are enforced today", cluster: canalCluster, tweak: func(c *detect.Cluster) {
			c.NetworkPolicies = []detect.NamespacedName{{Namespace: "shop", Name: "a"}}
		}, id: IDNetworkPolicy, status: Pass, has: []string{"canal enforces them today, and Cilium from the install on"}},
		{name: "canal gets the calico policy check", cluster: canalCluster, id: IDCalicoPolicies, status: Pass},
		{name: "no autodetection check for canal", cluster: canalCluster, id: IDNodeAddress, absent: true},

		// Weave Net.
		{name: "weave fastdp passes", cluster: weaveCluster, id: IDBackend, status: Pass, has: []string{"fastdp", "6784", "6783"}},
		{name: "weave sleeve warns", cluster: weaveCluster, tweak: func(c *detect.Cluster) {
			c.CNI.Backend = detect.Backend{Type: "sleeve", Port: 6783}
		}, id: IDBackend, status: Warn, has: []string{"sleeve"}},
		{name: "weave encryption warns", cluster: weaveCluster, tweak: func(c *detect.Cluster) { c.CNI.Backend.Encryption = "weave password" },
			id: IDBackend, status: Warn, has: []string{"unencrypted"}},
		{name: "weave sleeve port is refused", cluster: weaveCluster, opts: proposal.Options{TunnelPort: 6783},
			id: IDTunnelPort, status: Fail, has: []string{"tunnel port 6783 is the one weave uses"}},
		{name: "weave policies are enforced today", cluster: weaveCluster, tweak: func(c *detect.Cluster) {
			c.NetworkPolicies = []detect.NamespacedName{{Namespace: "shop", Name: "a"}}
		}, id: IDNetworkPolicy, status: Warn, has: []string{"weave enforces them today", "not enforced until finalize", "proven on Calico's and Canal's nodes only: pass --policy-bridge"}},
		{name: "weave policies with --policy-bridge", cluster: weaveCluster, opts: proposal.Options{PolicyBridge: ptrTrue()}, tweak: func(c *detect.Cluster) {
			c.NetworkPolicies = []detect.NamespacedName{{Namespace: "shop", Name: "a"}}
		}, id: IDNetworkPolicy, status: Pass, has: []string{"weave enforces them today, and Cilium from the install on", "--policy-bridge)"}},

		// kube-router.
		{name: "kube-router bgp warns", cluster: kubeRouterCluster, id: IDBackend, status: Warn, has: []string{"BGP (--run-router)", "ipip between subnets"}},
		{name: "kube-router without routing warns", cluster: kubeRouterCluster, tweak: func(c *detect.Cluster) { c.CNI.Routing = "" },
			id: IDBackend, status: Warn, has: []string{"without --run-router"}},
		{name: "kube-router service proxy warns", cluster: kubeRouterCluster, id: IDServiceProxy, status: Warn,
			has: []string{"--run-service-proxy", "Cilium replaces it (kubeProxyReplacement, API server 192.168.10.10:6443)"}},
		{name: "kube-router without service proxy", cluster: kubeRouterCluster, tweak: func(c *detect.Cluster) { c.CNI.ServiceProxy = false },
			id: IDServiceProxy, absent: true},
		{name: "kube-router fou port is avoided", cluster: kubeRouterCluster, tweak: func(c *detect.Cluster) {
			c.CNI.Backend = detect.Backend{Type: "fou", Port: 8473}
			c.CNI.UDPPorts = []int{8473}
		}, id: IDTunnelPort, status: Pass, has: []string{"UDP port 8474"}},

		// Named by --from.
		{name: "manual cni warns", cluster: manualCluster, id: IDCNI, status: Warn, has: []string{"named by --from calico --old-pod-cidr 10.50.0.0/16"}},
		{name: "manual backend warns", cluster: manualCluster, id: IDBackend, status: Warn, has: []string{"not read"}, fix: "4789"},
		{name: "manual port is avoided", cluster: manualCluster, opts: proposal.Options{TunnelPort: 4789}, id: IDTunnelPort, status: Fail},
		{name: "manual cni gets no cni-specific checks", cluster: manualCluster, id: IDCalicoPolicies, absent: true},
		{name: "chosen among several", cluster: func() *detect.Cluster {
			c := canalCluster()
			c.CNIsSeen = append(c.CNIsSeen, detect.SeenCNI{Name: "weave", Object: "DaemonSet kube-system/weave-net"})
			c.CNI.Override = "--from canal"
			return c
		}, id: IDCNI, status: Pass, has: []string{"(--from canal); also seen, left alone: weave (DaemonSet kube-system/weave-net)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster()
			if tt.cluster != nil {
				c = tt.cluster()
			}
			if tt.tweak != nil {
				tt.tweak(c)
			}
			p, err := proposal.Propose(c, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			rs := Run(Input{Cluster: c, Proposal: p, Access: allowed})
			if tt.absent {
				for _, r := range rs {
					if r.ID == tt.id {
						t.Fatalf("check %s ran: %+v", tt.id, r)
					}
				}
				return
			}
			r := find(t, rs, tt.id)
			if r.Status != tt.status {
				t.Fatalf("got %+v, want %s", r, tt.status)
			}
			for _, h := range tt.has {
				if !strings.Contains(r.Message, h) {
					t.Errorf("message %q lacks %q", r.Message, h)
				}
			}
			if !strings.Contains(r.Fix, tt.fix) {
				t.Errorf("fix %q lacks %q", r.Fix, tt.fix)
			}
			if r.Status != Pass && r.Fix == "" {
				t.Errorf("%s without a fix: %+v", r.Status, r)
			}
			for _, r := range rs {
				if strings.Contains(r.Message+r.Fix, "\n") {
					t.Errorf("not one line: %+v", r)
				}
			}
		})
	}
}

func canalCluster() *detect.Cluster {
	c := cluster()
	c.CNI = &detect.CNI{Name: "canal", Version: "v3.28.5", Namespace: "kube-system", DaemonSet: "canal", ConfigMap: "canal-config",
		Network: "10.244.0.0/16", IPAM: "kubernetes", EnforcesPolicy: true, UDPPorts: []int{8472},
		Backend: detect.Backend{Type: "vxlan", Port: 8472, PortDefaulted: true, VNI: 1}}
	c.CNIsSeen = []detect.SeenCNI{{Name: "canal", Object: "DaemonSet kube-system/canal"}}
	return c
}

func weaveCluster() *detect.Cluster {
	c := cluster()
	c.CNI = &detect.CNI{Name: "weave", Version: "2.8.1", Namespace: "kube-system", DaemonSet: "weave-net",
		Network: "10.32.0.0/12", IPAM: "weave", EnforcesPolicy: true, UDPPorts: []int{6783, 6784},
		Backend: detect.Backend{Type: "fastdp", Port: 6784, PortDefaulted: true}}
	c.PodCIDRs = []detect.SourcedCIDR{{CIDR: "10.32.0.0/12", Source: "weave-net default IPALLOC_RANGE"}}
	return c
}

func kubeRouterCluster() *detect.Cluster {
	c := cluster()
	c.CNI = &detect.CNI{Name: "kube-router", Namespace: "kube-system", DaemonSet: "kube-router", ConfigMap: "kube-router-cfg",
		Network: "10.244.0.0/16", IPAM: "kubernetes", EnforcesPolicy: true, Routing: "bgp", ServiceProxy: true,
		Backend: detect.Backend{Type: "ipip-cross-subnet"}}
	c.KubeProxy = detect.KubeProxy{}
	return c
}

func manualCluster() *detect.Cluster {
	c := cluster()
	c.CNI = &detect.CNI{Name: "calico", Network: "10.50.0.0/16", IPAM: "unknown", EnforcesPolicy: true, UDPPorts: []int{4789},
		Override: "--from calico --old-pod-cidr 10.50.0.0/16"}
	c.PodCIDRs = []detect.SourcedCIDR{{CIDR: "10.50.0.0/16", Source: "--old-pod-cidr"}}
	return c
}

// TestCanalMasquerade: canal's flanneld --ip-masq rewrites migrated pods'
// connections to Canal's pods (seen on the real-datapath lab), which Calico's
// policies then drop: FAIL with the exact commands once policies exist.
func TestCanalMasquerade(t *testing.T) {
	on, off := true, false
	withMasq := func(c *detect.Cluster) {
		c.CNI.IPMasq = &on
		c.CNI.FlannelContainer = &detect.ContainerRef{Name: "kube-flannel", Index: 1, Command: []string{"/opt/bin/flanneld", "--ip-masq", "--kube-subnet-mgr"}}
		c.CNI.Pools = []detect.IPPool{{Name: "default-ipv4-ippool", CIDR: "10.244.0.0/16", NATOutgoing: true}}
		c.NetworkPolicies = []detect.NamespacedName{{Namespace: "shop", Name: "a"}}
	}
	for _, tc := range []struct {
		name     string
		tweak    func(*detect.Cluster)
		status   Status
		has      string
		commands []string
	}{
		{name: "no masquerading", tweak: func(c *detect.Cluster) { c.CNI.IPMasq = &off }, status: Pass, has: "does not masquerade"},
		{name: "no policies", tweak: func(c *detect.Cluster) { withMasq(c); c.NetworkPolicies = nil }, status: Pass, has: "no NetworkPolicy or Calico policy exists"},
		{name: "policies and a natOutgoing pool", tweak: withMasq, status: Fail, has: "drop the flows they allow",
			commands: []string{
				"kubectl -n kube-system set env daemonset/canal -c kube-flannel FLANNELD_IP_MASQ=false",
				`kubectl -n kube-system patch daemonset canal --type json -p '[{"op":"replace","path":"/spec/template/spec/containers/1/command","value":["/opt/bin/flanneld","--kube-subnet-mgr"]}]'`,
				"kubectl -n kube-system rollout status daemonset/canal",
			}},
		{name: "Calico policies and the flag in args, no pool", tweak: func(c *detect.Cluster) {
			withMasq(c)
			c.NetworkPolicies, c.CNI.Pools = nil, nil
			c.CalicoPolicies = []detect.NamespacedName{{Name: "deny-all"}}
			c.CNI.FlannelContainer = &detect.ContainerRef{Name: "flannel", Index: 0, Command: []string{"/opt/bin/flanneld"}, Args: []string{"--ip-masq=true", "--kube-subnet-mgr"}}
		}, status: Fail, has: "1 policy",
			commands: []string{
				`echo '{"apiVersion":"crd.projectcalico.org/v1","kind":"IPPool","metadata":{"name":"flannel-nat-outgoing"},"spec":{"cidr":"10.244.0.0/16","ipipMode":"Never","natOutgoing":true,"nodeSelector":"!all()","vxlanMode":"Never"}}' | kubectl apply -f -`,
				"kubectl -n kube-system set env daemonset/canal -c flannel FLANNELD_IP_MASQ=false",
				`kubectl -n kube-system patch daemonset canal --type json -p '[{"op":"replace","path":"/spec/template/spec/containers/0/args","value":["--kube-subnet-mgr"]}]'`,
				"kubectl -n kube-system rollout status daemonset/canal",
			}},
		{name: "masquerading from the environment only", tweak: func(c *detect.Cluster) {
			withMasq(c)
			c.CNI.FlannelContainer.Command = []string{"/opt/bin/flanneld", "--kube-subnet-mgr"}
		}, status: Fail, commands: []string{
			"kubectl -n kube-system set env daemonset/canal -c kube-flannel FLANNELD_IP_MASQ=false",
			"kubectl -n kube-system rollout status daemonset/canal",
		}},
		{name: "RKE2's canal", tweak: func(c *detect.Cluster) { withMasq(c); c.CNI.DaemonSet = "rke2-canal" }, status: Fail, has: "drop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := canalCluster()
			tc.tweak(c)
			p, err := proposal.Propose(c, proposal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got *Result
			for _, r := range Run(Input{Cluster: c, Proposal: p, Access: &access.Result{Checked: 1}}) {
				if r.ID == IDCanalMasquerade {
					got = &r
				}
			}
			if got == nil {
				t.Fatal("no canal-masquerade check")
			}
			if got.Status != tc.status || !strings.Contains(got.Message, tc.has) {
				t.Errorf("got %s %q, want %s with %q", got.Status, got.Message, tc.status, tc.has)
			}
			if strings.Join(got.Commands, "\n") != strings.Join(tc.commands, "\n") {
				t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got.Commands, "\n"), strings.Join(tc.commands, "\n"))
			}
			for _, cmd := range got.Commands {
				if !strings.Contains(got.Fix, cmd) {
					t.Errorf("the fix does not show the command %q: %s", cmd, got.Fix)
				}
			}
			if tc.name == "RKE2's canal" && !strings.Contains(got.Fix, "HelmChartConfig kube-system/rke2-canal") {
				t.Errorf("RKE2's fix: %s", got.Fix)
			}
		})
	}
	// Canal only.
	for _, r := range Run(Input{Cluster: calicoCluster(), Access: &access.Result{Checked: 1}}) {
		if r.ID == IDCanalMasquerade {
			t.Errorf("calico got a canal-masquerade check: %+v", r)
		}
	}
}

func ptrTrue() *bool { t := true; return &t }
