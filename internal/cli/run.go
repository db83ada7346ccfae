// Package cli implements Strongroom's az-style client commands on the official Azure SDKs for Go.
package cli

import "github.com/spf13/cobra"

// Run builds the root command with the given extra commands (the server and the load generator
// live in their own packages), executes it with args and returns the process exit code.
// Errors are printed by Run as one line on stderr.
func Run(args []string, extra ...*cobra.Command) int {
	// placeholder: replaced by the CLI implementation
	root := &cobra.Command{Use: "strongroom", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(extra...)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		return 1
	}
	return 0
}
