package cluster

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// DialInNetNS dials addr from inside the network namespace at nsPath (a
// file such as /run/netns/NAME): the socket is created on an OS thread
// that has entered the namespace, so it lives there while the caller stays
// in its own. The thread goes back to its namespace afterwards; if it
// cannot, it is retired with its goroutine instead of being reused.
func DialInNetNS(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		ns, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("enter %s: %w", nsPath, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else: the locked thread exits with this goroutine
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// forwarder accepts TCP connections on 127.0.0.1 in the caller's network
// namespace and relays each one to target inside a network namespace.
type forwarder struct {
	ln     net.Listener
	nsPath string
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startForwarder(nsPath, target string) (*forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, nsPath: nsPath, target: target, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.relay(c)
		}()
	}
}

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

func (f *forwarder) relay(in net.Conn) {
	if !f.track(in) {
		in.Close()
		return
	}
	defer f.untrack(in)
	out, err := DialInNetNS(context.Background(), f.nsPath, "tcp", f.target)
	if err != nil {
		return
	}
	if !f.track(out) {
		out.Close()
		return
	}
	defer f.untrack(out)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.ln.Close()
	f.wg.Wait()
}

// WriteClientKubeconfig issues a client certificate for the user cn in the
// groups orgs, signed by the cluster's CA, and writes a kubeconfig with it
// for server (e.g. a kubelet's, whose API server address is the one its
// node reaches). It returns the certificate and key files, written beside
// the kubeconfig.
func (c *Cluster) WriteClientKubeconfig(path, cn string, orgs []string, server string) (certFile, keyFile string, err error) {
	if c.pki == nil || c.pki.ca == nil {
		return "", "", errors.New("cluster has no PKI")
	}
	certPEM, key, err := c.pki.ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: orgs},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return "", "", err
	}
	dir := filepath.Dir(path)
	base := filepath.Base(path)
	if certFile, keyFile, err = writePair(dir, base, certPEM, key); err != nil {
		return "", "", err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return "", "", err
	}
	return certFile, keyFile, c.writeKubeconfigFor(path, cn, server, certPEM, keyPEM)
}

// CAFile is the path of the cluster CA certificate.
func (c *Cluster) CAFile() string { return c.pki.caCert }

// InternalServer is the API server's URL as the control plane's own
// namespace sees it: https://ADVERTISE-ADDRESS:PORT.
func (c *Cluster) InternalServer() string {
	return fmt.Sprintf("https://%s", net.JoinHostPort(c.opts.AdvertiseAddress, fmt.Sprint(c.ports.apiserver)))
}
