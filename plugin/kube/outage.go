package kube

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// OutageWait is how long a request waits out an API server it cannot
// connect to, once the server has answered this run (a restart of the API
// server, a VPN that drops for a moment). A server never reached fails at
// once, so a wrong --context is not waited on.
const OutageWait = 90 * time.Second

// Outage is a RoundTripper wrapper that sends a request again, every
// second for up to Wait, when it could not even connect to the API server
// (the request never left, so even a write is safe to send again), after
// the server answered once. Notify, when set, is told when a wait begins
// and ends (once per outage).
type Outage struct {
	Wait   time.Duration
	Notify func(msg string)

	reached atomic.Bool
	mu      sync.Mutex
	down    time.Time // when the current outage was first seen
}

// Wrap is a rest.Config WrapTransport.
func (o *Outage) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		deadline := time.Now().Add(o.Wait)
		for {
			resp, err := rt.RoundTrip(req)
			if err == nil {
				o.reached.Store(true)
				o.up()
				return resp, nil
			}
			if !o.reached.Load() || !cannotConnect(err) || time.Now().After(deadline) || (req.Body != nil && req.GetBody == nil) {
				return resp, err
			}
			o.downSince()
			select {
			case <-req.Context().Done():
				return resp, err
			case <-time.After(time.Second):
			}
			if req.GetBody != nil {
				body, berr := req.GetBody()
				if berr != nil {
					return resp, err
				}
				req = req.Clone(req.Context())
				req.Body = body
			}
		}
	})
}

func (o *Outage) downSince() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down.IsZero() {
		o.down = time.Now()
		if o.Notify != nil {
			o.Notify("the API server cannot be reached: waiting up to " + o.Wait.String() + " for it to come back")
		}
	}
}

func (o *Outage) up() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down.IsZero() {
		if o.Notify != nil {
			o.Notify("the API server is back after " + time.Since(o.down).Round(time.Second).String())
		}
		o.down = time.Time{}
	}
}

// cannotConnect reports errors of a request that never reached the server:
// the connection could not be made (refused, no route, DNS).
func cannotConnect(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
