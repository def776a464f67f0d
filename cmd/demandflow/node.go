package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/demandflow/demandflow/node"
)

func newNodeCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a node",
		Long: `Run a Demandflow node.

Settings come from, lowest precedence first: built-in defaults, the config
file (--config FILE or DEMANDFLOW_CONFIG; TOML, see deploy/demandflow.toml;
unknown keys are an error), DEMANDFLOW_<FLAG> environment variables (e.g.
DEMANDFLOW_HTTP_ADDR), then the flags below.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadNodeConfig(cmd.Flags(), configPath, os.Environ())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runNode(ctx, cfg, nil)
		},
	}
	addNodeFlags(cmd, &configPath)
	return cmd
}

// addNodeFlags registers --config and one flag per node.Setting.
func addNodeFlags(cmd *cobra.Command, configPath *string) {
	cmd.Flags().StringVar(configPath, "config", "", "TOML config file (env DEMANDFLOW_CONFIG)")
	def := node.DefaultConfig()
	for _, s := range node.Settings() {
		cmd.Flags().String(s.Flag, s.Get(&def), s.Usage+" (env "+s.Env()+")")
		if s.IsBool {
			cmd.Flags().Lookup(s.Flag).NoOptDefVal = "true"
		}
	}
}

// loadNodeConfig applies defaults, the config file, the environment and
// the flags that were set, in that order.
func loadNodeConfig(fs *pflag.FlagSet, configPath string, environ []string) (node.Config, error) {
	cfg := node.DefaultConfig()
	if configPath == "" {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, "DEMANDFLOW_CONFIG="); ok {
				configPath = v
			}
		}
	}
	if configPath != "" {
		if err := cfg.LoadFile(configPath); err != nil {
			return cfg, err
		}
	}
	if err := cfg.ApplyEnv(environ); err != nil {
		return cfg, err
	}
	for _, s := range node.Settings() {
		f := fs.Lookup(s.Flag)
		if f == nil || !f.Changed {
			continue
		}
		if err := s.Set(&cfg, f.Value.String()); err != nil {
			return cfg, fmt.Errorf("--%w", err)
		}
	}
	cfg.Version = version
	return cfg, cfg.Validate()
}

// runNode starts a node and blocks until ctx is done, then shuts it down.
// ready, if not nil, is called with the running node.
func runNode(ctx context.Context, cfg node.Config, ready func(*node.Node) error) error {
	n, err := node.New(ctx, cfg)
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		_ = n.Shutdown(context.Background())
		return err
	}
	var readyErr error
	if ready != nil {
		readyErr = ready(n)
	}
	if readyErr == nil {
		<-ctx.Done()
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(readyErr, n.Shutdown(sctx))
}
