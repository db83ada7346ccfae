package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// az ad user and az ad group.

func (a *app) adUserCommand() *cobra.Command {
	return group(&cobra.Command{Use: "user", Short: "Manage users"},
		a.adUserCreateCommand(), a.adUserListCommand(), a.adUserShowCommand(), a.adUserDeleteCommand())
}

func (a *app) adUserCreateCommand() *cobra.Command {
	var name, upn, password, nick, forceChange, enabled string
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create a user",
		RunE: func(cmd *cobra.Command, _ []string) error {
			force, err := strconv.ParseBool(forceChange)
			if err != nil {
				return usageErrorf("--force-change-password-next-sign-in: expected true or false, got %q", forceChange)
			}
			on, err := strconv.ParseBool(enabled)
			if err != nil {
				return usageErrorf("--account-enabled: expected true or false, got %q", enabled)
			}
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			body := map[string]any{"accountEnabled": on, "displayName": name, "userPrincipalName": upn,
				"passwordProfile": map[string]any{"password": password, "forceChangePasswordNextSignIn": force}}
			if nick != "" {
				body["mailNickname"] = nick
			}
			var out map[string]any
			if err := g.do(cmd.Context(), http.MethodPost, "/v1.0/users", body, &out); err != nil {
				return fmt.Errorf("creating user: %w", err)
			}
			return a.print(out)
		},
	})
	f := c.Flags()
	f.StringVar(&name, "display-name", "", "object's display name")
	f.StringVar(&upn, "user-principal-name", "", "the user principal name, e.g. alice@contoso.com")
	f.StringVar(&password, "password", "", "the user's password")
	f.StringVar(&nick, "mail-nickname", "", "mail alias (default: the user principal name's part before @)")
	f.StringVar(&forceChange, "force-change-password-next-sign-in", "false", "accepted for az compatibility: true or false")
	f.StringVar(&enabled, "account-enabled", "true", "whether the account may sign in: true or false")
	for _, r := range []string{"display-name", "user-principal-name", "password"} {
		_ = c.MarkFlagRequired(r)
	}
	return c
}

func (a *app) adUserListCommand() *cobra.Command {
	var lf listFlags
	var upn string
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List users",
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := singleFilter(lf.filter, startsWithClause("displayName", lf.displayName), eqClause("userPrincipalName", upn))
			if err != nil {
				return err
			}
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			users, err := g.list(cmd.Context(), filterPath("/v1.0/users", f))
			if err != nil {
				return fmt.Errorf("listing users: %w", err)
			}
			return a.print(users)
		},
	})
	lf.add(c)
	c.Flags().StringVar(&upn, "upn", "", "user principal name")
	return c
}

func (a *app) adUserShowCommand() *cobra.Command {
	var id string
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show a user by object id or user principal name",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			var out map[string]any
			if err := g.do(cmd.Context(), http.MethodGet, "/v1.0/users/"+url.PathEscape(id), nil, &out); err != nil {
				return fmt.Errorf("showing user: %w", err)
			}
			return a.print(out)
		},
	})
	c.Flags().StringVar(&id, "id", "", "user principal name or object id")
	_ = c.MarkFlagRequired("id")
	return c
}

func (a *app) adUserDeleteCommand() *cobra.Command {
	var id string
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete a user",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			if err := g.do(cmd.Context(), http.MethodDelete, "/v1.0/users/"+url.PathEscape(id), nil, nil); err != nil {
				return fmt.Errorf("deleting user: %w", err)
			}
			return nil
		},
	})
	c.Flags().StringVar(&id, "id", "", "user principal name or object id")
	_ = c.MarkFlagRequired("id")
	return c
}

func (a *app) adGroupCommand() *cobra.Command {
	member := group(&cobra.Command{Use: "member", Short: "Manage group members"},
		a.adGroupMemberAddCommand(), a.adGroupMemberRemoveCommand(), a.adGroupMemberListCommand(), a.adGroupMemberCheckCommand())
	return group(&cobra.Command{Use: "group", Short: "Manage security groups"},
		a.adGroupCreateCommand(), a.adGroupListCommand(), a.adGroupShowCommand(), a.adGroupDeleteCommand(), member)
}

// groupID resolves az's --group: an object id, or a display name that must name one group.
func (g *restClient) groupID(ctx context.Context, ref string) (string, error) {
	if isGUID(ref) {
		return ref, nil
	}
	groups, err := g.list(ctx, filterPath("/v1.0/groups", eqClause("displayName", ref)))
	if err != nil {
		return "", err
	}
	switch len(groups) {
	case 0:
		return "", &notFoundError{msg: fmt.Sprintf("No group matches the name of '%s'", ref)}
	case 1:
		return str(groups[0], "id"), nil
	}
	return "", fmt.Errorf("more than one group has the name '%s': use its object id", ref)
}

func (a *app) adGroupCreateCommand() *cobra.Command {
	var name, nick, desc string
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create a security group",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			body := map[string]any{"displayName": name, "mailNickname": nick, "mailEnabled": false, "securityEnabled": true}
			if desc != "" {
				body["description"] = desc
			}
			var out map[string]any
			if err := g.do(cmd.Context(), http.MethodPost, "/v1.0/groups", body, &out); err != nil {
				return fmt.Errorf("creating group: %w", err)
			}
			return a.print(out)
		},
	})
	f := c.Flags()
	f.StringVar(&name, "display-name", "", "object's display name")
	f.StringVar(&nick, "mail-nickname", "", "mail nickname")
	f.StringVar(&desc, "description", "", "group description")
	_ = c.MarkFlagRequired("display-name")
	_ = c.MarkFlagRequired("mail-nickname")
	return c
}

func (a *app) adGroupListCommand() *cobra.Command {
	var lf listFlags
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List groups",
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := singleFilter(lf.filter, startsWithClause("displayName", lf.displayName))
			if err != nil {
				return err
			}
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			groups, err := g.list(cmd.Context(), filterPath("/v1.0/groups", f))
			if err != nil {
				return fmt.Errorf("listing groups: %w", err)
			}
			return a.print(groups)
		},
	})
	lf.add(c)
	return c
}

// groupFlag is az's --group/-g: the group's object id or display name.
func groupFlag(c *cobra.Command, v *string) {
	c.Flags().StringVarP(v, "group", "g", "", "group's object id or display name")
	_ = c.MarkFlagRequired("group")
}

func (a *app) adGroupShowCommand() *cobra.Command {
	var ref string
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show a group",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			id, err := g.groupID(cmd.Context(), ref)
			if err != nil {
				return fmt.Errorf("showing group: %w", err)
			}
			var out map[string]any
			if err := g.do(cmd.Context(), http.MethodGet, "/v1.0/groups/"+id, nil, &out); err != nil {
				return fmt.Errorf("showing group: %w", err)
			}
			return a.print(out)
		},
	})
	groupFlag(c, &ref)
	return c
}

func (a *app) adGroupDeleteCommand() *cobra.Command {
	var ref string
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete a group",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			id, err := g.groupID(cmd.Context(), ref)
			if err != nil {
				return fmt.Errorf("deleting group: %w", err)
			}
			if err := g.do(cmd.Context(), http.MethodDelete, "/v1.0/groups/"+id, nil, nil); err != nil {
				return fmt.Errorf("deleting group: %w", err)
			}
			return nil
		},
	})
	groupFlag(c, &ref)
	return c
}

// memberCommand builds the member subcommands that take --group and --member-id.
func (a *app) memberCommand(use, short string, run func(ctx context.Context, g *restClient, groupID, memberID string) error) *cobra.Command {
	var ref, member string
	c := leaf(&cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !isGUID(member) {
				return usageErrorf("--member-id must be an object id")
			}
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			id, err := g.groupID(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return run(cmd.Context(), g, id, member)
		},
	})
	groupFlag(c, &ref)
	c.Flags().StringVar(&member, "member-id", "", "the object id of the member (a user, service principal or group)")
	_ = c.MarkFlagRequired("member-id")
	return c
}

func (a *app) adGroupMemberAddCommand() *cobra.Command {
	return a.memberCommand("add", "Add a member to a group", func(ctx context.Context, g *restClient, gid, mid string) error {
		ref := map[string]any{"@odata.id": g.base + "/v1.0/directoryObjects/" + mid}
		if err := g.do(ctx, http.MethodPost, "/v1.0/groups/"+gid+"/members/$ref", ref, nil); err != nil {
			return fmt.Errorf("adding group member: %w", err)
		}
		return nil
	})
}

func (a *app) adGroupMemberRemoveCommand() *cobra.Command {
	return a.memberCommand("remove", "Remove a member from a group", func(ctx context.Context, g *restClient, gid, mid string) error {
		if err := g.do(ctx, http.MethodDelete, "/v1.0/groups/"+gid+"/members/"+mid+"/$ref", nil, nil); err != nil {
			return fmt.Errorf("removing group member: %w", err)
		}
		return nil
	})
}

func (a *app) adGroupMemberCheckCommand() *cobra.Command {
	return a.memberCommand("check", "Check whether an object is a member of a group, directly or through nested groups",
		func(ctx context.Context, g *restClient, gid, mid string) error {
			var out struct {
				Value []string `json:"value"`
			}
			if err := g.do(ctx, http.MethodPost, "/v1.0/directoryObjects/"+mid+"/checkMemberGroups", map[string]any{"groupIds": []string{gid}}, &out); err != nil {
				return fmt.Errorf("checking group membership: %w", err)
			}
			return a.print(map[string]bool{"value": len(out.Value) > 0})
		})
}

func (a *app) adGroupMemberListCommand() *cobra.Command {
	var ref string
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List a group's direct members",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			id, err := g.groupID(cmd.Context(), ref)
			if err != nil {
				return fmt.Errorf("listing group members: %w", err)
			}
			members, err := g.list(cmd.Context(), "/v1.0/groups/"+id+"/members")
			if err != nil {
				return fmt.Errorf("listing group members: %w", err)
			}
			return a.print(members)
		},
	})
	groupFlag(c, &ref)
	return c
}
