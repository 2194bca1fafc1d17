package lab

import (
	"context"
	"fmt"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/monitor"
)

// Namespaces of the lab's workloads.
const (
	AppsNamespace    = "lab-apps"
	MonitorNamespace = "lab-monitor"
	// MonitorServiceIP is the ClusterIP of the monitor's Service.
	MonitorServiceIP = "10.96.100.10"
	// WebServiceIP is the ClusterIP of the web app's Service.
	WebServiceIP = "10.96.100.20"
	// AppServiceIP is the ClusterIP of the well-run application's Service
	// (monitor.KindApp).
	AppServiceIP = "10.96.100.30"
)

// Workloads deploys the test applications (agnhost netexec servers):
// Deployment web (3 replicas, PDB maxUnavailable 1) behind Service web,
// Deployment api (2 replicas, PDB minAvailable 1) behind Service api, and
// StatefulSet db (2 replicas) behind its headless Service; and Deployment
// app, the well-run application whose users the verdict speaks for: two
// replicas that the scheduler keeps on different nodes, a PDB
// (minAvailable 1), a readiness probe (every second, failing after the
// kubelet's default of 3 misses: with 1, the lab's CPU starvation, which
// delays every node's kubelet and pods at once, failed both replicas'
// probes in the same second and kube-proxy rejected the Service's
// connections, CI 2026-12-07 08:21), and a graceful shutdown (a preStop
// pause, so that every node's kube-proxy has dropped the endpoint before
// the server stops, and a grace period that covers it), and a CPU request
// (100m: Burstable, as a production Deployment is, so that on a node whose
// CPU is short the kubelet's cgroups give it about fifty times the share of
// the BestEffort pods, the agents among them, instead of an equal one; with
// none, a cold make test on 2 cores lost 1 of 5,419 requests to a replica
// starved while finalize's agent restarts and sweep Jobs ran, 2026-12-07)
// behind Service app.
func (l *Lab) Workloads(ctx context.Context) error {
	_, err := l.Cluster.Apply(ctx, []byte(strings.NewReplacer(
		"NAMESPACE", AppsNamespace, "IMAGE", Images.Agnhost, "WEBIP", WebServiceIP, "APPIP", AppServiceIP).Replace(workloadsYAML)))
	return err
}

// Monitor deploys the probe DaemonSet (one labprobe per node, every taint
// tolerated so that cordoned and draining nodes keep theirs), its headless
// Service for the peer list and a ClusterIP Service. Each probe writes to
// /var/lib/lab-monitor on its node, which is l.MonitorDir on the host.
// interval and timeout are Go durations ("500ms", "3s"). With policies,
// the policy namespace (see Flows) is deployed too and the monitor pods
// probe its servers as well.
func (l *Lab) Monitor(ctx context.Context, interval, timeout string, policies Policies) error {
	if policies.Kubernetes {
		if err := l.deployPolicies(ctx, policies); err != nil {
			return fmt.Errorf("policies: %w", err)
		}
	}
	args := append([]string{
		"--listen=:8080",
		"--peers=monitor-peers." + MonitorNamespace + ".svc.cluster.local",
		"--target=svc-ip=http://" + MonitorServiceIP + ":8080/whoami",
		"--target=svc-dns=http://monitor." + MonitorNamespace + ".svc.cluster.local:8080/whoami",
		"--target=web=" + fmt.Sprintf("http://%s/clientip", WebServiceIP),
		"--target=" + monitor.KindApp + "=" + fmt.Sprintf("http://%s/clientip", AppServiceIP),
		"--interval=" + interval,
		"--timeout=" + timeout,
		"--mtu-bytes=1400",
		"--out=/out",
	}, policies.flowArgs("monitor")...)
	_, err := l.Cluster.Apply(ctx, []byte(strings.NewReplacer("NAMESPACE", MonitorNamespace, "SVCIP", MonitorServiceIP).Replace(monitorYAML)+
		probeDaemonSet(MonitorNamespace, "monitor", "app", "monitor", args)))
	return err
}

const workloadsYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: NAMESPACE
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: NAMESPACE
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector:
          matchLabels: {app: web}
      tolerations:
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      containers:
      - name: web
        image: IMAGE
        args: ["netexec", "--http-port=8080"]
        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 2
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: NAMESPACE
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app: web}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: NAMESPACE
spec:
  clusterIP: WEBIP
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: NAMESPACE
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      terminationGracePeriodSeconds: 2
      tolerations:
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      containers:
      - name: api
        image: IMAGE
        args: ["netexec", "--http-port=8080"]
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 2
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: api
  namespace: NAMESPACE
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: api}
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: NAMESPACE
spec:
  selector: {app: api}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: NAMESPACE
spec:
  clusterIP: None
  selector: {app: db}
  ports:
  - port: 8080
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: NAMESPACE
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      terminationGracePeriodSeconds: 2
      tolerations:
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      containers:
      - name: db
        image: IMAGE
        args: ["netexec", "--http-port=8080"]
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: NAMESPACE
spec:
  replicas: 2
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      terminationGracePeriodSeconds: 20
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              topologyKey: kubernetes.io/hostname
              labelSelector:
                matchLabels: {app: app}
      tolerations:
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      containers:
      - name: app
        image: IMAGE
        args: ["netexec", "--http-port=8080"]
        ports:
        - containerPort: 8080
        resources:
          requests: {cpu: 100m}
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 1
          failureThreshold: 3
        lifecycle:
          preStop:
            sleep: {seconds: 8}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: app
  namespace: NAMESPACE
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: app}
---
apiVersion: v1
kind: Service
metadata:
  name: app
  namespace: NAMESPACE
spec:
  clusterIP: APPIP
  selector: {app: app}
  ports:
  - port: 80
    targetPort: 8080
`

const monitorYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: NAMESPACE
---
apiVersion: v1
kind: Service
metadata:
  name: monitor-peers
  namespace: NAMESPACE
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: monitor}
  ports:
  - port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: monitor
  namespace: NAMESPACE
spec:
  clusterIP: SVCIP
  selector: {app: monitor}
  ports:
  - port: 8080
`
