package cli

import (
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/spf13/cobra"
)

func (a *app) groupCommand() *cobra.Command {
	return group(&cobra.Command{Use: "group", Short: "Manage resource groups"},
		a.groupCreateCommand(), a.groupShowCommand(), a.groupListCommand(),
		a.groupDeleteCommand(), a.groupExistsCommand())
}

func (a *app) groupCreateCommand() *cobra.Command {
	var name, location string
	var tags []string
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create a resource group (or update its tags)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			s, err := openSession()
			if err != nil {
				return err
			}
			rc, err := s.groupsClient()
			if err != nil {
				return err
			}
			rg := armresources.ResourceGroup{Location: to.Ptr(location)}
			if cmd.Flags().Changed("tags") {
				rg.Tags = t
			}
			resp, err := rc.CreateOrUpdate(cmd.Context(), name, rg, nil)
			if err != nil {
				return notFoundOr(err, "subscription", "creating resource group")
			}
			return a.print(resp.ResourceGroup)
		},
	})
	f := c.Flags()
	f.StringVarP(&name, "name", "n", "", "name of the new resource group")
	f.StringVarP(&location, "location", "l", "", "location, e.g. eastus")
	f.StringArrayVar(&tags, "tags", nil, "space-separated tags: key[=value] [key[=value] ...]")
	_ = c.MarkFlagRequired("name")
	_ = c.MarkFlagRequired("location")
	return c
}

func (a *app) groupShowCommand() *cobra.Command {
	var name string
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show a resource group",
		RunE: func(cmd *cobra.Command, _ []string) error {
			rc, err := a.groups()
			if err != nil {
				return err
			}
			resp, err := rc.Get(cmd.Context(), name, nil)
			if err != nil {
				return notFoundOr(err, "resource group", "getting resource group")
			}
			return a.print(resp.ResourceGroup)
		},
	})
	c.Flags().StringVarP(&name, "name", "n", "", "name of the resource group")
	_ = c.MarkFlagRequired("name")
	return c
}

func (a *app) groupListCommand() *cobra.Command {
	return leaf(&cobra.Command{
		Use:   "list",
		Short: "List resource groups",
		RunE: func(cmd *cobra.Command, _ []string) error {
			rc, err := a.groups()
			if err != nil {
				return err
			}
			groups := []*armresources.ResourceGroup{}
			pager := rc.NewListPager(nil)
			for pager.More() {
				page, err := pager.NextPage(cmd.Context())
				if err != nil {
					return notFoundOr(err, "subscription", "listing resource groups")
				}
				groups = append(groups, page.Value...)
			}
			return a.print(groups)
		},
	})
}

func (a *app) groupDeleteCommand() *cobra.Command {
	var name string
	var yes, noWait bool
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete a resource group and the vaults in it",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !yes {
				if err := a.confirm("Are you sure you want to perform this operation?"); err != nil {
					return err
				}
			}
			rc, err := a.groups()
			if err != nil {
				return err
			}
			poller, err := rc.BeginDelete(cmd.Context(), name, nil)
			if err != nil {
				return notFoundOr(err, "resource group", "deleting resource group")
			}
			if noWait {
				return nil
			}
			if _, err := poller.PollUntilDone(cmd.Context(), nil); err != nil {
				return notFoundOr(err, "resource group", "deleting resource group")
			}
			return nil
		},
	})
	f := c.Flags()
	f.StringVarP(&name, "name", "n", "", "name of the resource group")
	f.BoolVarP(&yes, "yes", "y", false, "do not prompt for confirmation")
	f.BoolVar(&noWait, "no-wait", false, "do not wait for the deletion to finish")
	_ = c.MarkFlagRequired("name")
	return c
}

func (a *app) groupExistsCommand() *cobra.Command {
	var name string
	c := leaf(&cobra.Command{
		Use:   "exists",
		Short: "Check whether a resource group exists (prints true or false)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			rc, err := a.groups()
			if err != nil {
				return err
			}
			resp, err := rc.CheckExistence(cmd.Context(), name, nil)
			if err != nil {
				return notFoundOr(err, "subscription", "checking resource group")
			}
			return a.print(resp.Success)
		},
	})
	c.Flags().StringVarP(&name, "name", "n", "", "name of the resource group")
	_ = c.MarkFlagRequired("name")
	return c
}

// groups opens the session and returns its resource groups client.
func (a *app) groups() (*armresources.ResourceGroupsClient, error) {
	s, err := openSession()
	if err != nil {
		return nil, err
	}
	return s.groupsClient()
}
