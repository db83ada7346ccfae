package cli

import "github.com/spf13/cobra"

// monitorLogCommand is "monitor log": queries over the audit log.
func (a *app) monitorLogCommand() *cobra.Command {
	return group(&cobra.Command{Use: "log", Short: "Query the audit log"})
}
