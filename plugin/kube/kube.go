// Package kube builds API clients from kubectl's flags and turns client-go
// errors into the plugin's one-line errors with exit codes.
package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Clients are the API clients of one command run.
type Clients struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Server is the API server URL; ClusterName the kubeconfig cluster name.
	Server      string
	ClusterName string
	// Outage waits out a short API server outage (its Notify says so).
	Outage *Outage
}

// New builds clients from kubectl's flags (--kubeconfig, --context, ...).
// Requests ask for protobuf where the API supports it.
func New(flags *genericclioptions.ConfigFlags) (*Clients, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, errs.Wrap(errs.Usage, err, "cannot load a kubeconfig: "+errs.OneLine(err.Error()),
			"set KUBECONFIG or pass --kubeconfig and --context")
	}
	cfg.UserAgent = "kubectl-cni-migrate"
	// A rollout batch drains many nodes at once, and the drain helper
	// polls each evicted pod every second: at 50 QPS a batch of 20 nodes
	// waited on its own rate limiter (make bench-rollout). The API
	// server's priority and fairness protects it, as for kubectl.
	cfg.QPS, cfg.Burst = 300, 600
	outage := &Outage{Wait: OutageWait}
	cfg.Wrap(outage.Wrap)
	protoCfg := rest.CopyConfig(cfg)
	protoCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	protoCfg.ContentType = "application/vnd.kubernetes.protobuf"
	kc, err := kubernetes.NewForConfig(protoCfg)
	if err != nil {
		return nil, errs.Wrap(errs.Usage, err, "invalid client configuration: "+errs.OneLine(err.Error()), "check your kubeconfig")
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, errs.Wrap(errs.Usage, err, "invalid client configuration: "+errs.OneLine(err.Error()), "check your kubeconfig")
	}
	c := &Clients{Config: cfg, Kube: kc, Dynamic: dc, Server: cfg.Host, Outage: outage}
	if raw, err := flags.ToRawKubeConfigLoader().RawConfig(); err == nil {
		ctxName := raw.CurrentContext
		if flags.Context != nil && *flags.Context != "" {
			ctxName = *flags.Context
		}
		if kctx, ok := raw.Contexts[ctxName]; ok {
			c.ClusterName = kctx.Cluster
		}
		if flags.ClusterName != nil && *flags.ClusterName != "" {
			c.ClusterName = *flags.ClusterName
		}
	}
	return c, nil
}

// Classify turns an error from an API call into an *errs.Error with the
// right exit code. what says what was being done ("reading nodes").
func (c *Clients) Classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	server := c.Server
	if u, perr := url.Parse(server); perr == nil && u.Host != "" {
		server = u.Host
	}
	timeout := "its timeout"
	if c.Config != nil && c.Config.Timeout > 0 {
		timeout = c.Config.Timeout.String()
	}
	msg := errs.OneLine(err.Error())
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case errors.Is(err, context.Canceled):
		return errs.Wrap(errs.Interrupted, err, "interrupted while "+what, "run the same command again to continue")
	case apierrors.IsUnauthorized(err):
		return errs.Wrap(errs.Forbidden, err, "the API server at "+server+" rejected your credentials while "+what,
			"refresh the credentials in your kubeconfig (kubectl get nodes should work)")
	case apierrors.IsForbidden(err):
		return errs.Wrap(errs.Forbidden, err, "forbidden while "+what+": "+msg,
			"use a context with more rights, or apply docs/rbac.yaml and bind it to your user")
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout(), apierrors.IsTimeout(err), strings.Contains(msg, "Client.Timeout exceeded"):
		return errs.Wrap(errs.Unreachable, err, fmt.Sprintf("the API server at %s did not answer within %s while %s", server, timeout, what),
			"check --kubeconfig/--context and the network, or raise --request-timeout")
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, os.ErrDeadlineExceeded):
		return errs.Wrap(errs.Unreachable, err, fmt.Sprintf("cannot reach the API server at %s (connection refused) while %s", server, what),
			"check --kubeconfig/--context and that the cluster is running")
	case errors.As(err, &urlErr):
		return errs.Wrap(errs.Unreachable, err, fmt.Sprintf("cannot reach the API server at %s while %s: %s", server, what, errs.OneLine(urlErr.Err.Error())),
			"check --kubeconfig/--context and that the cluster is running")
	case apierrors.IsNotFound(err):
		return errs.Wrap(errs.Unsupported, err, what+": "+msg, "check --context points at the right cluster")
	}
	return errs.Wrap(errs.Unreachable, err, "the API server at "+server+" returned an error while "+what+": "+msg,
		"check the cluster's health (kubectl get --raw /readyz)")
}
