package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// unansweredFuture is a Raft future whose answer never comes: a
// leadership transfer or an Apply still queued in Raft's buffered channel
// when Raft shuts down.
type unansweredFuture struct{ answer chan error }

func (f unansweredFuture) Error() error { return <-f.answer }

// TestWaitAppliedEndsWhenClosing: a wait on a future Raft never answers
// ends once the cluster closes. (The leader loop once waited on such a
// leadership transfer without a bound, and Close hung on the loop.)
func TestWaitAppliedEndsWhenClosing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{ctx: ctx, cancel: cancel}
	f := unansweredFuture{answer: make(chan error)}
	defer close(f.answer) // ends waitApplied's own goroutine
	done := make(chan error, 1)
	go func() { done <- c.waitApplied(f) }()
	select {
	case err := <-done:
		t.Fatalf("waitApplied returned %v while the cluster was open", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, raft.ErrRaftShutdown) {
			t.Fatalf("waitApplied after close: got %v, want %v", err, raft.ErrRaftShutdown)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waitApplied still waiting 10 s after the cluster closed")
	}
}

// TestWaitAppliedAnswer: an answered future's error comes back as it is,
// also when the answer arrives while the cluster closes.
func TestWaitAppliedAnswer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &Cluster{ctx: ctx, cancel: cancel}
	f := unansweredFuture{answer: make(chan error, 1)}
	f.answer <- raft.ErrLeadershipLost
	if err := c.waitApplied(f); !errors.Is(err, raft.ErrLeadershipLost) {
		t.Fatalf("got %v, want %v", err, raft.ErrLeadershipLost)
	}
	cancel()
	f.answer <- nil
	if err := c.waitApplied(f); err != nil {
		t.Fatalf("after close, answered: got %v, want nil", err)
	}
}
