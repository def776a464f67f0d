package node

import (
	"io"
	"runtime"
	"testing"
	"time"
)

// slowReader returns one byte per Read after sleeping (a body that
// arrives slowly) and using CPU (a decompressor under the meter), n times.
type slowReader struct {
	n          int
	sleep, cpu time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.sleep)
	spin(r.cpu)
	r.n--
	p[0] = 'x'
	return 1, nil
}

// spin uses about d of CPU time on the calling thread.
func spin(d time.Duration) {
	t0 := threadCPU()
	for threadCPU()-t0 < d {
	}
}

// TestCPUMeter: the meter counts the CPU time spent between reads, and
// neither the time a read waits for the body nor the CPU the reads use.
func TestCPUMeter(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("thread CPU time is only measured on Linux")
	}
	m := &cpuMeter{r: &slowReader{n: 4, sleep: 30 * time.Millisecond, cpu: 25 * time.Millisecond}}
	m.begin()
	buf := make([]byte, 1)
	reads := 0
	for {
		spin(20 * time.Millisecond)
		if _, err := m.Read(buf); err == io.EOF {
			break
		}
		reads++
	}
	m.end()
	if reads != 4 {
		t.Fatalf("got %d reads, want 4", reads)
	}
	// Five spins of 20 ms between reads; the four reads' 100 ms of CPU
	// and 120 ms of sleep must not count.
	if m.cpu < 90*time.Millisecond || m.cpu > 170*time.Millisecond {
		t.Errorf("measured %v of CPU, want about 100ms (5 x 20ms between reads; the reads' 4 x 25ms excluded)", m.cpu)
	}
	if m.on {
		t.Error("meter still inside a span after end")
	}
	// end and begin are idempotent; a Read outside a span opens none.
	m.end()
	if _, err := m.Read(buf); err != io.EOF || m.on {
		t.Errorf("Read outside a span: err %v, on %v", err, m.on)
	}
}
