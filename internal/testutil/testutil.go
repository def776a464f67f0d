// Package testutil holds test helpers shared by every package's tests.
package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10 ms until it returns nil, failing the test
// with cond's last error once timeout has passed (NATS checkFor). Tests wait
// on state this way instead of sleeping.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("after %s: %v", timeout, err)
	}
}

// Poll is WaitFor without a test: it returns cond's last error after
// timeout, or nil as soon as cond returns nil.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(wait*2, 10*time.Millisecond)
	}
}
