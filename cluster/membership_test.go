package cluster

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestSuspectFromProbes checks that a member without acked probes turns
// suspect, and alive again when an ack arrives.
func TestSuspectFromProbes(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	m := &membership{log: slog.New(slog.DiscardHandler), events: make(chan memberlist.NodeEvent, 8),
		acks: make(chan string, 8), probe: 10 * time.Millisecond, self: "a",
		members: map[string]*Member{
			"a": {Name: "a", Status: StatusAlive, Since: time.Now()},
			"b": {Name: "b", Status: StatusAlive, Since: time.Now()},
			"c": {Name: "c", Status: StatusAlive, Since: time.Now()},
		},
		notify: func(mem Member) {
			mu.Lock()
			seen = append(seen, mem.Name+"="+mem.Status)
			mu.Unlock()
		}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { m.loop(done) })
	defer func() { close(done); wg.Wait() }()

	// Keep c acked; b goes silent.
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.acks <- "c"
		if mb, _ := m.get("b"); mb.Status == StatusSuspect {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b: got %q, want suspect after %s without acks", func() string { mb, _ := m.get("b"); return mb.Status }(), m.suspectAfter(2))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if mc, _ := m.get("c"); mc.Status != StatusAlive {
		t.Errorf("c (acked): got %s, want alive", mc.Status)
	}
	if ma, _ := m.get("a"); ma.Status != StatusAlive {
		t.Errorf("self: got %s, want alive", ma.Status)
	}
	m.acks <- "b"
	for {
		if mb, _ := m.get("b"); mb.Status == StatusAlive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b: not alive again after an ack")
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 || seen[0] != "b=suspect" || seen[len(seen)-1] != "b=alive" {
		t.Errorf("notifications: got %v, want b=suspect then b=alive", seen)
	}
}
