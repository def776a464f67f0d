package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/demandflow/demandflow/cluster"
	"github.com/demandflow/demandflow/internal/bufpool"
)

// Node is one running Demandflow node. Create it with New, then Start;
// Shutdown stops it. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	cl      *cluster.Cluster
	fc      *cluster.Forecaster // this node's forecast refresher (api_forecast.go)
	// mem allocates the records of HTTP ingest bodies (bufpool: they are
	// released when the request ends, so their buffers are recycled).
	mem memory.Allocator

	httpLn      net.Listener
	httpSrv     *http.Server
	h3Conn      net.PacketConn // nil when HTTP/3 is off
	h3Srv       *http3.Server
	altSvc      string // Alt-Svc header value advertising HTTP/3
	fingerprint string // hex SHA-256 of the TLS leaf certificate; "" without TLS
	tlsCert     *tls.Certificate

	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// Addrs are the addresses a node bound, as written to addrs.json. The
// first four keys are the DESIGN.md contract; TLS and Fingerprint tell
// clients how to connect (https on the HTTP port, pinning by fingerprint).
type Addrs struct {
	HTTP        string `json:"http"`
	HTTP3       string `json:"http3"`
	Raft        string `json:"raft"`
	Gossip      string `json:"gossip"`
	TLS         bool   `json:"tls"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// New validates cfg, opens the node's state under cfg.DataDir and binds its
// listeners. It serves nothing until Start.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger, reg: cfg.Registry, mem: bufpool.New()}
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
	key, err := cfg.clusterKey()
	if err != nil {
		return nil, err
	}
	// Bind the API first so gossip can publish the real addresses.
	if err := n.listen(); err != nil {
		return nil, err
	}
	a := n.Addrs()
	cl, err := cluster.Open(ctx, cluster.Config{
		DataDir:         cfg.DataDir,
		NodeName:        cfg.NodeName,
		Logger:          n.log.With("component", "cluster"),
		RaftAddr:        cfg.RaftAddr,
		GossipAddr:      cfg.GossipAddr,
		Join:            cfg.Join,
		BootstrapExpect: cfg.BootstrapExpect,
		ClusterKey:      key,
		TLSCert:         n.tlsCert,
		HTTPAddr:        a.HTTP,
		HTTP3Addr:       a.HTTP3,
		Version:         cfg.Version,
		AlarmWebhooks:   cfg.AlarmWebhooks,
		Store:           cluster.StoreConfig{TrackingRetention: cfg.TrackingRetention, CacheSize: cfg.CacheBytes},
	})
	if err != nil {
		n.closeListeners()
		return nil, fmt.Errorf("open cluster state: %w", err)
	}
	n.cl = cl
	if n.fc, err = cl.StartForecaster(cluster.ForecasterConfig{Interval: cfg.ForecastInterval, Workers: cfg.ForecastWorkers}); err != nil {
		_ = cl.Close()
		n.closeListeners()
		return nil, fmt.Errorf("start forecaster: %w", err)
	}
	am := cluster.NewAlarmMetrics(n.reg)
	am.SetSource(func() []cluster.Alarm { return append(cl.Store().ActiveAlarms(), cl.LocalAlarms()...) })
	n.reg.MustRegister(newRaftCollector(cl), cl.WriteMetrics())
	registerTrackingMetrics(n.reg, cl)
	return n, nil
}

// closeListeners releases the listeners of a node that never started.
func (n *Node) closeListeners() {
	if n.httpLn != nil {
		_ = n.httpLn.Close()
	}
	if n.h3Conn != nil {
		_ = n.h3Conn.Close()
	}
}

// listen binds the TCP (TLS + plain) and UDP (HTTP/3) listeners.
func (n *Node) listen() error {
	cfg := n.cfg
	var tlsConf *tls.Config
	if !cfg.TLSDisable {
		cert, fp, created, err := loadTLS(cfg)
		if err != nil {
			return err
		}
		n.fingerprint = fp
		n.tlsCert = &cert
		if created {
			n.log.Info("created self-signed TLS certificate; clients can pin it with --pin", "fingerprint", fp)
		} else {
			n.log.Info("TLS certificate loaded", "fingerprint", fp)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"}}
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", cfg.HTTPAddr, err)
	}
	handler := n.routes()
	n.httpLn = ln
	n.httpSrv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         tlsConf,
		ErrorLog:          slog.NewLogLogger(n.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	protos.SetHTTP2(tlsConf != nil)
	n.httpSrv.Protocols = &protos
	if tlsConf == nil || cfg.HTTP3Addr == "off" {
		return nil
	}
	n.httpLn = newMuxListener(ln, tlsConf)

	addr := cfg.HTTP3Addr
	if addr == "" {
		addr = ln.Addr().String() // same host and port number, over UDP
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil && cfg.HTTP3Addr == "" {
		// The TCP port number is taken on UDP: an OS-chosen port is the
		// next best thing; addrs.json and Alt-Svc say which.
		host, _, _ := net.SplitHostPort(addr)
		pc, err = net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	}
	if err != nil {
		_ = n.httpLn.Close()
		return fmt.Errorf("listen http3 %s: %w", addr, err)
	}
	n.h3Conn = pc
	n.h3Srv = &http3.Server{
		Handler:     handler,
		TLSConfig:   http3.ConfigureTLSConfig(&tls.Config{Certificates: tlsConf.Certificates, MinVersion: tls.VersionTLS13}),
		IdleTimeout: 2 * time.Minute,
		Logger:      n.log.With("component", "http3"),
		// Ingest uploads megabytes per request: quic-go's default windows
		// (512 KiB per stream at first) make a client wait for window
		// updates while they auto-tune. Start larger; the connection
		// window caps what one client can buffer here (32 MiB).
		QUICConfig: &quic.Config{
			InitialStreamReceiveWindow:     2 << 20,
			MaxStreamReceiveWindow:         8 << 20,
			InitialConnectionReceiveWindow: 4 << 20,
			MaxConnectionReceiveWindow:     32 << 20,
		},
	}
	n.altSvc = fmt.Sprintf(`h3=":%d"; ma=86400`, pc.LocalAddr().(*net.UDPAddr).Port)
	warnSmallUDPBuffers(n.log)
	return nil
}

// minUDPBuffer is what quic-go asks for (7.5 MB); see deploy/90-demandflow.conf.
const minUDPBuffer = 7500000

// warnSmallUDPBuffers logs a hint when the kernel caps UDP socket buffers
// below what quic-go wants; HTTP/3 still works, with less throughput.
func warnSmallUDPBuffers(log *slog.Logger) {
	for _, name := range []string{"rmem_max", "wmem_max"} {
		b, err := os.ReadFile("/proc/sys/net/core/" + name)
		if err != nil {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && v < minUDPBuffer {
			log.Warn("kernel UDP buffer limit is small for HTTP/3; raise it for full QUIC throughput",
				"sysctl", "net.core."+name, "value", v, "want", minUDPBuffer,
				"hint", "install deploy/90-demandflow.conf into /etc/sysctl.d or run: sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000")
			return
		}
	}
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
	a := Addrs{HTTP: n.httpLn.Addr().String(), TLS: n.fingerprint != "", Fingerprint: n.fingerprint}
	if n.cl != nil {
		a.Raft, a.Gossip = n.cl.Addrs()
	}
	if n.h3Conn != nil {
		a.HTTP3 = n.h3Conn.LocalAddr().String()
	}
	return a
}

// URL returns the plain-HTTP base URL of the node's API (the TCP port
// serves http:// and, with TLS on, https://).
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
	if n.h3Srv != nil {
		n.wg.Go(func() {
			if err := n.h3Srv.Serve(n.h3Conn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) {
				n.log.Error("http3 server stopped", "error", err)
			}
		})
	}
	a := n.Addrs()
	n.log.Info("node started", "http", a.HTTP, "http3", a.HTTP3, "tls", a.TLS, "data_dir", n.cfg.DataDir)
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
		if n.h3Srv != nil {
			if e := n.h3Srv.Shutdown(ctx); e != nil {
				err = errors.Join(err, n.h3Srv.Close())
			}
			_ = n.h3Conn.Close()
		}
		n.wg.Wait()
		err = errors.Join(err, n.cl.Close())
		n.stopErr = err
		n.log.Info("node stopped")
	})
	return n.stopErr
}
