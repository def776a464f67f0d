package raftstore

import (
	"context"
	"fmt"
	"log/slog"
)

// pebbleLogger bridges pebble.Logger to slog. Pebble's Infof is routine
// chatter, so it logs at Debug; Errorf logs at Error.
type pebbleLogger struct {
	l *slog.Logger
}

// Infof logs at Debug.
func (p pebbleLogger) Infof(format string, args ...any) {
	p.logf(slog.LevelDebug, format, args...)
}

// Errorf logs at Error.
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.logf(slog.LevelError, format, args...)
}

// Fatalf logs at Error and panics. Pebble calls it only for broken invariants
// or on-disk corruption, after which it must not continue; Pebble's own
// default exits the process, which a library must not do.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("pebble fatal", "error", msg)
	panic("raftstore: pebble fatal: " + msg)
}

func (p pebbleLogger) logf(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !p.l.Enabled(ctx, level) {
		return
	}
	p.l.Log(ctx, level, fmt.Sprintf(format, args...), "source", "pebble")
}
