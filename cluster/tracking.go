package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Stages after apply (forecast, egress) are recorded through Raft like
// everything else, but in batches: RecordBlocks queues blocks without
// waiting, and one goroutine proposes a CmdTrackBlocks entry every
// trackFlushEvery or trackFlushBlocks blocks, whichever comes first. It is
// best effort: a full queue drops blocks (counted) and a failed proposal
// loses its batch (counted, logged), because tracking must never slow the
// data path down.
//
// Retention: the leader (or a standalone node) proposes CmdTrackExpire
// with cutoff now - StoreConfig.TrackingRetention every trackExpireEvery;
// the cutoff travels in the entry, so every node deletes the same ranges.
const (
	trackQueue       = 8192
	trackFlushBlocks = 500
	trackFlushEvery  = 200 * time.Millisecond
	trackExpireEvery = 10 * time.Minute
	trackApplyLimit  = 5 * time.Second
)

// ErrTrackingQueueFull means RecordBlocks dropped blocks because the
// proposal queue was full.
var ErrTrackingQueueFull = errors.New("cluster: tracking queue full")

// tracker is the Cluster's tracking state: the block queue and counters.
type tracker struct {
	ch       chan TrackBlock
	dropped  atomic.Int64 // blocks dropped: queue full or proposal failed
	proposed atomic.Int64 // blocks committed through CmdTrackBlocks
}

// TrackingStats counts the work of RecordBlocks.
type TrackingStats struct {
	// BlocksProposed were committed; BlocksDropped were lost (queue full
	// or failed proposal); WriteErrors failed in apply on this node.
	BlocksProposed, BlocksDropped, WriteErrors int64
	// RunIngestFallbacks counts folds of the object index on this node
	// whose runs could not be ingested as an sstable and went through the
	// apply batch instead (nothing lost; tracking.Store.RunIngestErrors).
	RunIngestFallbacks int64
}

// TrackingStats returns the tracking counters; safe for concurrent use.
func (c *Cluster) TrackingStats() TrackingStats {
	st := TrackingStats{WriteErrors: c.store.TrackingWriteErrors(), RunIngestFallbacks: c.store.Tracking().RunIngestErrors()}
	if c.track != nil {
		st.BlocksProposed, st.BlocksDropped = c.track.proposed.Load(), c.track.dropped.Load()
	}
	return st
}

// RecordBlocks queues tracking blocks of stages after apply (forecast,
// egress) to be proposed in batches (see above). It never blocks: blocks
// that do not fit the queue are dropped and counted, and the returned error
// (wrapping ErrTrackingQueueFull) says how many. Blocks without a TxID or
// Stage are dropped the same way. ctx is unused today; it is there so a
// future blocking variant keeps the signature. Safe for concurrent use.
func (c *Cluster) RecordBlocks(ctx context.Context, bs []TrackBlock) error {
	if c.track == nil {
		return fmt.Errorf("record tracking blocks: %w", ErrShutdown)
	}
	dropped := 0
	for _, b := range bs {
		if b.TxID == "" || b.Block.Stage == "" {
			dropped++
			continue
		}
		select {
		case c.track.ch <- b:
		default:
			dropped++
		}
	}
	if dropped > 0 {
		c.track.dropped.Add(int64(dropped))
		return fmt.Errorf("%w: %d of %d blocks dropped", ErrTrackingQueueFull, dropped, len(bs))
	}
	return nil
}

// startTracking starts the block batcher and the expiry loop; they stop
// with c.ctx and are waited for by closeRaft.
func (c *Cluster) startTracking() {
	c.track = &tracker{ch: make(chan TrackBlock, trackQueue)}
	c.wg.Go(func() { c.trackBlocksLoop(c.ctx) })
	c.wg.Go(func() { c.trackExpireLoop(c.ctx) })
}

func (c *Cluster) trackBlocksLoop(ctx context.Context) {
	t := time.NewTicker(trackFlushEvery)
	defer t.Stop()
	buf := make([]TrackBlock, 0, trackFlushBlocks)
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-c.track.ch:
			buf = append(buf, b)
			if len(buf) >= trackFlushBlocks {
				c.flushBlocks(ctx, buf)
				buf = buf[:0]
			}
		case <-t.C:
			if len(buf) > 0 {
				c.flushBlocks(ctx, buf)
				buf = buf[:0]
			}
		}
	}
}

// flushBlocks proposes one CmdTrackBlocks entry.
func (c *Cluster) flushBlocks(ctx context.Context, bs []TrackBlock) {
	entry, err := EncodeTrackBlocks(bs)
	if err == nil {
		actx, cancel := context.WithTimeout(ctx, trackApplyLimit)
		_, _, err = c.Apply(actx, entry)
		cancel()
	}
	if err != nil {
		c.track.dropped.Add(int64(len(bs)))
		if ctx.Err() == nil {
			c.log.Warn("tracking blocks lost", "blocks", len(bs), "error", err)
		}
		return
	}
	c.track.proposed.Add(int64(len(bs)))
}

func (c *Cluster) trackExpireLoop(ctx context.Context) {
	t := time.NewTicker(trackExpireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if c.local != nil || c.IsLeader() {
				if err := c.ExpireTracking(ctx, time.Now()); err != nil && ctx.Err() == nil {
					c.log.Warn("tracking expiry proposal failed; retrying next period", "error", err)
				}
			}
		}
	}
}

// ExpireTracking proposes the deletion of tracking records older than
// now - StoreConfig.TrackingRetention. The leader calls it periodically;
// any node may call it (the proposal is forwarded).
func (c *Cluster) ExpireTracking(ctx context.Context, now time.Time) error {
	entry, err := EncodeTrackExpire(c.store.track.Cutoff(now), c.cfg.NodeName)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, trackApplyLimit)
	defer cancel()
	_, _, err = c.Apply(actx, entry)
	return err
}
