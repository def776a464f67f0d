package node

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is everything a node reads from its config file, environment and
// flags. It is the only struct read from outside; every other package's
// Config is filled from it.
//
// Precedence (lowest to highest): built-in defaults, the config file
// (--config FILE, TOML, unknown keys are an error), DEMANDFLOW_<NAME>
// environment variables, command-line flags.
type Config struct {
	// DataDir holds every file the node owns. Default "./data".
	DataDir string `toml:"data_dir"`
	// NodeName names the node in responses, logs and the cluster. Default:
	// the host name.
	NodeName string `toml:"node_name"`
	// HTTPAddr is the TCP address of the HTTP/1.1 (+ cleartext HTTP/2) API.
	// Port 0 picks a free port. Default "127.0.0.1:7070".
	HTTPAddr string `toml:"http_addr"`
	// HTTP3Addr is the UDP address of the HTTP/3 (QUIC) API. Empty means
	// the host and bound port of HTTPAddr (UDP and TCP ports may be equal);
	// "off" disables HTTP/3. Port 0 picks a free port. Default "".
	HTTP3Addr string `toml:"http3_addr"`
	// TLSCertFile and TLSKeyFile are the PEM certificate chain and key of the
	// API listeners. Empty: a self-signed certificate is created under
	// <data-dir>/tls/ on first start and its SHA-256 fingerprint is logged
	// and written to addrs.json, for clients to pin. Default "".
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`
	// TLSDisable turns TLS (and so HTTP/3) off: the TCP port serves plain
	// HTTP only. With TLS on, the TCP port serves both https:// and
	// http://. Default false.
	TLSDisable bool `toml:"tls_disable"`
	// RaftAddr is the TCP address of the cluster port (Raft and forwarding
	// between nodes, TLS). Port 0 picks a free port. Default
	// "127.0.0.1:7071".
	RaftAddr string `toml:"raft_addr"`
	// GossipAddr is the address memberlist binds (TCP and UDP). Default
	// "127.0.0.1:7072".
	GossipAddr string `toml:"gossip_addr"`
	// ClusterKey is the base64 of 16, 24 or 32 random bytes, the same on
	// every node: it encrypts gossip and authenticates cluster connections.
	// Empty: unencrypted gossip (warned). Make one with
	// `head -c 32 /dev/urandom | base64`. Default "".
	ClusterKey string `toml:"cluster_key"`
	// Join lists gossip addresses of existing nodes. Default none.
	Join []string `toml:"join"`
	// ForecastInterval is the pause between background forecast refresh
	// passes (series dirtied by new data are refit or updated by their
	// owner node). Default 10s.
	ForecastInterval time.Duration `toml:"forecast_interval"`
	// ForecastWorkers bounds the cores background refits use. Default
	// GOMAXPROCS-1 (at least 1), leaving a core to ingest and reads.
	ForecastWorkers int `toml:"forecast_workers"`
	// AlarmWebhooks are URLs that receive alarm events as JSON POSTs.
	// Default none.
	AlarmWebhooks []string `toml:"alarm_webhooks"`
	// BootstrapExpect is the number of servers to wait for before
	// bootstrapping a new cluster. Default 1.
	BootstrapExpect int `toml:"bootstrap_expect"`
	// MaxBodyBytes limits an ingest request body, before and after
	// decompression, in bytes. Default 64 MiB.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// CacheBytes is the block cache of the node's state store (Pebble),
	// in bytes, filled as blocks are read. Ingest reads the stores' index
	// and filter blocks and recent series chunks all the time (idempotency
	// records, forecasts, histories for refits); a cache that cannot hold
	// them turns each of those reads into preads. Default 512 MiB.
	CacheBytes int64 `toml:"cache_bytes"`
	// ChunkRows is the number of rows per Arrow record batch. Default 16384.
	ChunkRows int `toml:"chunk_rows"`
	// RequestTimeout bounds the handling of one API request. Default 60s.
	RequestTimeout time.Duration `toml:"request_timeout"`
	// ShutdownTimeout bounds a graceful shutdown. Default 10s.
	ShutdownTimeout time.Duration `toml:"shutdown_timeout"`
	// TrackingRetention is how long tracking records (transactions,
	// blocks, object index, statistics) are kept; the leader expires older
	// ones every 10 minutes. Default 168h (7 days).
	TrackingRetention time.Duration `toml:"tracking_retention"`
	// EnableDebug serves Go's profiler at /debug/pprof/ and the Pebble
	// metrics of the node's stores at /debug/pebble on the HTTP API
	// listeners (as Consul's enable_debug), for diagnosing CPU, memory and
	// storage work on a live node. It exposes internals: keep it off
	// unless needed. Default false.
	EnableDebug bool `toml:"enable_debug"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `toml:"log_level"`
	// LogFormat is text or json. Default text.
	LogFormat string `toml:"log_format"`

	// Version is published to other nodes; set by the binary.
	Version string `toml:"-"`

	// Logger receives the node's logs; nil builds one from LogLevel and
	// LogFormat on stderr.
	Logger *slog.Logger `toml:"-"`
	// Registry receives the node's metrics; nil creates a new registry.
	Registry *prometheus.Registry `toml:"-"`
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "node"
	}
	return Config{
		DataDir:           "./data",
		NodeName:          host,
		HTTPAddr:          "127.0.0.1:7070",
		RaftAddr:          "127.0.0.1:7071",
		GossipAddr:        "127.0.0.1:7072",
		BootstrapExpect:   1,
		MaxBodyBytes:      64 << 20,
		CacheBytes:        512 << 20,
		ChunkRows:         16384,
		RequestTimeout:    60 * time.Second,
		ShutdownTimeout:   10 * time.Second,
		ForecastInterval:  10 * time.Second,
		TrackingRetention: 7 * 24 * time.Hour,
		LogLevel:          "info",
		LogFormat:         "text",
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DataDir == "" {
		c.DataDir = d.DataDir
	}
	if c.NodeName == "" {
		c.NodeName = d.NodeName
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = d.HTTPAddr
	}
	if c.RaftAddr == "" {
		c.RaftAddr = d.RaftAddr
	}
	if c.GossipAddr == "" {
		c.GossipAddr = d.GossipAddr
	}
	if c.BootstrapExpect == 0 {
		c.BootstrapExpect = d.BootstrapExpect
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = d.CacheBytes
	}
	if c.ChunkRows == 0 {
		c.ChunkRows = d.ChunkRows
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.TrackingRetention == 0 {
		c.TrackingRetention = d.TrackingRetention
	}
	if c.LogLevel == "" {
		c.LogLevel = d.LogLevel
	}
	if c.ForecastInterval == 0 {
		c.ForecastInterval = d.ForecastInterval
	}
	if c.LogFormat == "" {
		c.LogFormat = d.LogFormat
	}
	return c
}

// Validate reports the first invalid setting, naming it.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.BootstrapExpect < 1 {
		errs = append(errs, fmt.Errorf("bootstrap_expect: %d, want >= 1", c.BootstrapExpect))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d, want >= 1024", c.MaxBodyBytes))
	}
	if c.CacheBytes < 8<<20 {
		errs = append(errs, fmt.Errorf("cache_bytes: %d, want >= 8388608 (8MiB)", c.CacheBytes))
	}
	if c.ChunkRows < 1 || c.ChunkRows > 1<<20 {
		errs = append(errs, fmt.Errorf("chunk_rows: %d, want 1..1048576", c.ChunkRows))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log_format: %q, want text or json", c.LogFormat))
	}
	if _, err := c.clusterKey(); err != nil {
		errs = append(errs, err)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls_cert_file and tls_key_file: set both or neither"))
	}
	if c.TLSDisable && c.HTTP3Addr != "" && c.HTTP3Addr != "off" {
		errs = append(errs, errors.New("http3_addr: HTTP/3 needs TLS, but tls_disable is set"))
	}
	if c.TrackingRetention < time.Hour {
		errs = append(errs, fmt.Errorf("tracking_retention: %v, want >= 1h", c.TrackingRetention))
	}
	if c.RequestTimeout < 0 || c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	return errors.Join(errs...)
}

// clusterKey decodes ClusterKey.
func (c Config) clusterKey() ([]byte, error) {
	if c.ClusterKey == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.ClusterKey))
	if err != nil {
		return nil, fmt.Errorf("cluster_key: not base64: %v", err)
	}
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("cluster_key: %d bytes, want 16, 24 or 32 (head -c 32 /dev/urandom | base64)", n)
	}
	return k, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log_level: %q, want debug, info, warn or error", s)
	}
	return l, nil
}

// LoadFile reads a TOML config file over c. Unknown keys are an error that
// names them.
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	md, err := toml.NewDecoder(f).Decode(c)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return nil
}

// Setting describes one configuration value settable as a flag
// (--http-addr), an environment variable (DEMANDFLOW_HTTP_ADDR) and a config
// key (http_addr).
type Setting struct {
	Flag  string
	Usage string
	// IsBool marks a true/false setting whose bare flag (--tls-disable)
	// means true.
	IsBool bool
	// Set parses a value into the config.
	Set func(c *Config, v string) error
	// Get formats the current value (used for flag defaults in --help).
	Get func(c *Config) string
}

// Env returns the setting's environment variable name.
func (s Setting) Env() string {
	return "DEMANDFLOW_" + strings.ToUpper(strings.ReplaceAll(s.Flag, "-", "_"))
}

func strSetting(flag, usage string, p func(*Config) *string) Setting {
	return Setting{Flag: flag, Usage: usage,
		Set: func(c *Config, v string) error { *p(c) = v; return nil },
		Get: func(c *Config) string { return *p(c) }}
}

func intSetting(flag, usage string, p func(*Config) *int) Setting {
	return Setting{Flag: flag, Usage: usage,
		Set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not an integer", flag, v)
			}
			*p(c) = n
			return nil
		},
		Get: func(c *Config) string { return strconv.Itoa(*p(c)) }}
}

func boolSetting(flag, usage string, p func(*Config) *bool) Setting {
	return Setting{Flag: flag, Usage: usage, IsBool: true,
		Set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not true or false", flag, v)
			}
			*p(c) = b
			return nil
		},
		Get: func(c *Config) string { return strconv.FormatBool(*p(c)) }}
}

// bytesSetting is a size in bytes, with optional units (parseBytes).
func bytesSetting(flag, usage string, p func(*Config) *int64) Setting {
	return Setting{Flag: flag, Usage: usage,
		Set: func(c *Config, v string) error {
			n, err := parseBytes(v)
			if err != nil {
				return fmt.Errorf("%s: %w", flag, err)
			}
			*p(c) = n
			return nil
		},
		Get: func(c *Config) string { return strconv.FormatInt(*p(c), 10) }}
}

func durSetting(flag, usage string, p func(*Config) *time.Duration) Setting {
	return Setting{Flag: flag, Usage: usage,
		Set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration (e.g. 30s)", flag, v)
			}
			*p(c) = d
			return nil
		},
		Get: func(c *Config) string { return p(c).String() }}
}

// Settings lists every node setting. The config file path itself is
// --config / DEMANDFLOW_CONFIG and is not in this table.
func Settings() []Setting {
	return []Setting{
		strSetting("data-dir", "directory for all node data", func(c *Config) *string { return &c.DataDir }),
		strSetting("node-name", "node name (default: host name)", func(c *Config) *string { return &c.NodeName }),
		strSetting("http-addr", "HTTP/1.1+2 API address (TCP); port 0 picks a free port", func(c *Config) *string { return &c.HTTPAddr }),
		strSetting("http3-addr", "HTTP/3 API address (UDP); empty: same host and port as --http-addr; off disables", func(c *Config) *string { return &c.HTTP3Addr }),
		strSetting("tls-cert-file", "PEM certificate of the API (empty: self-signed under <data-dir>/tls)", func(c *Config) *string { return &c.TLSCertFile }),
		strSetting("tls-key-file", "PEM private key of the API", func(c *Config) *string { return &c.TLSKeyFile }),
		boolSetting("tls-disable", "serve plain HTTP only (no TLS, no HTTP/3)", func(c *Config) *bool { return &c.TLSDisable }),
		strSetting("raft-addr", "Raft transport address (TCP)", func(c *Config) *string { return &c.RaftAddr }),
		strSetting("gossip-addr", "memberlist gossip address", func(c *Config) *string { return &c.GossipAddr }),
		{Flag: "join", Usage: "comma-separated gossip addresses of nodes to join",
			Set: func(c *Config, v string) error {
				c.Join = splitList(v)
				return nil
			},
			Get: func(c *Config) string { return strings.Join(c.Join, ",") }},
		strSetting("cluster-key", "base64 cluster key (16/24/32 bytes), the same on every node", func(c *Config) *string { return &c.ClusterKey }),
		{Flag: "alarm-webhooks", Usage: "comma-separated URLs that receive alarm events (JSON POST)",
			Set: func(c *Config, v string) error {
				c.AlarmWebhooks = splitList(v)
				return nil
			},
			Get: func(c *Config) string { return strings.Join(c.AlarmWebhooks, ",") }},
		intSetting("bootstrap-expect", "servers to wait for before bootstrapping", func(c *Config) *int { return &c.BootstrapExpect }),
		bytesSetting("max-body-bytes", "largest ingest body in bytes, before and after decompression", func(c *Config) *int64 { return &c.MaxBodyBytes }),
		bytesSetting("cache-bytes", "block cache of the state store in bytes (e.g. 512MiB)", func(c *Config) *int64 { return &c.CacheBytes }),
		durSetting("forecast-interval", "pause between background forecast refresh passes", func(c *Config) *time.Duration { return &c.ForecastInterval }),
		intSetting("forecast-workers", "cores background forecast refits may use (0: all but one)", func(c *Config) *int { return &c.ForecastWorkers }),
		intSetting("chunk-rows", "rows per Arrow record batch", func(c *Config) *int { return &c.ChunkRows }),
		durSetting("request-timeout", "time limit for one API request", func(c *Config) *time.Duration { return &c.RequestTimeout }),
		durSetting("shutdown-timeout", "time limit for a graceful shutdown", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
		durSetting("tracking-retention", "how long tracking records are kept (e.g. 168h)", func(c *Config) *time.Duration { return &c.TrackingRetention }),
		boolSetting("enable-debug", "serve the Go profiler at /debug/pprof/ and Pebble metrics at /debug/pebble (diagnostics only)", func(c *Config) *bool { return &c.EnableDebug }),
		strSetting("log-level", "debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
		strSetting("log-format", "text or json", func(c *Config) *string { return &c.LogFormat }),
	}
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// parseBytes parses 1048576, 64KiB, 64MiB, 1GiB (also KB/MB/GB as powers of
// 1024 for convenience).
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 67108864 or 64MiB)", s)
	}
	return n * mult, nil
}

// ApplyEnv applies DEMANDFLOW_* variables from environ (os.Environ format)
// over c.
func (c *Config) ApplyEnv(environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for _, s := range Settings() {
		if v, ok := env[s.Env()]; ok {
			if err := s.Set(c, v); err != nil {
				return fmt.Errorf("%s: %w", s.Env(), err)
			}
		}
	}
	return nil
}
