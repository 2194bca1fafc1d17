package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

const (
	// FakeNodeAnnotation marks the nodes kwok manages (value "fake").
	FakeNodeAnnotation = "kwok.x-k8s.io/node"

	// PodNetworkAnnotation gates the readiness of non-hostNetwork pods: kwok
	// starts such a pod only once this annotation is set, standing in for
	// the CNI plugin that must set up the pod's network first. Its value
	// names the CNI that did (for example "flannel" or "cilium").
	PodNetworkAnnotation = "e2e.cni-migrate.io/pod-network"
	// PodIPsAnnotation optionally carries the pod's addresses, comma
	// separated. When it is absent or empty kwok allocates one address from
	// the node's spec.podCIDRs, as it does by default.
	PodIPsAnnotation = "e2e.cni-migrate.io/pod-ips"
	// HoldNotReadyAnnotation keeps a node's Ready as a test set it: kwok's
	// node-initialize stage, which makes every node that is not Ready
	// Ready at once, leaves a node with this annotation alone (the node's
	// pods and lease are kept as for any other node), so that a test can
	// make a node NotReady for as long as it likes.
	HoldNotReadyAnnotation = "e2e.cni-migrate.io/hold-not-ready"
)

// holdNotReady adds the HoldNotReadyAnnotation exception to the upstream
// node-initialize stage.
func holdNotReady(stage []byte) ([]byte, error) {
	const sel = "  selector:\n    matchExpressions:\n"
	if !bytes.Contains(stage, []byte(sel)) {
		return nil, fmt.Errorf("kwok stage node-initialize: no %q to add the %s exception to", sel, HoldNotReadyAnnotation)
	}
	add := fmt.Sprintf("    - key: '.metadata.annotations[\"%s\"]'\n      operator: 'DoesNotExist'\n", HoldNotReadyAnnotation)
	return bytes.Replace(stage, []byte(sel), []byte(sel+add), 1), nil
}

// Upstream kwok stages copied verbatim into the cache by build-tools.sh
// (node-initialize gets the HoldNotReadyAnnotation exception).
var upstreamStages = []string{
	"node-initialize.yaml",
	"node-heartbeat-with-lease.yaml",
	"pod-complete.yaml",
	"pod-delete.yaml",
}

// The pod-ready stage is replaced by two stages: one for hostNetwork pods
// (ready at once with the node's address) and one for the other pods, which
// waits for PodNetworkAnnotation and takes the addresses from
// PodIPsAnnotation when set. Both stages only ever match Pending pods, so
// kwok never rewrites the address of a running pod.
const podReadyStages = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready-host-network
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
    - key: '.spec.hostNetwork'
      operator: 'In'
      values: ['true']
  next:
    statusTemplate: |
      %[1]s
      {{ $podIPs := NodeIPsWith .spec.nodeName }}
      %[2]s
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready-pod-network
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
    - key: '.spec.hostNetwork'
      operator: 'NotIn'
      values: ['true']
    - key: '.metadata.annotations["%[3]s"]'
      operator: 'Exists'
  next:
    statusTemplate: |
      %[1]s
      {{ $given := "" }}
      {{ with .metadata.annotations }}{{ with index . "%[4]s" }}{{ $given = . }}{{ end }}{{ end }}
      {{ $podIPs := list }}
      {{ if $given }}
      {{ $podIPs = splitList "," $given }}
      {{ else }}
      {{ $podIPs = PodIPsWith .spec.nodeName false ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ end }}
      %[2]s
`

// statusHead renders conditions, container statuses and host IPs of a
// started pod; it is indented to sit inside the block scalar above.
const statusHead = `{{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: PodReadyToStartContainers
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      {{ range .spec.readinessGates }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: {{ .conditionType | Quote }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        {{ if eq ( or .restartPolicy "" ) "Always" }}
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
        {{ else }}
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
        {{ end }}
      {{ end }}
      {{ with NodeIPsWith .spec.nodeName }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}`

const statusTail = `{{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}`

// writeKwokStages writes the Stage configuration kwok runs with and returns
// its path: the upstream node and pod stages from the cache plus this
// package's pod-ready stages (or the upstream pod-ready stage when the pod
// network gate is off).
func (c *Cluster) writeKwokStages() (string, error) {
	src := filepath.Join(c.Cache, "kwok", "stages")
	names := upstreamStages
	if c.opts.UngatedPodNetwork {
		names = append(names[:len(names):len(names)], "pod-ready.yaml")
	}
	var b bytes.Buffer
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return "", fmt.Errorf("kwok stage (run hack/e2e/build-tools.sh): %w", err)
		}
		if n == "node-initialize.yaml" {
			if data, err = holdNotReady(data); err != nil {
				return "", err
			}
		}
		b.Write(bytes.TrimSpace(data))
		b.WriteString("\n---\n")
	}
	if !c.opts.UngatedPodNetwork {
		fmt.Fprintf(&b, podReadyStages, statusHead, statusTail, PodNetworkAnnotation, PodIPsAnnotation)
	}
	dir := filepath.Join(c.Dir, "kwok")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "stages.yaml")
	return path, os.WriteFile(path, b.Bytes(), 0o644)
}
