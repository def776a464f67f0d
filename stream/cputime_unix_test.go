//go:build unix

package stream_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) this process has used,
// so benchmarks can report throughput per CPU second, which other load on a
// shared machine does not distort the way it distorts wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
