package kube

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// server serves on addr (a fixed port, so it can come back), echoing the
// request body.
func serve(t *testing.T, addr string) (stop func()) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }
}

func TestOutage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var mu sync.Mutex
	var said []string
	o := &Outage{Wait: 10 * time.Second, Notify: func(s string) { mu.Lock(); said = append(said, s); mu.Unlock() }}
	tr := &http.Transport{DisableKeepAlives: true}
	client := &http.Client{Transport: o.Wrap(tr)}
	post := func() (string, error) {
		resp, err := client.Post("http://"+addr+"/", "text/plain", strings.NewReader("hello"))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	// Never reached: no wait, the error at once.
	start := time.Now()
	if _, err := post(); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("a server never reached: err %v after %v", err, time.Since(start))
	}

	stop := serve(t, addr)
	if got, err := post(); err != nil || got != "hello" {
		t.Fatalf("post: %q %v", got, err)
	}
	// Down for two seconds: the write waits and is sent again, body and all.
	stop()
	back := make(chan func(), 1)
	go func() {
		time.Sleep(2 * time.Second)
		back <- serve(t, addr)
	}()
	start = time.Now()
	got, err := post()
	if err != nil || got != "hello" {
		t.Fatalf("post across the outage: %q %v", got, err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("answered after %v: there was no outage", d)
	}
	(<-back)()
	mu.Lock()
	defer mu.Unlock()
	if len(said) != 2 || !strings.Contains(said[0], "cannot be reached: waiting up to 10s") || !strings.Contains(said[1], "is back after") {
		t.Fatalf("notified %q", said)
	}
}

func TestOutageGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o := &Outage{Wait: 1500 * time.Millisecond}
	client := &http.Client{Transport: o.Wrap(&http.Transport{DisableKeepAlives: true})}
	stop := serve(t, addr)
	if resp, err := client.Get("http://" + addr + "/"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	stop()
	start := time.Now()
	if _, err := client.Get("http://" + addr + "/"); err == nil || !cannotConnect(err) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Fatalf("gave up after %v, want about Wait", d)
	}
}
