// Command demandflow is the one Demandflow binary: it runs a node and
// offers the client, operator and benchmark subcommands.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "demandflow:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "demandflow:", err)
		os.Exit(1)
	}
}

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "demandflow",
		Short:         "Clustered appliance for demand data: ingest, store, track and forecast",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newNodeCmd(), newDemoCmd(), newForecastCmd())
	root.AddCommand(newPushCmd(), newBenchCmd(), newBacktestCmd())
	root.AddCommand(append(newOpsCmds(), newDrillCmd())...)
	root.AddCommand(newTrackCmd())
	return root
}
