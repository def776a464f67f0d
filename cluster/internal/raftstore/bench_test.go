package raftstore

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// benchStore opens a store on a real temp dir: the syncs are what is measured.
func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(Config{Dir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	return s
}

// benchLogs returns n entries of size random bytes starting at index 1.
func benchLogs(n, size int) []*raft.Log {
	rng := rand.NewChaCha8([32]byte{7})
	logs := make([]*raft.Log, n)
	for i := range logs {
		data := make([]byte, size)
		_, _ = rng.Read(data)
		logs[i] = &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
	}
	return logs
}

// BenchmarkStoreLogs measures synced appends of raft-sized batches, as a
// leader under ingest load issues them: many small entries, one, or a few
// 10,000-row ingest entries (about 360 KB each).
//
//	go test -run '^$' -bench StoreLogs -benchtime 2000x ./cluster/internal/raftstore/
func BenchmarkStoreLogs(b *testing.B) {
	for _, bc := range []struct{ batch, size int }{{64, 4 << 10}, {1, 4 << 10}, {6, 360 << 10}} {
		b.Run(fmt.Sprintf("batch=%d/size=%d", bc.batch, bc.size), func(b *testing.B) {
			s := benchStore(b)
			logs := benchLogs(bc.batch, bc.size)
			b.SetBytes(int64(bc.batch * bc.size))
			b.ReportAllocs()
			next := uint64(1)
			for b.Loop() {
				for _, l := range logs {
					l.Index = next
					next++
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bc.batch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkGetLog measures random reads of stored 4 KiB entries, as
// replication to a lagging follower issues them.
//
//	go test -run '^$' -bench GetLog ./cluster/internal/raftstore/
func BenchmarkGetLog(b *testing.B) {
	const n, size = 20000, 4 << 10
	s := benchStore(b)
	logs := benchLogs(n, size)
	for i := 0; i < n; i += 500 {
		if err := s.StoreLogs(logs[i:min(i+500, n)]); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(size)
	b.ReportAllocs()
	var l raft.Log
	for b.Loop() {
		if err := s.GetLog(rng.Uint64N(n)+1, &l); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
