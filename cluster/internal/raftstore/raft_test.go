package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// counterFSM counts applied commands; its snapshot is the count.
type counterFSM struct {
	mu sync.Mutex
	n  uint64
}

func (f *counterFSM) Apply(*raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return f.n
}

func (f *counterFSM) count() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *counterFSM) Snapshot() (raft.FSMSnapshot, error) {
	return counterSnapshot(f.count()), nil
}

func (f *counterFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n = binary.BigEndian.Uint64(b[:])
	return nil
}

type counterSnapshot uint64

func (c counterSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(binary.BigEndian.AppendUint64(nil, uint64(c))); err != nil {
		return errors.Join(err, sink.Cancel())
	}
	return sink.Close()
}

func (counterSnapshot) Release() {}

// startRaft starts a single-node raft on store with tight timeouts.
func startRaft(t *testing.T, store *Store, fsm raft.FSM, snaps raft.SnapshotStore) (*raft.Raft, raft.ServerAddress) {
	t.Helper()
	conf := raft.DefaultConfig()
	conf.LocalID = "n1"
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.TrailingLogs = 10
	conf.SnapshotThreshold = 1 << 20 // snapshots only when the test asks
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: t.Output(), Level: hclog.Warn})
	addr, trans := raft.NewInmemTransport("")
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
	if err != nil {
		t.Fatalf("NewRaft: %v", err)
	}
	return r, addr
}

func waitLeader(t *testing.T, r *raft.Raft) {
	t.Helper()
	waitFor(t, 5*time.Second, func() error {
		if st := r.State(); st != raft.Leader {
			return fmt.Errorf("state: got %v, want %v", st, raft.Leader)
		}
		return nil
	})
}

func applyN(t *testing.T, r *raft.Raft, n int) {
	t.Helper()
	futures := make([]raft.ApplyFuture, n)
	for i := range futures {
		futures[i] = r.Apply(fmt.Appendf(nil, "cmd-%d", i), 5*time.Second)
	}
	for i, f := range futures {
		if err := f.Error(); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
	}
}

// TestRaftSingleNodeRestart runs hashicorp/raft itself on the store:
// bootstrap, 100 applies, a snapshot with log truncation, shutdown, and a
// restart on the reopened store that restores term and last index and keeps
// applying.
func TestRaftSingleNodeRestart(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.Dir = t.TempDir() // real disk: the syncs are part of the test
	snaps := raft.NewInmemSnapshotStore()

	store := openStore(t, cfg)
	fsm := &counterFSM{}
	r, addr := startRaft(t, store, fsm, snaps)
	boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: "n1", Address: addr}}}
	if err := r.BootstrapCluster(boot).Error(); err != nil {
		t.Fatalf("BootstrapCluster: %v", err)
	}
	waitLeader(t, r)
	applyN(t, r, 100)
	if got := fsm.count(); got != 100 {
		t.Fatalf("applied: got %d, want 100", got)
	}

	// A snapshot makes raft truncate the log head through DeleteRange,
	// keeping TrailingLogs entries.
	if err := r.Snapshot().Error(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	lastIndex := r.LastIndex()
	first, _ := store.FirstIndex()
	if want := lastIndex - 10 + 1; first != want {
		t.Errorf("FirstIndex after snapshot: got %d, want %d (last %d, 10 trailing)", first, want, lastIndex)
	}
	term, err := store.GetUint64([]byte("CurrentTerm"))
	if err != nil || term == 0 {
		t.Fatalf("CurrentTerm: got %d, %v, want > 0", term, err)
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	store = reopen(t, store, cfg)
	if got, err := store.GetUint64([]byte("CurrentTerm")); err != nil || got != term {
		t.Errorf("CurrentTerm after restart: got %d, %v, want %d", got, err, term)
	}
	if got, _ := store.LastIndex(); got != lastIndex {
		t.Errorf("LastIndex after restart: got %d, want %d", got, lastIndex)
	}
	if got, _ := store.FirstIndex(); got != first {
		t.Errorf("FirstIndex after restart: got %d, want %d", got, first)
	}
	if ok, err := raft.HasExistingState(store, store, snaps); err != nil || !ok {
		t.Errorf("HasExistingState: got %v, %v, want true", ok, err)
	}

	fsm = &counterFSM{}
	r, _ = startRaft(t, store, fsm, snaps)
	defer func() {
		if err := r.Shutdown().Error(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	if got := r.LastIndex(); got != lastIndex {
		t.Errorf("raft LastIndex after restart: got %d, want %d", got, lastIndex)
	}
	waitLeader(t, r)
	// The snapshot plus the replayed trailing entries give the old count.
	waitFor(t, 5*time.Second, func() error {
		if got := fsm.count(); got != 100 {
			return fmt.Errorf("restored count: got %d, want 100", got)
		}
		return nil
	})
	applyN(t, r, 10)
	if got := fsm.count(); got != 110 {
		t.Errorf("applied after restart: got %d, want 110", got)
	}
	if got, _ := store.GetUint64([]byte("CurrentTerm")); got <= term {
		t.Errorf("CurrentTerm after re-election: got %d, want > %d", got, term)
	}
	if got, _ := store.LastIndex(); got <= lastIndex+10 {
		t.Errorf("LastIndex after new applies: got %d, want > %d", got, lastIndex+10)
	}
}
