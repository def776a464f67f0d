package node

import (
	"io"
	"runtime"
	"time"
)

// cpuMeter measures the CPU time its reader's caller spends between reads:
// the decoding and validation of a body, without the waits for the body
// to arrive. The goroutine is locked to its thread only while it computes
// (begin to the next Read, a Read's return to end), never across a Read:
// a goroutine locked while it blocks on a QUIC or TCP stream must be
// handed back its own thread on every wakeup (h3 NDJSON ingest, 2M rows in
// 200 requests: 43-44k context switches in the node when locked across
// the whole decode, 26k this way).
//
// All calls must come from one goroutine (stream.Decode reads on its
// caller's goroutine).
type cpuMeter struct {
	r     io.Reader
	cpu   time.Duration // measured so far
	start time.Duration // the thread's CPU time when the current span began
	on    bool          // inside a span (locked)
}

// begin starts a span of computation on the calling goroutine.
func (m *cpuMeter) begin() {
	if m.on {
		return
	}
	runtime.LockOSThread()
	m.start, m.on = threadCPU(), true
}

// end closes the current span.
func (m *cpuMeter) end() {
	if !m.on {
		return
	}
	if d := threadCPU() - m.start; d > 0 {
		m.cpu += d
	}
	m.on = false
	runtime.UnlockOSThread()
}

// Read reads from the underlying reader outside any span.
func (m *cpuMeter) Read(p []byte) (int, error) {
	on := m.on
	m.end()
	n, err := m.r.Read(p)
	if on {
		m.begin()
	}
	return n, err
}
