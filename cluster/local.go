package cluster

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// LocalConfig configures Local.
type LocalConfig struct {
	// MaxBatch is the largest number of entries applied in one
	// FSM.ApplyBatch (one Pebble commit); default 64.
	MaxBatch int
	// Logger receives lifecycle logs; nil discards them.
	Logger *slog.Logger
}

// DefaultLocalMaxBatch is the default LocalConfig.MaxBatch.
const DefaultLocalMaxBatch = 64

// DefaultLocalConfig returns the default configuration.
func DefaultLocalConfig() LocalConfig { return LocalConfig{}.withDefaults() }

// Validate reports the first invalid field.
func (c LocalConfig) Validate() error {
	if c.MaxBatch < 0 {
		return errNegative("local: max batch", c.MaxBatch)
	}
	return nil
}

func (c LocalConfig) withDefaults() LocalConfig {
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultLocalMaxBatch
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// LocalStats counts what Local did.
type LocalStats struct {
	// Entries is the number of entries applied, Batches the number of
	// FSM.ApplyBatch calls (Pebble commits) they took.
	Entries int64
	Batches int64
}

// Local is the single-node committer used until Raft is in place: it plays
// Raft's part between commit and apply. One goroutine collects concurrently
// submitted entries (group commit, up to MaxBatch) and applies them with
// one FSM.ApplyBatch as *raft.Log with consecutive indexes after the
// store's applied index, Term 1, Type raft.LogCommand. With
// StoreConfig.Sync every response means the entry is durable.
type Local struct {
	fsm    *FSM
	cfg    LocalConfig
	logger *slog.Logger
	reqs   chan *localReq

	startOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc
	stopped   chan struct{} // closed when the loop has exited
	wg        sync.WaitGroup

	entries atomic.Int64
	batches atomic.Int64
	// beforeApply, when set by tests, runs in the loop before each ApplyBatch.
	beforeApply func(n int)
}

type localReq struct {
	entry []byte
	done  chan localResp // buffered, 1
}

type localResp struct {
	resp  any
	index uint64
	err   error
}

// NewLocal returns a committer for fsm; Start must be called before Apply.
func NewLocal(fsm *FSM, cfg LocalConfig) *Local {
	cfg = cfg.withDefaults()
	return &Local{
		fsm:     fsm,
		cfg:     cfg,
		logger:  cfg.Logger.With("component", "local"),
		reqs:    make(chan *localReq, cfg.MaxBatch),
		stopped: make(chan struct{}),
	}
}

// Start starts the apply goroutine; later calls do nothing.
func (l *Local) Start() {
	l.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel = cancel
		l.wg.Go(func() { l.loop(ctx) })
	})
}

// Shutdown stops the apply goroutine and waits for it; the batch being
// applied completes, entries still queued fail with ErrShutdown. It is
// idempotent; it returns ctx.Err() if ctx ends first.
func (l *Local) Shutdown(ctx context.Context) error {
	l.stopOnce.Do(func() {
		if l.cancel == nil { // never started
			close(l.stopped)
			return
		}
		l.cancel()
	})
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns counters; safe for concurrent use.
func (l *Local) Stats() LocalStats {
	return LocalStats{Entries: l.entries.Load(), Batches: l.batches.Load()}
}

// Apply submits entry and waits until it is applied. It returns the FSM's
// response and the entry's index; a response that is an error is returned
// as err (with the index). Safe for concurrent use. If ctx ends while
// waiting Apply returns ctx.Err(), but the entry may still be applied
// (exactly like a Raft apply timeout): callers retry with the same
// idempotency key. The entry must not be modified until Apply returns.
func (l *Local) Apply(ctx context.Context, entry []byte) (any, uint64, error) {
	req := &localReq{entry: entry, done: make(chan localResp, 1)}
	select {
	case l.reqs <- req:
	case <-l.stopped:
		return nil, 0, ErrShutdown
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	select {
	case r := <-req.done:
		return r.resp, r.index, r.err
	case <-l.stopped:
		// The loop answers everything it took before closing stopped.
		select {
		case r := <-req.done:
			return r.resp, r.index, r.err
		default:
			return nil, 0, ErrShutdown
		}
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

func (l *Local) loop(ctx context.Context) {
	defer close(l.stopped)
	next := l.fsm.store.AppliedIndex() + 1
	batch := make([]*localReq, 0, l.cfg.MaxBatch)
	logs := make([]*raft.Log, 0, l.cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			l.drain()
			return
		case r := <-l.reqs:
			batch = append(batch, r)
		}
	collect:
		for len(batch) < l.cfg.MaxBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		if l.beforeApply != nil {
			l.beforeApply(len(batch))
		}
		logs = logs[:0]
		now := time.Now()
		for i, r := range batch {
			// AppendedAt as Raft's leader sets it: tracking's commit end.
			logs = append(logs, &raft.Log{Index: next + uint64(i), Term: 1, Type: raft.LogCommand, Data: r.entry, AppendedAt: now})
		}
		resps := l.fsm.ApplyBatch(logs)
		for i, r := range batch {
			out := localResp{resp: resps[i], index: logs[i].Index}
			if err, ok := resps[i].(error); ok {
				out = localResp{index: logs[i].Index, err: err}
			}
			r.done <- out
		}
		next += uint64(len(batch))
		l.entries.Add(int64(len(batch)))
		l.batches.Add(1)
	}
}

// drain fails the requests still queued at shutdown.
func (l *Local) drain() {
	for {
		select {
		case r := <-l.reqs:
			r.done <- localResp{err: ErrShutdown}
		default:
			return
		}
	}
}
