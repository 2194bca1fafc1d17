package lab

import (
	"context"
	"fmt"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/monitor"
)

// PolicyNamespace holds the policy probes' servers and clients.
const PolicyNamespace = "lab-policy"

// Where the policy servers announce themselves (below the monitor
// directory every node mounts at /out in the probe pods).
const (
	serversDir = "/out/policy/servers"
	monitorDir = "/out"
)

// Policies say which NetworkPolicies the lab's workloads carry.
type Policies struct {
	// Kubernetes deploys the policy namespace with its NetworkPolicies
	// (default-deny ingress, allows by podSelector and namespaceSelector,
	// an egress policy) and the policy probes.
	Kubernetes bool
	// Calico adds one of Calico's own NetworkPolicies and one
	// GlobalNetworkPolicy, as crd.projectcalico.org/v1 objects (how
	// calicoctl stores projectcalico.org/v3 ones without the Calico API
	// server).
	Calico bool
}

// Flow is one policy probe: the clients (pods of DaemonSet client, or
// "monitor") send GET /whoami to Port of the pods announced in a directory
// (the policy servers, or the monitor pods), which the policies Allow or
// not. Name is "<policy>/<client>".
type Flow struct {
	Name, Client, Port string
	Allow              bool
	// Policies are the policies that decide it, as the docs list them.
	Policies string
	// Calico flows exist only with Policies.Calico.
	Calico bool
	dir    string
}

// Flows are every policy flow of the lab, for each policy one it allows
// and one it denies.
var Flows = []Flow{
	{Name: "np-pod-selector/client", Client: "client", Port: "8080", Allow: true, dir: serversDir,
		Policies: "default-deny-ingress, allow-client (podSelector role=client, port 8080), client-egress (egress to app=server)"},
	{Name: "np-pod-selector/server", Client: "server", Port: "8080", dir: serversDir,
		Policies: "default-deny-ingress; allow-client does not select app=server clients"},
	{Name: "np-namespace-selector/monitor", Client: "monitor", Port: "8081", Allow: true, dir: serversDir,
		Policies: "allow-monitor-namespace (namespaceSelector lab-monitor, port 8081)"},
	{Name: "np-namespace-selector/client", Client: "client", Port: "8081", dir: serversDir,
		Policies: "default-deny-ingress; allow-monitor-namespace selects only namespace lab-monitor"},
	{Name: "np-egress/client", Client: "client", Port: "8080", dir: monitorDir,
		Policies: "client-egress: role=client may reach app=server and DNS only (the monitor pods have no ingress policy)"},
	{Name: "calico-np/server", Client: "server", Port: "8082", Allow: true, Calico: true, dir: serversDir,
		Policies: "Calico NetworkPolicy allow-server-peers (order 200: Allow app=server to port 8082)"},
	{Name: "calico-np/client", Client: "client", Port: "8082", Calico: true, dir: serversDir,
		Policies: "no Allow for role=client on 8082: default-deny-ingress"},
	{Name: "calico-gnp/client", Client: "client", Port: "8083", Allow: true, Calico: true, dir: serversDir,
		Policies: "GlobalNetworkPolicy port-8083 (order 100: Allow role=client, then Deny, to port 8083 of app=server)"},
	{Name: "calico-gnp/monitor", Client: "monitor", Port: "8083", Calico: true, dir: serversDir,
		Policies: "GlobalNetworkPolicy port-8083's Deny"},
}

// flowArgs are the labprobe --policy arguments of a client's flows.
func (p Policies) flowArgs(client string) []string {
	if !p.Kubernetes {
		return nil
	}
	var out []string
	for _, f := range Flows {
		if f.Client != client || (f.Calico && !p.Calico) {
			continue
		}
		expect := monitor.ExpectDeny
		if f.Allow {
			expect = monitor.ExpectAllow
		}
		out = append(out, fmt.Sprintf("--policy=%s,%s,%s,%s", f.Name, f.dir, f.Port, expect))
	}
	return out
}

// probeDaemonSet is a DaemonSet of labprobe pods (labelled key=value) on
// every node, every taint tolerated (so that cordoned and draining nodes
// keep theirs), with the monitor directory of their node at /out and args.
// Its placeholders are @WORD@: a bare NAME would also rewrite the env
// names POD_NAME and NODE_NAME.
func probeDaemonSet(namespace, name, key, value string, args []string) string {
	var a strings.Builder
	for _, x := range args {
		fmt.Fprintf(&a, "\n        - %q", x)
	}
	return strings.NewReplacer("@NAMESPACE@", namespace, "@NAME@", name, "@KEY@", key, "@VALUE@", value, "@IMAGE@", Images.Probe, "@ARGS@", a.String()).Replace(`---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: @NAME@
  namespace: @NAMESPACE@
spec:
  selector:
    matchLabels: {@KEY@: @VALUE@}
  template:
    metadata:
      labels: {@KEY@: @VALUE@}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - operator: Exists
      containers:
      - name: probe
        image: @IMAGE@
        args:@ARGS@
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: POD_NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        - name: NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 2
        volumeMounts:
        - name: out
          mountPath: /out
      volumes:
      - name: out
        hostPath:
          path: /var/lib/lab-monitor
          type: Directory
`)
}

// deployPolicies applies the policy namespace: its NetworkPolicies (and
// Calico's), the server DaemonSet (app=server: ports 8080-8083, and the
// server->server flows) and the client DaemonSet (role=client).
func (l *Lab) deployPolicies(ctx context.Context, p Policies) error {
	common := []string{"--listen=:8080", "--peers-dir=-", "--out=/out/policy", "--timeout=3s", "--mtu-bytes=0"}
	server := append(append([]string{"--also-listen=8081,8082,8083", "--announce=" + serversDir}, common...), p.flowArgs("server")...)
	client := append(append([]string{"--announce=/out/policy/clients"}, common...), p.flowArgs("client")...)
	doc := strings.NewReplacer("NAMESPACE", PolicyNamespace, "MONITORNS", MonitorNamespace).Replace(policyYAML) +
		probeDaemonSet(PolicyNamespace, "server", "app", "server", server) +
		probeDaemonSet(PolicyNamespace, "client", "role", "client", client)
	if p.Calico {
		doc += strings.ReplaceAll(calicoPolicyYAML, "NAMESPACE", PolicyNamespace)
	}
	_, err := l.Cluster.Apply(ctx, []byte(doc))
	return err
}

const policyYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: NAMESPACE
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
  namespace: NAMESPACE
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-client
  namespace: NAMESPACE
spec:
  podSelector:
    matchLabels: {app: server}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels: {role: client}
    ports:
    - {protocol: TCP, port: 8080}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-monitor-namespace
  namespace: NAMESPACE
spec:
  podSelector:
    matchLabels: {app: server}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: MONITORNS}
    ports:
    - {protocol: TCP, port: 8081}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: client-egress
  namespace: NAMESPACE
spec:
  podSelector:
    matchLabels: {role: client}
  policyTypes: [Egress]
  egress:
  - to:
    - podSelector:
        matchLabels: {app: server}
  - to:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: kube-system}
      podSelector:
        matchLabels: {k8s-app: kube-dns}
    ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
`

// calicoPolicyYAML: a Calico NetworkPolicy and a GlobalNetworkPolicy as
// a user writes them in projectcalico.org/v3 (calicoctl apply), stored as
// the crd.projectcalico.org/v1 objects calicoctl writes when no Calico API
// server runs (the same spec; Calico v3.31 keeps a default-tier policy's
// name as it is).
const calicoPolicyYAML = `---
apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata:
  name: allow-server-peers
  namespace: NAMESPACE
spec:
  tier: default
  order: 200
  selector: app == 'server'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: app == 'server'
    destination:
      ports: [8082]
---
apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata:
  name: port-8083
spec:
  tier: default
  order: 100
  selector: app == 'server' && projectcalico.org/namespace == 'NAMESPACE'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: role == 'client'
      namespaceSelector: projectcalico.org/name == 'NAMESPACE'
    destination:
      ports: [8083]
  - action: Deny
    protocol: TCP
    destination:
      ports: [8083]
`
