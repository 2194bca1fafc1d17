//go:build unix

package lock

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

func TestProcessGone(t *testing.T) {
	if ProcessGone(os.Getpid()) {
		t.Error("this process is gone")
	}
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	if !ProcessGone(done.Process.Pid) {
		t.Error("a process waited for is not gone")
	}
	if runtime.GOOS != "linux" {
		return
	}
	// A child that exited and is not waited for yet: a zombie.
	z := exec.Command("true")
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = z.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for !zombie(z.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("the child did not become a zombie within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !ProcessGone(z.Process.Pid) {
		t.Error("a zombie is not gone")
	}
}
