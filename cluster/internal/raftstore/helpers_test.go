package raftstore

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// testConfig returns a Config on fs (a new MemFS if nil) logging to t.Output().
func testConfig(t testing.TB, fs vfs.FS) Config {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	return Config{
		Dir:    "raft",
		FS:     fs,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

// openStore opens cfg and closes the store at the end of the test.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// reopen closes s and opens a new store with cfg.
func reopen(t testing.TB, s *Store, cfg Config) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openStore(t, cfg)
}

// mkLog returns a deterministic entry for index and term.
func mkLog(index, term uint64) *raft.Log {
	return &raft.Log{
		Index:      index,
		Term:       term,
		Type:       raft.LogCommand,
		Data:       fmt.Appendf(nil, "data-%d-%d", index, term),
		Extensions: fmt.Appendf(nil, "ext-%d", index),
		AppendedAt: time.Unix(1_700_000_000, int64(index)),
	}
}

// mkLogs returns entries lo..hi with term.
func mkLogs(lo, hi, term uint64) []*raft.Log {
	logs := make([]*raft.Log, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		logs = append(logs, mkLog(i, term))
	}
	return logs
}

// randomLogs returns mkLogs(lo, hi, term) with size random bytes of data
// each from rng, so that no compression hides their size.
func randomLogs(rng *rand.ChaCha8, lo, hi, term uint64, size int) []*raft.Log {
	logs := mkLogs(lo, hi, term)
	for _, l := range logs {
		l.Data = make([]byte, size)
		_, _ = rng.Read(l.Data)
	}
	return logs
}

// diffLog describes how got differs from want, or returns "".
func diffLog(got, want *raft.Log) string {
	switch {
	case got.Index != want.Index:
		return fmt.Sprintf("index: got %d, want %d", got.Index, want.Index)
	case got.Term != want.Term:
		return fmt.Sprintf("term: got %d, want %d", got.Term, want.Term)
	case got.Type != want.Type:
		return fmt.Sprintf("type: got %v, want %v", got.Type, want.Type)
	case !bytes.Equal(got.Data, want.Data):
		return fmt.Sprintf("data: got %d bytes %.32q, want %d bytes %.32q", len(got.Data), got.Data, len(want.Data), want.Data)
	case !bytes.Equal(got.Extensions, want.Extensions):
		return fmt.Sprintf("extensions: got %q, want %q", got.Extensions, want.Extensions)
	case !got.AppendedAt.Equal(want.AppendedAt):
		return fmt.Sprintf("appended_at: got %v, want %v", got.AppendedAt, want.AppendedAt)
	}
	return ""
}

// waitFor polls f until it returns nil or timeout passes (NATS checkFor).
func waitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
