//go:build tools

// Package tools pins the Kubernetes control-plane commands that
// hack/e2e/build-tools.sh builds from this scratch module.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
