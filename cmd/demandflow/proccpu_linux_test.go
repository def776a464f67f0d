package main

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func TestProcCPU(t *testing.T) {
	self := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, ok := procCPU(os.Getpid())
	if !ok {
		t.Fatal("procCPU of this process: not readable")
	}
	// Spin until getrusage says this process used 100 ms more CPU
	// (whatever else the machine runs), then /proc must agree to within
	// its 10 ms ticks and the spin's own start.
	r0 := self()
	for deadline := time.Now().Add(10 * time.Second); self()-r0 < 100*time.Millisecond && time.Now().Before(deadline); {
	}
	after, ok := procCPU(os.Getpid())
	if d := after - before; !ok || d < 80*time.Millisecond {
		t.Errorf("procCPU: %v -> %v (+%v) while getrusage counted %v, want at least 80 ms more", before, after, d, self()-r0)
	}
	if _, ok := procCPU(1 << 30); ok {
		t.Errorf("procCPU of a pid that does not exist: ok")
	}
}
