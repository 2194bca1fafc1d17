//go:build tools

// Package tools pins helm.sh/helm/v3/cmd/helm, built by hack/e2e/build-tools.sh.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
