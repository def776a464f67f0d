package batchslot

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestSlot takes, commits and keeps batches: the kept one comes back
// reset, with the buffer of its last use, and what it wrote stays
// committed.
func TestSlot(t *testing.T) {
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s Slot
	if s.Kept() {
		t.Fatal("a new slot holds a batch")
	}
	b := s.Take(db, 1<<10, 1<<20)
	val := make([]byte, 64<<10)
	for i := range 3 {
		if err := b.Set([]byte{'k', byte(i)}, val, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	grown := cap(b.Repr())
	s.Keep(b)
	if !s.Kept() {
		t.Fatal("Keep kept nothing")
	}
	b2 := s.Take(db, 1<<10, 1<<20)
	if b2 != b || !b2.Empty() || cap(b2.Repr()) != grown {
		t.Fatalf("Take after Keep: same batch %v, empty %v, buffer %d bytes (want %d)", b2 == b, b2.Empty(), cap(b2.Repr()), grown)
	}
	if s.Kept() {
		t.Fatal("a taken batch is still in the slot")
	}
	for i := range 3 {
		if v, closer, err := db.Get([]byte{'k', byte(i)}); err != nil || len(v) != len(val) {
			t.Fatalf("key %d after the reuse: %d bytes, %v", i, len(v), err)
		} else {
			closer.Close()
		}
	}
	s.Keep(b2)
	s.Close()
	if s.Kept() {
		t.Fatal("Close left a batch")
	}
}
