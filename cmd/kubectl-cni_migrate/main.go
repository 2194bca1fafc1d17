// Command kubectl-cni_migrate is the kubectl plugin `kubectl cni-migrate`:
// kubectl finds it on PATH and turns the dash of "cni-migrate" into the
// underscore of the binary name.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	// Every client-go auth provider (exec, OIDC, ...), as kubectl has them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/cmd"
)

// Set by the linker: -X main.version=... (see Makefile).
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	root := cmd.NewCmdCNIMigrate(streams, cmd.BuildInfo{Version: version, Commit: commit, Date: date}, cmd.Env{NoColor: os.Getenv("NO_COLOR"), ProbeEndpoint: os.Getenv("KUBECTL_CNI_MIGRATE_PROBE_ENDPOINT")})
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, cmd.FormatError(err))
		os.Exit(cmd.ExitCode(err))
	}
}
