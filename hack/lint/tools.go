//go:build tools

// Package lint pins the linters `make lint` runs; it is its own module so
// their dependencies stay out of the plugin's go.mod.
package lint

import _ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
