package kube

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func cachePod(ns, name, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + uid)}, Spec: corev1.PodSpec{NodeName: "n1"}}
}

// gets counts the GETs of pods that reach the (fake) API server.
func gets(c *fake.Clientset) *atomic.Int32 {
	var n atomic.Int32
	c.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		n.Add(1)
		return false, nil, nil
	})
	return &n
}

func TestWatchedPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := fake.NewClientset(cachePod("a", "p1", "1"), cachePod("b", "p2", "2"))
	n := gets(c)
	cs, stop := WatchedPods(ctx, c, "", "spec.nodeName=n1")
	defer stop()
	if cs == c {
		t.Fatal("the cache did not sync: the clientset passes everything through")
	}

	// A pod the watch holds: answered from the watch (the first Get after
	// waiting a moment for the watch to see it go).
	start := time.Now()
	for i := 0; i < 5; i++ {
		p, err := cs.CoreV1().Pods("a").Get(ctx, "p1", metav1.GetOptions{})
		if err != nil || p.UID != "uid-1" {
			t.Fatalf("Get p1 = %v, %v", p, err)
		}
	}
	if d := time.Since(start); d < firstGetWait || d > 10*firstGetWait {
		t.Errorf("5 Gets of a pod the watch holds took %v, want one wait of about %v", d, firstGetWait)
	}
	if got := n.Load(); got != 0 {
		t.Fatalf("%d GETs reached the API server for a pod the watch holds, want 0", got)
	}

	// A Get for a resourceVersion goes to the API server.
	if _, err := cs.CoreV1().Pods("a").Get(ctx, "p1", metav1.GetOptions{ResourceVersion: "0"}); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("%d GETs reached the API server after a Get with a resourceVersion, want 1", got)
	}

	// A deleted pod: the watch sees it go, and its Gets are NotFound
	// without a request.
	if err := c.CoreV1().Pods("b").Delete(ctx, "p2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := cs.CoreV1().Pods("b").Get(ctx, "p2", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if err != nil {
			t.Fatalf("Get p2 after the delete: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch still holds p2 10s after its delete")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("%d GETs reached the API server for a deleted pod, want none more", got-1)
	}

	// A pod the watch knows nothing of is asked of the API server.
	if _, err := cs.CoreV1().Pods("c").Get(ctx, "p9", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Get of an unknown pod: %v", err)
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("%d GETs reached the API server for a pod the watch never held, want 1", got-1)
	}

	// A pod recreated with the same name is the API server's: it is
	// answered from the watch with its new UID.
	if _, err := c.CoreV1().Pods("b").Create(ctx, cachePod("b", "p2", "3"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		p, err := cs.CoreV1().Pods("b").Get(ctx, "p2", metav1.GetOptions{})
		if err == nil && p.UID == "uid-3" {
			break
		}
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get p2 after its recreation = %v, %v; want the new UID", p, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Everything else passes through.
	if _, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A first list that fails (no rights, API server gone) passes everything
// through at once instead of waiting PodCacheSync.
func TestWatchedPodsListFails(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset(cachePod("a", "p1", "1"))
	c.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "", errors.New("no"))
	})
	start := time.Now()
	cs, stop := WatchedPods(ctx, c, "", "")
	defer stop()
	if cs != c {
		t.Fatal("a failed first list should give back the clientset as it is")
	}
	if d := time.Since(start); d > PodCacheSync/2 {
		t.Fatalf("WatchedPods took %v after a failed list", d)
	}
	n := gets(c)
	if _, err := cs.CoreV1().Pods("a").Get(ctx, "p1", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Fatal("the Get did not reach the API server")
	}
}
