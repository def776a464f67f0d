package cluster

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
)

// Snapshot format. A snapshot is the whole FSM keyspace
// [keyspaceStart, keyspaceEnd) of one consistent Pebble snapshot:
//
//	+----------------+------------+--------------------------------------------------+
//	| magic "DFSNAP" | version u16| zstd stream:                                     |
//	| 6 bytes        | BE, = 1    |   (uvarint klen | key | uvarint vlen | value)*   |
//	|                |            |   uvarint 0 (end) | pairs u64 | xxhash64 u64     |
//	+----------------+------------+--------------------------------------------------+
//
// Keys are never empty, so klen 0 ends the pairs. The checksum is xxHash64
// of every byte of the zstd stream up to and including the end marker;
// pairs counts the
// key/value pairs. Merge operands are resolved by the iterator, so a
// snapshot holds plain values.
//
// WARNING: snapshots are sent between nodes of possibly different versions
// and kept by operators as backups; never change version 1, add a version.
const (
	snapshotMagic   = "DFSNAP"
	snapshotVersion = 1
	// restoreBatchBytes is the size at which Restore commits a batch.
	restoreBatchBytes = 4 << 20
	// maxSnapshotKV bounds one key or value read by Restore.
	maxSnapshotKV = 64 << 20
)

// Snapshot returns a handle on a consistent Pebble snapshot of the FSM
// state; it is cheap, the copy happens in Persist (concurrently with later
// applies, as Raft allows).
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if f.store.replaying() {
		// What only memory and the Raft log hold is incomplete until the
		// replay is done; persisting it now would drop the pending keys
		// of entries not yet replayed. Raft tries again later.
		return nil, fmt.Errorf("fsm snapshot: %w", ErrReplaying)
	}
	if err := f.store.persistStagedObjects(); err != nil {
		return nil, fmt.Errorf("fsm snapshot: %w", err)
	}
	// The snapshot must carry the staged blocks held in memory: Raft may
	// truncate the entries they came from (obsstore.go, "Volatile blocks").
	if err := f.store.persistVolatile(); err != nil {
		return nil, fmt.Errorf("fsm snapshot: %w", err)
	}
	// And the dirty marks held in memory (fsm_dirty.go).
	if err := f.store.persistDirty(); err != nil {
		return nil, fmt.Errorf("fsm snapshot: %w", err)
	}
	return &fsmSnapshot{snap: f.store.db.NewSnapshot(), flush: f.store.flushUnlogged, logger: f.logger}, nil
}

// persistStagedObjects writes the object-index calls staged in memory
// into the tracking staging table and drops the pending keys, so the
// snapshot carries them and Raft may truncate the entries they came from
// (synced, or flushed by Persist when the store has no WAL). It runs on
// the apply goroutine (Raft calls Snapshot there).
func (s *Store) persistStagedObjects() error {
	if s.track.StagedInMemory() == 0 {
		// Nothing to carry. Pending keys left (calls of expired days)
		// only matter for entries Raft replays, and those it replays
		// stage nothing.
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.track.PersistStaged(b); err != nil {
		return err
	}
	if err := b.DeleteRange(pendingTable()); err != nil {
		return err
	}
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("persist staged object calls: %w", err)
	}
	s.track.DropStaged()
	return nil
}

type fsmSnapshot struct {
	snap *pebble.Snapshot
	// flush makes the store durable up to at least the snapshot
	// (Store.flushUnlogged).
	flush  func() error
	logger interface{ Debug(string, ...any) }
}

// Persist writes the snapshot to sink and closes it, or cancels it on error.
// Before the sink is closed (after which Raft may delete the log up to the
// snapshot) it makes the store durable up to the snapshot: without a WAL
// the store's memtables would otherwise hold entries Raft no longer has.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := s.write(sink)
	if err == nil {
		err = s.flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist fsm snapshot: %w", err)
	}
	return sink.Close()
}

// Release frees the Pebble snapshot.
func (s *fsmSnapshot) Release() { _ = s.snap.Close() }

func (s *fsmSnapshot) write(w io.Writer) (err error) {
	var hdr [8]byte
	copy(hdr[:], snapshotMagic)
	binary.BigEndian.PutUint16(hdr[6:], snapshotVersion)
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(zw, 256<<10)
	h := xxhash.New()
	out := io.MultiWriter(bw, h)
	it, err := s.snap.NewIter(&pebble.IterOptions{LowerBound: keyspaceStart, UpperBound: keyspaceEnd})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	var pairs uint64
	var lenBuf [binary.MaxVarintLen64]byte
	put := func(b []byte) error {
		n := binary.PutUvarint(lenBuf[:], uint64(len(b)))
		if _, err := out.Write(lenBuf[:n]); err != nil {
			return err
		}
		_, err := out.Write(b)
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := put(it.Key()); err != nil {
			return err
		}
		if err := put(v); err != nil {
			return err
		}
		pairs++
	}
	if err := it.Error(); err != nil {
		return err
	}
	if _, err := out.Write([]byte{0}); err != nil {
		return err
	}
	var trailer [16]byte
	binary.BigEndian.PutUint64(trailer[:], pairs)
	binary.BigEndian.PutUint64(trailer[8:], h.Sum64())
	if _, err := bw.Write(trailer[:]); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return zw.Close()
}

// Restore replaces the whole FSM state with the snapshot read from rc and
// closes rc. It first drops every key and sets a restore-in-progress marker,
// loads the pairs in batches, checks the checksum, then clears the marker
// and rebuilds the in-memory caches; both commits are synced, or, when the
// store has no WAL, the store is flushed after the second. A restore that
// fails or is interrupted leaves the marker, and OpenStore wipes such a
// partial state, so Raft restores again. Reads running concurrently may see
// a partial state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s := f.store
	if err := s.restore(rc); err != nil {
		return fmt.Errorf("restore fsm snapshot: %w", err)
	}
	f.logger.Info("fsm restored from snapshot", "raft_index", s.AppliedIndex())
	return nil
}

func (s *Store) restore(r io.Reader) error {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if string(hdr[:6]) != snapshotMagic {
		return errors.New("not a demandflow fsm snapshot")
	}
	if v := binary.BigEndian.Uint16(hdr[6:]); v != snapshotVersion {
		return fmt.Errorf("unsupported snapshot version %d", v)
	}
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer zr.Close()
	br := bufio.NewReaderSize(zr, 256<<10)
	h := xxhash.New()
	tr := io.TeeReader(br, h)
	byteReader := &teeByteReader{r: br, h: h}

	// Pending observation blocks go with the old state; a fold running
	// now discards its work (obsstore.go). So do the object calls staged
	// in memory (the snapshot carries its own in the staging table).
	s.stage.mu.Lock()
	s.stage.dropLocked(nil)
	s.stage.mu.Unlock()
	s.track.ResetStaged()
	b := s.db.NewBatch()
	if err := b.DeleteRange(keyspaceStart, keyspaceEnd, nil); err != nil {
		return err
	}
	if err := b.Set(keyRestoring, nil, nil); err != nil {
		return err
	}
	// Without a WAL this is not durable yet, which is as safe: a crash
	// before the next flush keeps the old state and its applied index, and
	// any flush of the restored pairs carries the marker before them.
	if err := b.Commit(s.wo); err != nil {
		return err
	}
	_ = b.Close()
	b = s.db.NewBatch()
	defer func() { _ = b.Close() }()
	var pairs uint64
	readChunk := func() ([]byte, error) {
		n, err := binary.ReadUvarint(byteReader)
		if err != nil {
			return nil, err
		}
		if n > maxSnapshotKV {
			return nil, fmt.Errorf("entry of %d bytes is too large", n)
		}
		buf := make([]byte, n)
		_, err = io.ReadFull(tr, buf)
		return buf, err
	}
	for {
		k, err := readChunk()
		if err != nil {
			return fmt.Errorf("read pair %d: %w", pairs, err)
		}
		if len(k) == 0 {
			break
		}
		v, err := readChunk()
		if err != nil {
			return fmt.Errorf("read pair %d: %w", pairs, err)
		}
		if bytes.Equal(k, keyRestoring) {
			continue
		}
		if err := b.Set(k, v, nil); err != nil {
			return err
		}
		pairs++
		if b.Len() >= restoreBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Reset()
		}
	}
	sum := h.Sum64()
	var trailer [16]byte
	if _, err := io.ReadFull(br, trailer[:]); err != nil {
		return fmt.Errorf("read trailer: %w", err)
	}
	if n := binary.BigEndian.Uint64(trailer[:]); n != pairs {
		return fmt.Errorf("snapshot has %d pairs, trailer says %d", pairs, n)
	}
	if c := binary.BigEndian.Uint64(trailer[8:]); c != sum {
		return fmt.Errorf("snapshot checksum mismatch: got %x, want %x", sum, c)
	}
	if err := b.Delete(keyRestoring, nil); err != nil {
		return err
	}
	if err := b.Commit(s.wo); err != nil {
		return err
	}
	// Raft deletes its log up to the snapshot once the restore returns.
	if err := s.flushUnlogged(); err != nil {
		return err
	}
	return s.load()
}

// teeByteReader feeds bytes read one at a time (uvarints) into the checksum.
type teeByteReader struct {
	r   *bufio.Reader
	h   *xxhash.Digest
	one [1]byte
}

func (t *teeByteReader) ReadByte() (byte, error) {
	c, err := t.r.ReadByte()
	if err == nil {
		t.one[0] = c
		_, _ = t.h.Write(t.one[:])
	}
	return c, err
}
