package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestConfigPrecedence checks defaults < file < environment < flags.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "n.toml")
	if err := os.WriteFile(file, []byte("http_addr = \"127.0.0.1:1001\"\nnode_name = \"from-file\"\nlog_level = \"warn\"\nchunk_rows = 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := newNodeCmd()
	if err := cmd.Flags().Parse([]string{"--node-name", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	env := []string{"DEMANDFLOW_CONFIG=" + file, "DEMANDFLOW_NODE_NAME=from-env", "DEMANDFLOW_LOG_LEVEL=error"}
	cfg, err := loadNodeConfig(cmd.Flags(), "", env)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"http_addr (file)", cfg.HTTPAddr, "127.0.0.1:1001"},
		{"node_name (flag)", cfg.NodeName, "from-flag"},
		{"log_level (env)", cfg.LogLevel, "error"},
		{"data_dir (default)", cfg.DataDir, "./data"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	if cfg.ChunkRows != 100 {
		t.Errorf("chunk_rows (file): got %d, want 100", cfg.ChunkRows)
	}
}

func TestConfigBadFlag(t *testing.T) {
	cmd := newNodeCmd()
	if err := cmd.Flags().Parse([]string{"--bootstrap-expect", "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := loadNodeConfig(cmd.Flags(), "", nil); err == nil {
		t.Fatal("got nil error for --bootstrap-expect x")
	}
}
