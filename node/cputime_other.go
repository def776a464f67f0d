//go:build !linux

package node

import "time"

// threadCPU is not measured outside Linux (no per-thread rusage); the
// validate block then reports zero CPU time.
func threadCPU() time.Duration { return 0 }
