package cli

import "github.com/spf13/cobra"

// monitorCommand is az's "monitor" group: the audit log query (monitor_log.go) and alerts
// (monitor_alert.go).
func (a *app) monitorCommand() *cobra.Command {
	return group(&cobra.Command{Use: "monitor", Short: "Query the audit log and manage alerts"},
		a.monitorLogCommand(), a.monitorAlertCommand())
}
