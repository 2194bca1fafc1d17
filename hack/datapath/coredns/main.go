// Command coredns is CoreDNS with the plugins of kubeadm's Corefile only
// (test/e2e/fixture: errors, health, ready, kubernetes, prometheus, forward,
// cache, loop, reload, loadbalance), the way kubernetes/dns's node-cache
// builds it: the cloud and tracing plugins of the full build (about half of
// its compile time) are not needed by the lab.
package main

import (
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() { coremain.Run() }
