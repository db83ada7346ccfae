package cli

import "github.com/spf13/cobra"

// eventgridCommand is az's "eventgrid" group: event subscriptions and dead letters.
func (a *app) eventgridCommand() *cobra.Command {
	return group(&cobra.Command{Use: "eventgrid", Short: "Manage event subscriptions and dead-lettered events"})
}
