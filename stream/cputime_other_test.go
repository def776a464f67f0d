//go:build !unix

package stream_test

import "time"

// processCPU is not available here; rows/cpu-s is then not reported.
func processCPU() time.Duration { return 0 }
