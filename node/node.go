package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/demandflow/demandflow/cluster"
)

// Node is one running Demandflow node. Create it with New, then Start;
// Shutdown stops it. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	cl      *cluster.Cluster

	httpLn  net.Listener
	httpSrv *http.Server

	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// Addrs are the addresses a node bound, as written to addrs.json.
type Addrs struct {
	HTTP   string `json:"http"`
	HTTP3  string `json:"http3"`
	Raft   string `json:"raft"`
	Gossip string `json:"gossip"`
}

// New validates cfg, opens the node's state under cfg.DataDir and binds its
// listeners. It serves nothing until Start.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger, reg: cfg.Registry}
	if n.log == nil {
		var err error
		if n.log, err = newLogger(cfg, os.Stderr); err != nil {
			return nil, err
		}
	}
	n.log = n.log.With("node", cfg.NodeName)
	if n.reg == nil {
		n.reg = prometheus.NewRegistry()
		n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	n.metrics = newMetrics(n.reg)

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	cl, err := cluster.Open(ctx, cluster.Config{
		DataDir:  cfg.DataDir,
		NodeName: cfg.NodeName,
		Logger:   n.log.With("component", "cluster"),
	})
	if err != nil {
		return nil, fmt.Errorf("open cluster state: %w", err)
	}
	n.cl = cl

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		_ = cl.Close()
		return nil, fmt.Errorf("listen http %s: %w", cfg.HTTPAddr, err)
	}
	n.httpLn = ln
	n.httpSrv = &http.Server{
		Handler:           n.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(n.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	n.httpSrv.Protocols = &protos
	return n, nil
}

func newLogger(cfg Config, w *os.File) (*slog.Logger, error) {
	lvl, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// Addrs returns the addresses the node bound.
func (n *Node) Addrs() Addrs {
	return Addrs{HTTP: n.httpLn.Addr().String(), Raft: n.cfg.RaftAddr, Gossip: n.cfg.GossipAddr, HTTP3: n.cfg.HTTP3Addr}
}

// URL returns the base URL of the node's HTTP API.
func (n *Node) URL() string { return "http://" + n.httpLn.Addr().String() }

// Name returns the node name.
func (n *Node) Name() string { return n.cfg.NodeName }

// Start serves the API in the background and writes addrs.json.
func (n *Node) Start() error {
	if err := n.writeAddrs(); err != nil {
		return err
	}
	n.wg.Go(func() {
		if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "error", err)
		}
	})
	n.log.Info("node started", "http", n.Addrs().HTTP, "data_dir", n.cfg.DataDir)
	return nil
}

// writeAddrs writes addrs.json atomically (temp file + rename).
func (n *Node) writeAddrs() error {
	b, err := json.MarshalIndent(n.Addrs(), "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(n.cfg.DataDir, "addrs.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write addrs: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write addrs: %w", err)
	}
	return nil
}

// Shutdown stops accepting requests, waits for in-flight ones up to ctx's
// deadline, and closes the node's state. It is idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() {
		err := n.httpSrv.Shutdown(ctx)
		n.wg.Wait()
		err = errors.Join(err, n.cl.Close())
		n.stopErr = err
		n.log.Info("node stopped")
	})
	return n.stopErr
}
