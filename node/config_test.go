package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.LoadFile(filepath.Join("..", "deploy", "demandflow.toml")); err != nil {
		t.Fatalf("deploy/demandflow.toml: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("deploy/demandflow.toml does not validate: %v", err)
	}
	if cfg.MaxBodyBytes != 64<<20 || cfg.RequestTimeout != 60*time.Second {
		t.Errorf("got max_body_bytes=%d request_timeout=%s", cfg.MaxBodyBytes, cfg.RequestTimeout)
	}
}

func TestConfigUnknownKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte("http_addr = \"127.0.0.1:1\"\nhttp_adr = \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	err := cfg.LoadFile(p)
	if err == nil || !strings.Contains(err.Error(), "http_adr") {
		t.Fatalf("got %v, want an error naming http_adr", err)
	}
}

func TestConfigEnvAndValidate(t *testing.T) {
	cfg := DefaultConfig()
	err := cfg.ApplyEnv([]string{"DEMANDFLOW_HTTP_ADDR=127.0.0.1:0", "DEMANDFLOW_MAX_BODY_BYTES=1MiB", "DEMANDFLOW_JOIN=a:1, b:2", "OTHER=1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:0" || cfg.MaxBodyBytes != 1<<20 || len(cfg.Join) != 2 || cfg.Join[1] != "b:2" {
		t.Errorf("got %+v", cfg)
	}
	if err := cfg.ApplyEnv([]string{"DEMANDFLOW_BOOTSTRAP_EXPECT=three"}); err == nil || !strings.Contains(err.Error(), "DEMANDFLOW_BOOTSTRAP_EXPECT") {
		t.Errorf("bad env: got %v, want an error naming the variable", err)
	}
	bad := DefaultConfig()
	bad.LogLevel = "loud"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "log_level") {
		t.Errorf("got %v, want log_level error", err)
	}
	// The state store's block cache: a size with units, at least 8 MiB.
	if err := cfg.ApplyEnv([]string{"DEMANDFLOW_CACHE_BYTES=1GiB"}); err != nil || cfg.CacheBytes != 1<<30 {
		t.Errorf("DEMANDFLOW_CACHE_BYTES=1GiB: got %d, %v", cfg.CacheBytes, err)
	}
	if err := cfg.ApplyEnv([]string{"DEMANDFLOW_CACHE_BYTES=lots"}); err == nil || !strings.Contains(err.Error(), "cache-bytes") {
		t.Errorf("DEMANDFLOW_CACHE_BYTES=lots: got %v, want an error naming cache-bytes", err)
	}
	small := DefaultConfig()
	small.CacheBytes = 1 << 20
	if err := small.Validate(); err == nil || !strings.Contains(err.Error(), "cache_bytes") {
		t.Errorf("1 MiB cache: got %v, want cache_bytes error", err)
	}
}
