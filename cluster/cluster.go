package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
)

// Errors returned by the cluster package. Business rejections of the FSM
// wrap one of these; check with errors.Is.
var (
	// ErrUnknownDataset means the named dataset does not exist.
	ErrUnknownDataset = errors.New("cluster: unknown dataset")
	// ErrDatasetExists means a dataset of that name already exists.
	ErrDatasetExists = errors.New("cluster: dataset exists")
	// ErrUnknownSeries means the series id is not in the dataset.
	ErrUnknownSeries = errors.New("cluster: unknown series")
	// ErrUnknownDimension means a series filter names a column that is not
	// a dimension of the dataset.
	ErrUnknownDimension = errors.New("cluster: unknown dimension")
	// ErrSchemaMismatch means an ingest was validated against another
	// incarnation of the dataset (deleted and re-created with a different
	// schema in between); re-validating and retrying fixes it.
	ErrSchemaMismatch = errors.New("cluster: dataset schema changed")
	// ErrShutdown means the committer is shutting down.
	ErrShutdown = errors.New("cluster: shutting down")
)

func errNegative(what string, v int) error {
	return fmt.Errorf("%s %d is negative", what, v)
}

// Config configures a Cluster.
type Config struct {
	// DataDir is the node's data directory; the FSM store lives in
	// <DataDir>/fsm unless Store.Dir is set. Required.
	DataDir string
	// NodeName names this node in responses and records; required.
	NodeName string
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Store configures the FSM store; zero fields take their defaults,
	// Sync is forced on while entries are applied locally (no Raft).
	Store StoreConfig
	// Local configures the single-node committer.
	Local LocalConfig
}

// DefaultConfig returns the default configuration (DataDir and NodeName
// still to be set).
func DefaultConfig() Config {
	return Config{Store: DefaultStoreConfig(), Local: DefaultLocalConfig()}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("cluster: data dir is required")
	}
	if c.NodeName == "" {
		return errors.New("cluster: node name is required")
	}
	if err := c.Local.Validate(); err != nil {
		return err
	}
	st := c.Store
	if st.Dir == "" {
		st.Dir = "x" // filled by withDefaults
	}
	return st.Validate()
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Store.Dir == "" {
		c.Store.Dir = filepath.Join(c.DataDir, "fsm")
	}
	if c.Store.Logger == nil {
		c.Store.Logger = c.Logger.With("component", "store")
	}
	// Without Raft the FSM store is the only copy of an acked entry.
	c.Store.Sync = true
	if c.Local.Logger == nil {
		c.Local.Logger = c.Logger
	}
	return c
}

// Cluster is the node's handle on replicated state. In this version it
// applies entries locally (Local) with the same FSM and entry format Raft
// will use. Safe for concurrent use.
type Cluster struct {
	cfg   Config
	store *Store
	fsm   *FSM
	local *Local

	closeOnce sync.Once
	closeErr  error
}

// Open opens the FSM store, builds the FSM and starts the committer.
func Open(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	store, err := OpenStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	fsm := NewFSM(store, cfg.Logger)
	local := NewLocal(fsm, cfg.Local)
	local.Start()
	cfg.Logger.Info("cluster opened", "node", cfg.NodeName, "raft_index", store.AppliedIndex(), "mode", "local")
	return &Cluster{cfg: cfg, store: store, fsm: fsm, local: local}, nil
}

// Apply commits an encoded entry (see commands.go) and returns the FSM's
// response and the entry's index. Business rejections come back as err
// (errors.Is with ErrUnknownDataset, ErrDatasetExists, ...). If ctx ends
// first Apply returns ctx.Err() and the entry may still be applied.
func (c *Cluster) Apply(ctx context.Context, entry []byte) (any, uint64, error) {
	return c.local.Apply(ctx, entry)
}

// Store returns the FSM store for reads.
func (c *Cluster) Store() *Store { return c.store }

// NodeName returns this node's name.
func (c *Cluster) NodeName() string { return c.cfg.NodeName }

// Close stops the committer and closes the store; it is idempotent.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		_ = c.local.Shutdown(context.Background())
		c.closeErr = c.store.Close()
		c.cfg.Logger.Info("cluster closed", "node", c.cfg.NodeName)
	})
	return c.closeErr
}
