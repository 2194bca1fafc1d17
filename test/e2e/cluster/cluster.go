// Package cluster runs a real, local Kubernetes control plane for end-to-end
// tests: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// built from the published modules (hack/e2e/build-tools.sh), plus kwok,
// which plays the kubelet of fake nodes. Every server listens on 127.0.0.1.
package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure Start. The zero value is usable.
type Options struct {
	// Cache is the directory filled by hack/e2e/build-tools.sh. Default:
	// $E2E_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-cni-migrate.
	Cache string
	// Dir is the work directory (PKI, kubeconfigs, data, logs). Default: a
	// new temporary directory. It is never removed by Stop.
	Dir string
	// Name is the cluster (and kubeconfig context) name. Default "cni-migrate-e2e".
	Name string
	// ServiceCIDR defaults to 10.96.0.0/16, ClusterCIDR (the node podCIDR
	// pool of kube-controller-manager) to 10.244.0.0/16, NodeCIDRMaskSize to 24.
	ServiceCIDR      string
	ClusterCIDR      string
	NodeCIDRMaskSize int
	// Detach starts the processes in their own sessions so that they outlive
	// the calling process (for the e2e-cluster CLI). Attached processes are
	// killed by the kernel when the caller dies.
	Detach bool
	// UngatedPodNetwork runs kwok's stock pod-ready stage: pods get an
	// address from their node's podCIDR at once. By default pods wait for
	// PodNetworkAnnotation, set by a CNI simulation such as ciliumsim.
	UngatedPodNetwork bool
	// ExtraAPIServerArgs and ExtraControllerManagerArgs are appended.
	ExtraAPIServerArgs         []string
	ExtraControllerManagerArgs []string
	// Logf receives progress messages (default: discarded).
	Logf func(format string, args ...any)

	// NetNS, when set, is the path of a network namespace (/run/netns/NAME)
	// in which etcd and the control plane run, as on a host of their own.
	// Server is then a forwarder on 127.0.0.1 in the caller's namespace
	// that dials into NetNS, so tools on the host reach the API server
	// while the host's network stays untouched.
	NetNS string
	// AdvertiseAddress is the API server's address inside NetNS, the one
	// the kubernetes Service points at (default 127.0.0.1). The serving
	// certificate covers it.
	AdvertiseAddress string
	// NoKwok starts no kwok controller: the nodes are real kubelets.
	NoKwok bool
}

// Cluster is a running control plane.
type Cluster struct {
	// Dir is the work directory; logs are in Dir/logs.
	Dir string
	// Cache is the tool cache the binaries come from.
	Cache string
	// Kubeconfig is the path of an admin kubeconfig (system:masters).
	Kubeconfig string
	// Server is the API server URL (https://127.0.0.1:PORT).
	Server string
	// RESTConfig is the admin client configuration.
	RESTConfig *rest.Config
	// Client and Dynamic are admin clients.
	Client  kubernetes.Interface
	Dynamic dynamic.Interface

	opts    Options
	pki     *pki
	ports   ports
	mu      sync.Mutex
	procs   []*process
	stopped bool
	fwd     *forwarder
	images  map[string]string

	nodeMu    sync.Mutex
	nodeCount int
}

type ports struct {
	etcd, etcdPeer, apiserver, kcm, scheduler, kwok int
}

// DefaultCache returns $E2E_CACHE or ${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-cni-migrate.
func DefaultCache() string {
	if c := os.Getenv("E2E_CACHE"); c != "" {
		return c
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "kubectl-cni-migrate")
}

// Bin returns the path of a tool in the cache (cache/bin/NAME).
func (c *Cluster) Bin(name string) string { return filepath.Join(c.Cache, "bin", name) }

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// Start starts a control plane and waits until it serves: the API server is
// ready, the controller manager, scheduler and kwok report healthy and the
// default ServiceAccount exists. On error everything started is stopped.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Cache == "" {
		opts.Cache = DefaultCache()
	}
	if opts.Name == "" {
		opts.Name = "cni-migrate-e2e"
	}
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = "10.96.0.0/16"
	}
	if opts.ClusterCIDR == "" {
		opts.ClusterCIDR = "10.244.0.0/16"
	}
	if opts.NodeCIDRMaskSize == 0 {
		opts.NodeCIDRMaskSize = 24
	}
	if opts.AdvertiseAddress == "" {
		opts.AdvertiseAddress = "127.0.0.1"
	}
	bins := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
	if !opts.NoKwok {
		bins = append(bins, "kwok")
	}
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(opts.Cache, "bin", b)); err != nil {
			return nil, fmt.Errorf("%s missing from %s (run `make e2e-tools` or hack/e2e/build-tools.sh): %w", b, opts.Cache, err)
		}
	}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "cni-migrate-e2e-")
		if err != nil {
			return nil, err
		}
		opts.Dir = d
	} else if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Cache: opts.Cache, opts: opts}
	if err := c.start(ctx); err != nil {
		stopErr := c.Stop()
		var b bytes.Buffer
		c.DumpLogs(&b)
		return nil, errors.Join(fmt.Errorf("start cluster in %s: %w\n%s", dir, err, b.String()), stopErr)
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	t0 := time.Now()
	free, err := freePorts(6)
	if err != nil {
		return err
	}
	c.ports = ports{etcd: free[0], etcdPeer: free[1], apiserver: free[2], kcm: free[3], scheduler: free[4], kwok: free[5]}
	// inside is the API server's URL where the control plane runs; Server
	// is where the caller reaches it (the same unless NetNS is set).
	inside := fmt.Sprintf("https://127.0.0.1:%d", c.ports.apiserver)
	c.Server = inside
	if c.opts.NetNS != "" {
		if c.fwd, err = startForwarder(c.opts.NetNS, fmt.Sprintf("127.0.0.1:%d", c.ports.apiserver)); err != nil {
			return err
		}
		c.Server = "https://" + c.fwd.addr()
	}

	_, svcNet, err := net.ParseCIDR(c.opts.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("service CIDR: %w", err)
	}
	firstSvcIP := make(net.IP, len(svcNet.IP.To4()))
	copy(firstSvcIP, svcNet.IP.To4())
	firstSvcIP[3]++
	extraIPs := []net.IP{firstSvcIP}
	if ip := net.ParseIP(c.opts.AdvertiseAddress); ip != nil && !ip.IsLoopback() {
		extraIPs = append(extraIPs, ip)
	}
	if c.pki, err = generatePKI(filepath.Join(c.Dir, "pki"), extraIPs...); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	kubeconfigs := map[string]string{"admin": c.Kubeconfig}
	for _, id := range []string{"kube-controller-manager", "kube-scheduler", "kwok"} {
		kubeconfigs[id] = filepath.Join(c.Dir, "pki", id+".kubeconfig")
	}
	for id, path := range kubeconfigs {
		server := inside // the components run beside the API server
		if id == "admin" {
			server = c.Server
		}
		if err := c.writeKubeconfig(path, id, server); err != nil {
			return err
		}
	}
	if c.RESTConfig, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return err
	}
	c.RESTConfig.QPS = 200
	c.RESTConfig.Burst = 400
	if c.Client, err = kubernetes.NewForConfig(c.RESTConfig); err != nil {
		return err
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.RESTConfig); err != nil {
		return err
	}

	// etcd
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcd)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcdPeer)
	etcd, err := c.startProcess("etcd", c.Bin("etcd"), []string{
		"--name=e2e",
		"--data-dir=" + filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls=" + etcdURL,
		"--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=e2e=" + peerURL,
		"--unsafe-no-fsync=true",
		"--quota-backend-bytes=8589934592",
		"--log-level=warn",
	}, nil)
	if err != nil {
		return err
	}
	if err := c.waitHTTP(ctx, etcd, etcdURL+"/health", nil, time.Minute); err != nil {
		return err
	}
	c.logf("etcd healthy after %v", time.Since(t0).Round(time.Millisecond))

	// kube-apiserver
	p := c.pki
	authz := "RBAC"
	if c.opts.NoKwok {
		authz = "Node,RBAC" // real kubelets: the Node authorizer, as kubeadm
	}
	bind := "127.0.0.1"
	if c.opts.NetNS != "" {
		bind = "0.0.0.0" // every address of the control plane's own namespace
	}
	apiArgs := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + bind,
		"--advertise-address=" + c.opts.AdvertiseAddress,
		"--secure-port=" + strconv.Itoa(c.ports.apiserver),
		"--tls-cert-file=" + p.servingCert,
		"--tls-private-key-file=" + p.servingK,
		"--client-ca-file=" + p.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saPub,
		"--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=" + c.opts.ServiceCIDR,
		"--authorization-mode=" + authz,
		"--allow-privileged=true",
		"--profiling=false",
		"--cert-dir=" + filepath.Join(c.Dir, "apiserver"),
	}
	if c.opts.NoKwok {
		// Real kubelets: logs, exec and port-forward go through them.
		admin := c.pki.clients["admin"]
		apiArgs = append(apiArgs,
			"--kubelet-client-certificate="+admin.cert,
			"--kubelet-client-key="+admin.key,
			"--kubelet-preferred-address-types=InternalIP,Hostname",
			"--enable-admission-plugins=NodeRestriction")
	}
	apiArgs = append(apiArgs, c.opts.ExtraAPIServerArgs...)
	api, err := c.startProcess("kube-apiserver", c.Bin("kube-apiserver"), apiArgs, nil)
	if err != nil {
		return err
	}
	adminTLS, err := c.clientTLS("admin")
	if err != nil {
		return err
	}
	if err := c.waitHTTP(ctx, api, inside+"/readyz", adminTLS, 2*time.Minute); err != nil {
		return err
	}
	c.logf("kube-apiserver ready after %v", time.Since(t0).Round(time.Millisecond))

	// kube-controller-manager, kube-scheduler, kwok
	kcmArgs := []string{
		"--kubeconfig=" + kubeconfigs["kube-controller-manager"],
		"--authentication-kubeconfig=" + kubeconfigs["kube-controller-manager"],
		"--authorization-kubeconfig=" + kubeconfigs["kube-controller-manager"],
		"--authentication-skip-lookup",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.ports.kcm),
		"--cert-dir=" + filepath.Join(c.Dir, "kube-controller-manager"),
		"--leader-elect=false",
		"--use-service-account-credentials=true", // per-controller identities, as kubeadm
		"--service-account-private-key-file=" + p.saKey,
		"--root-ca-file=" + p.caCert,
		"--cluster-signing-cert-file=" + p.caCert,
		"--cluster-signing-key-file=" + p.caKey,
		"--allocate-node-cidrs=true",
		"--cluster-cidr=" + c.opts.ClusterCIDR,
		"--node-cidr-mask-size=" + strconv.Itoa(c.opts.NodeCIDRMaskSize),
		"--service-cluster-ip-range=" + c.opts.ServiceCIDR,
		"--cluster-name=" + c.opts.Name,
		// kwok heartbeats can lag under load; a missed one must not mark
		// nodes NotReady (kwok would not flip pods back).
		"--node-monitor-grace-period=5m",
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
		"--concurrent-daemonset-syncs=4",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--profiling=false",
	}
	kcmArgs = append(kcmArgs, c.opts.ExtraControllerManagerArgs...)
	kcm, err := c.startProcess("kube-controller-manager", c.Bin("kube-controller-manager"), kcmArgs, nil)
	if err != nil {
		return err
	}
	sched, err := c.startProcess("kube-scheduler", c.Bin("kube-scheduler"), []string{
		"--kubeconfig=" + kubeconfigs["kube-scheduler"],
		"--authentication-kubeconfig=" + kubeconfigs["kube-scheduler"],
		"--authorization-kubeconfig=" + kubeconfigs["kube-scheduler"],
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.ports.scheduler),
		"--cert-dir=" + filepath.Join(c.Dir, "kube-scheduler"),
		"--leader-elect=false",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--profiling=false",
	}, nil)
	if err != nil {
		return err
	}
	insecure := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // health probes of local components with self-signed certs
	waits := []struct {
		p   *process
		url string
		tls *tls.Config
	}{
		{kcm, fmt.Sprintf("https://127.0.0.1:%d/healthz", c.ports.kcm), insecure},
		{sched, fmt.Sprintf("https://127.0.0.1:%d/healthz", c.ports.scheduler), insecure},
	}
	if !c.opts.NoKwok {
		kwok, err := c.startKwok(kubeconfigs["kwok"])
		if err != nil {
			return err
		}
		waits = append(waits, struct {
			p   *process
			url string
			tls *tls.Config
		}{kwok, fmt.Sprintf("http://127.0.0.1:%d/healthz", c.ports.kwok), nil})
	}
	for _, w := range waits {
		if err := c.waitHTTP(ctx, w.p, w.url, w.tls, 2*time.Minute); err != nil {
			return err
		}
	}
	c.logf("controller-manager, scheduler and kwok healthy after %v", time.Since(t0).Round(time.Millisecond))
	return c.waitServiceAccount(ctx, t0)
}

func (c *Cluster) startKwok(kubeconfig string) (*process, error) {
	stages, err := c.writeKwokStages()
	if err != nil {
		return nil, err
	}
	return c.startProcess("kwok", c.Bin("kwok"), []string{
		"--kubeconfig=" + kubeconfig,
		"--config=" + stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + FakeNodeAnnotation + "=fake",
		"--server-address=127.0.0.1:" + strconv.Itoa(c.ports.kwok),
		"--node-ip=127.0.0.1",
		"--node-lease-duration-seconds=40",
	}, []string{"KWOK_WORKDIR=" + filepath.Join(c.Dir, "kwok")})
}

// waitServiceAccount waits until the ServiceAccount controller and the
// root CA publisher have run.
func (c *Cluster) waitServiceAccount(ctx context.Context, t0 time.Time) error {
	err := c.poll(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		if _, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return false, ignoreNotFound(err)
		}
		_, err := c.Client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err == nil, ignoreNotFound(err)
	})
	if err != nil {
		return fmt.Errorf("waiting for the default ServiceAccount: %w", err)
	}
	c.logf("cluster ready after %v (kubeconfig %s)", time.Since(t0).Round(time.Millisecond), c.Kubeconfig)
	return nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// poll runs cond every 200ms until it returns true, an error, the context
// ends or timeout passes. A process of the cluster that dies fails it.
func (c *Cluster) poll(ctx context.Context, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.checkAlive(); err != nil {
			return false, err
		}
		return cond(ctx)
	})
}

// checkAlive returns an error naming the first process that exited.
func (c *Cluster) checkAlive() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.exited() {
			return fmt.Errorf("%s exited: %v (log %s)", p.Name, p.err, p.LogPath)
		}
	}
	return nil
}

// Healthy reports an error if a process of the cluster has exited.
func (c *Cluster) Healthy() error { return c.checkAlive() }

func (c *Cluster) waitHTTP(ctx context.Context, p *process, url string, tlsConf *tls.Config, timeout time.Duration) error {
	tr := &http.Transport{TLSClientConfig: tlsConf}
	if c.opts.NetNS != "" {
		ns := c.opts.NetNS
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return DialInNetNS(ctx, ns, network, addr)
		}
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	defer client.CloseIdleConnections()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("%s exited: %v", p.Name, p.err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s at %s (last: %s): %w\n--- %s\n%s", p.Name, url, last, err, p.LogPath, tail(p.LogPath, 30))
	}
	return nil
}

func (c *Cluster) clientTLS(id string) (*tls.Config, error) {
	cc := c.pki.clients[id]
	cert, err := tls.X509KeyPair(cc.certPEM, cc.keyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.pki.caPEM) {
		return nil, errors.New("bad CA certificate")
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// writeKubeconfig writes a kubeconfig with embedded credentials for identity id.
func (c *Cluster) writeKubeconfig(path, id, server string) error {
	cc := c.pki.clients[id]
	return c.writeKubeconfigFor(path, id, server, cc.certPEM, cc.keyPEM)
}

func (c *Cluster) writeKubeconfigFor(path, user, server string, certPEM, keyPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.opts.Name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.pki.caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts[c.opts.Name] = &clientcmdapi.Context{Cluster: c.opts.Name, AuthInfo: user}
	cfg.CurrentContext = c.opts.Name
	return clientcmd.WriteToFile(*cfg, path)
}

// freePorts reserves n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Stop stops every process of the cluster, newest first (SIGTERM to its
// process group, SIGKILL after 10 s), and waits for them. It keeps Dir for
// diagnosis and is safe to call more than once and concurrently.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	c.stopped = true
	procs := append([]*process(nil), c.procs...)
	c.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if c.fwd != nil {
		c.fwd.close()
	}
	return errors.Join(errs...)
}

// PIDs returns the PIDs of the cluster's processes by name.
func (c *Cluster) PIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for _, p := range c.procs {
		m[p.Name] = p.pid()
	}
	return m
}

// DumpLogs writes the last lines of every component log to w.
func (c *Cluster) DumpLogs(w io.Writer) {
	c.mu.Lock()
	procs := append([]*process(nil), c.procs...)
	c.mu.Unlock()
	for _, p := range procs {
		state := "running"
		if p.exited() {
			state = fmt.Sprintf("exited: %v", p.err)
		}
		fmt.Fprintf(w, "===== %s (pid %d, %s) %s =====\n%s\n", p.Name, p.pid(), state, p.LogPath, tail(p.LogPath, 40))
	}
}
