//go:build tools

// Package tools pins sigs.k8s.io/kwok/cmd/kwok, built by hack/e2e/build-tools.sh.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
