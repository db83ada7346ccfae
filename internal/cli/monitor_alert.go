package cli

import "github.com/spf13/cobra"

// monitorAlertCommand is "monitor alert": alert rules and fired alerts.
func (a *app) monitorAlertCommand() *cobra.Command {
	return group(&cobra.Command{Use: "alert", Short: "Manage alert rules and list fired alerts"})
}
