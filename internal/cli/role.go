package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

// roleCommand is az's `role`: role assignments and role definitions (Microsoft.Authorization).
func (a *app) roleCommand(extra ...*cobra.Command) *cobra.Command {
	subs := append([]*cobra.Command{
		group(&cobra.Command{Use: "assignment", Short: "Manage role assignments"},
			a.roleAssignmentCreateCommand(), a.roleAssignmentListCommand(), a.roleAssignmentDeleteCommand()),
		group(&cobra.Command{Use: "definition", Short: "Manage role definitions"},
			a.roleDefinitionListCommand(), a.roleDefinitionShowCommand(), a.roleDefinitionCreateCommand(), a.roleDefinitionDeleteCommand()),
	}, extra...)
	return group(&cobra.Command{Use: "role", Short: "Manage role-based access control: role assignments and definitions"}, subs...)
}

func (s *session) roleAssignmentsClient() (*armauthorization.RoleAssignmentsClient, error) {
	c, err := armauthorization.NewRoleAssignmentsClient(s.profile.SubscriptionID, s.cred, s.armOptions())
	if err != nil {
		return nil, fmt.Errorf("creating role assignments client: %w", err)
	}
	return c, nil
}

func (s *session) roleDefinitionsClient() (*armauthorization.RoleDefinitionsClient, error) {
	c, err := armauthorization.NewRoleDefinitionsClient(s.cred, s.armOptions())
	if err != nil {
		return nil, fmt.Errorf("creating role definitions client: %w", err)
	}
	return c, nil
}

// scopeFlags are az's ways of naming a scope: --scope, or --resource-group in the current
// subscription; neither means the subscription.
type scopeFlags struct{ scope, resourceGroup string }

func (f *scopeFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.scope, "scope", "", "scope of the role assignment or definition, e.g. a vault's resource id")
	c.Flags().StringVarP(&f.resourceGroup, "resource-group", "g", "", "a resource group, as the scope")
}

func (f *scopeFlags) resolve(s *session) (string, error) {
	switch {
	case f.scope != "" && f.resourceGroup != "":
		return "", usageErrorf("use --scope or --resource-group, not both")
	case f.scope != "":
		return "/" + strings.Trim(f.scope, "/"), nil
	case f.resourceGroup != "":
		return "/subscriptions/" + s.profile.SubscriptionID + "/resourceGroups/" + f.resourceGroup, nil
	}
	return "/subscriptions/" + s.profile.SubscriptionID, nil
}

// open opens the logged-in session and resolves the scope the flags name in it.
func (f *scopeFlags) open() (*session, string, error) {
	s, err := openSession()
	if err != nil {
		return nil, "", err
	}
	scope, err := f.resolve(s)
	return s, scope, err
}

// resolveRole finds a role definition by GUID, full id or name, as --role takes it.
func resolveRole(ctx context.Context, s *session, scope, role string) (*armauthorization.RoleDefinition, error) {
	defs, err := s.roleDefinitionsClient()
	if err != nil {
		return nil, err
	}
	if i := strings.LastIndex(role, "/"); i >= 0 {
		role = role[i+1:]
	}
	if _, err := uuid.Parse(role); err == nil {
		d, err := defs.Get(ctx, scope, role, nil)
		if err != nil {
			return nil, notFoundOr(err, "role definition", "getting role definition")
		}
		return &d.RoleDefinition, nil
	}
	pager := defs.NewListPager(scope, &armauthorization.RoleDefinitionsClientListOptions{Filter: to.Ptr("roleName eq '" + strings.ReplaceAll(role, "'", "''") + "'")})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("finding role %q: %w", role, err)
		}
		if len(page.Value) > 0 {
			return page.Value[0], nil
		}
	}
	return nil, &notFoundError{msg: fmt.Sprintf("Role '%s' doesn't exist.", role)}
}

// resolveAssignee finds the object id --assignee names: a user principal name, a service
// principal's appId or name, or an object id, looked up in the directory as az does.
func resolveAssignee(ctx context.Context, s *session, assignee string) (string, error) {
	if strings.Contains(assignee, "@") {
		var u struct {
			ID string `json:"id"`
		}
		if _, err := s.graphGet(ctx, "/v1.0/users/"+url.PathEscape(assignee), &u); err != nil || u.ID == "" {
			return "", &notFoundError{msg: fmt.Sprintf("Cannot find user or service principal in graph database for '%s'.", assignee)}
		}
		return u.ID, nil
	}
	var res struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	filter := "servicePrincipalNames/any(c:c eq '" + strings.ReplaceAll(assignee, "'", "''") + "')"
	if _, err := s.graphGet(ctx, "/v1.0/servicePrincipals?$filter="+queryEscape(filter), &res); err == nil && len(res.Value) == 1 {
		return res.Value[0].ID, nil
	}
	if _, err := uuid.Parse(assignee); err == nil {
		return strings.ToLower(assignee), nil // an object id the directory does not list as an spn
	}
	return "", &notFoundError{msg: fmt.Sprintf("Cannot find user or service principal in graph database for '%s'.", assignee)}
}

// flatAssignment is a role assignment as az prints it (properties flattened).
func flatAssignment(ra *armauthorization.RoleAssignment, roleName string) map[string]any {
	out := map[string]any{"id": ra.ID, "name": ra.Name, "type": ra.Type}
	if p := ra.Properties; p != nil {
		out["roleDefinitionId"], out["principalId"], out["principalType"], out["scope"] = p.RoleDefinitionID, p.PrincipalID, p.PrincipalType, p.Scope
		out["condition"], out["conditionVersion"], out["description"] = p.Condition, p.ConditionVersion, p.Description
		out["createdBy"], out["createdOn"], out["updatedBy"], out["updatedOn"] = p.CreatedBy, p.CreatedOn, p.UpdatedBy, p.UpdatedOn
		out["delegatedManagedIdentityResourceId"] = p.DelegatedManagedIdentityResourceID
	}
	if roleName != "" {
		out["roleDefinitionName"] = roleName
	}
	return out
}

func (a *app) roleAssignmentCreateCommand() *cobra.Command {
	var role, assignee, objectID, principalType, description, name string
	var sf scopeFlags
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Assign a role to a user, group, service principal or managed identity at a scope",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (assignee == "") == (objectID == "") {
				return usageErrorf("give exactly one of --assignee and --assignee-object-id")
			}
			ctx := cmd.Context()
			s, scope, err := sf.open()
			if err != nil {
				return err
			}
			def, err := resolveRole(ctx, s, scope, role)
			if err != nil {
				return err
			}
			if objectID == "" {
				if objectID, err = resolveAssignee(ctx, s, assignee); err != nil {
					return err
				}
			}
			if name == "" {
				name = uuid.NewString()
			}
			props := &armauthorization.RoleAssignmentProperties{RoleDefinitionID: def.ID, PrincipalID: to.Ptr(objectID)}
			if principalType != "" {
				props.PrincipalType = to.Ptr(armauthorization.PrincipalType(principalType))
			}
			if description != "" {
				props.Description = to.Ptr(description)
			}
			rc, err := s.roleAssignmentsClient()
			if err != nil {
				return err
			}
			resp, err := rc.Create(ctx, scope, name, armauthorization.RoleAssignmentCreateParameters{Properties: props}, nil)
			if err != nil {
				return notFoundOr(err, "scope", "creating role assignment")
			}
			return a.print(flatAssignment(&resp.RoleAssignment, ""))
		},
	})
	f := c.Flags()
	f.StringVar(&role, "role", "", "role name or id, e.g. \"Key Vault Secrets User\"")
	f.StringVar(&assignee, "assignee", "", "user principal name, service principal appId or name, or object id")
	f.StringVar(&objectID, "assignee-object-id", "", "the assignee's object id (no directory lookup)")
	f.StringVar(&principalType, "assignee-principal-type", "", "User, Group, ServicePrincipal or ForeignGroup (with --assignee-object-id)")
	f.StringVar(&description, "description", "", "description of the assignment")
	f.StringVar(&name, "name", "", "the assignment's name (a GUID; default: a new one)")
	sf.add(c)
	_ = c.MarkFlagRequired("role")
	return c
}

// assignmentQuery is what `role assignment list` and `delete` select by.
type assignmentQuery struct {
	role, assignee string
	sf             scopeFlags
	all            bool
}

func (q *assignmentQuery) add(c *cobra.Command) {
	c.Flags().StringVar(&q.role, "role", "", "only assignments of this role (name or id)")
	c.Flags().StringVar(&q.assignee, "assignee", "", "only assignments to this principal (UPN, appId, name or object id)")
	q.sf.add(c)
}

// find lists the assignments the query selects, with their role names.
func (q *assignmentQuery) find(ctx context.Context, s *session, atScope bool) ([]map[string]any, []*armauthorization.RoleAssignment, error) {
	scope, err := q.sf.resolve(s)
	if err != nil {
		return nil, nil, err
	}
	opts := &armauthorization.RoleAssignmentsClientListForScopeOptions{}
	var filters []string
	if atScope {
		filters = append(filters, "atScope()")
	}
	if q.assignee != "" {
		oid, err := resolveAssignee(ctx, s, q.assignee)
		if err != nil {
			return nil, nil, err
		}
		filters = append(filters, "principalId eq '"+oid+"'")
	}
	if len(filters) > 0 {
		opts.Filter = to.Ptr(strings.Join(filters, " and "))
	}
	roleID := ""
	if q.role != "" {
		def, err := resolveRole(ctx, s, scope, q.role)
		if err != nil {
			return nil, nil, err
		}
		roleID = strings.ToLower(*def.Name)
	}
	rc, err := s.roleAssignmentsClient()
	if err != nil {
		return nil, nil, err
	}
	names := map[string]string{}
	flat, raw := []map[string]any{}, []*armauthorization.RoleAssignment{}
	pager := rc.NewListForScopePager(scope, opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, nil, notFoundOr(err, "scope", "listing role assignments")
		}
		for _, ra := range page.Value {
			id := ""
			if ra.Properties != nil && ra.Properties.RoleDefinitionID != nil {
				rid := *ra.Properties.RoleDefinitionID
				id = strings.ToLower(rid[strings.LastIndex(rid, "/")+1:])
			}
			if roleID != "" && id != roleID {
				continue
			}
			if _, ok := names[id]; !ok {
				if def, err := resolveRole(ctx, s, scope, id); err == nil && def.Properties != nil && def.Properties.RoleName != nil {
					names[id] = *def.Properties.RoleName
				}
			}
			flat, raw = append(flat, flatAssignment(ra, names[id])), append(raw, ra)
		}
	}
	return flat, raw, nil
}

func (a *app) roleAssignmentListCommand() *cobra.Command {
	var q assignmentQuery
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List role assignments at a scope (those inherited from above and, with --all, those below)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession()
			if err != nil {
				return err
			}
			flat, _, err := q.find(cmd.Context(), s, !q.all)
			if err != nil {
				return err
			}
			return a.print(flat)
		},
	})
	q.add(c)
	c.Flags().BoolVar(&q.all, "all", false, "also list assignments below the scope")
	return c
}

func (a *app) roleAssignmentDeleteCommand() *cobra.Command {
	var q assignmentQuery
	var ids []string
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete role assignments, by id or by assignee, role and scope",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := openSession()
			if err != nil {
				return err
			}
			rc, err := s.roleAssignmentsClient()
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				for _, id := range ids {
					if _, err := rc.DeleteByID(ctx, id, nil); err != nil {
						return notFoundOr(err, "role assignment", "deleting role assignment")
					}
				}
				return nil
			}
			if q.assignee == "" && q.role == "" {
				return usageErrorf("give --ids, or --assignee and/or --role to select assignments")
			}
			_, raw, err := q.find(ctx, s, true)
			if err != nil {
				return err
			}
			for _, ra := range raw {
				if _, err := rc.DeleteByID(ctx, *ra.ID, nil); err != nil {
					return fmt.Errorf("deleting role assignment %s: %w", *ra.Name, err)
				}
			}
			return nil
		},
	})
	q.add(c)
	c.Flags().StringSliceVar(&ids, "ids", nil, "full ids of the role assignments to delete")
	return c
}

// flatDefinition is a role definition as az prints it.
func flatDefinition(d *armauthorization.RoleDefinition) map[string]any {
	out := map[string]any{"id": d.ID, "name": d.Name, "type": d.Type}
	if p := d.Properties; p != nil {
		out["roleName"], out["roleType"], out["description"] = p.RoleName, p.RoleType, p.Description
		out["assignableScopes"], out["permissions"] = p.AssignableScopes, p.Permissions
	}
	return out
}

func (a *app) roleDefinitionListCommand() *cobra.Command {
	var name string
	var customOnly bool
	var sf scopeFlags
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List role definitions",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, scope, err := sf.open()
			if err != nil {
				return err
			}
			if name != "" {
				d, err := resolveRole(ctx, s, scope, name)
				if err != nil {
					return err
				}
				return a.print([]map[string]any{flatDefinition(d)})
			}
			defs, err := s.roleDefinitionsClient()
			if err != nil {
				return err
			}
			opts := &armauthorization.RoleDefinitionsClientListOptions{}
			if customOnly {
				opts.Filter = to.Ptr("type eq 'CustomRole'")
			}
			out := []map[string]any{}
			pager := defs.NewListPager(scope, opts)
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					return notFoundOr(err, "scope", "listing role definitions")
				}
				for _, d := range page.Value {
					out = append(out, flatDefinition(d))
				}
			}
			return a.print(out)
		},
	})
	c.Flags().StringVarP(&name, "name", "n", "", "a role's name or id")
	c.Flags().BoolVar(&customOnly, "custom-role-only", false, "only custom roles")
	sf.add(c)
	return c
}

func (a *app) roleDefinitionShowCommand() *cobra.Command {
	var name string
	var sf scopeFlags
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show one role definition",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, scope, err := sf.open()
			if err != nil {
				return err
			}
			d, err := resolveRole(cmd.Context(), s, scope, name)
			if err != nil {
				return err
			}
			return a.print(flatDefinition(d))
		},
	})
	c.Flags().StringVarP(&name, "name", "n", "", "the role's name or id")
	sf.add(c)
	_ = c.MarkFlagRequired("name")
	return c
}

// customRoleFile is az's --role-definition document.
type customRoleFile struct {
	Name             string   `json:"Name"`
	ID               string   `json:"Id"`
	Description      string   `json:"Description"`
	Actions          []string `json:"Actions"`
	NotActions       []string `json:"NotActions"`
	DataActions      []string `json:"DataActions"`
	NotDataActions   []string `json:"NotDataActions"`
	AssignableScopes []string `json:"AssignableScopes"`
}

func (a *app) roleDefinitionCreateCommand() *cobra.Command {
	var doc string
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create a custom role from a JSON description (inline or @file)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw := []byte(doc)
			if strings.HasPrefix(doc, "@") {
				var err error
				if raw, err = os.ReadFile(doc[1:]); err != nil {
					return fmt.Errorf("reading role definition: %w", err)
				}
			}
			var rf customRoleFile
			if err := json.Unmarshal(raw, &rf); err != nil {
				return usageErrorf("the role definition is not valid JSON: %v", err)
			}
			if rf.Name == "" || len(rf.AssignableScopes) == 0 {
				return usageErrorf("the role definition needs Name and AssignableScopes")
			}
			if rf.ID == "" {
				rf.ID = uuid.NewString()
			}
			s, err := openSession()
			if err != nil {
				return err
			}
			defs, err := s.roleDefinitionsClient()
			if err != nil {
				return err
			}
			ptrs := func(v []string) []*string { return to.SliceOfPtrs(v...) }
			resp, err := defs.CreateOrUpdate(cmd.Context(), rf.AssignableScopes[0], rf.ID, armauthorization.RoleDefinition{Properties: &armauthorization.RoleDefinitionProperties{
				RoleName: to.Ptr(rf.Name), Description: to.Ptr(rf.Description), RoleType: to.Ptr("CustomRole"),
				AssignableScopes: ptrs(rf.AssignableScopes),
				Permissions: []*armauthorization.Permission{{Actions: ptrs(rf.Actions), NotActions: ptrs(rf.NotActions),
					DataActions: ptrs(rf.DataActions), NotDataActions: ptrs(rf.NotDataActions)}},
			}}, nil)
			if err != nil {
				return notFoundOr(err, "scope", "creating role definition")
			}
			return a.print(flatDefinition(&resp.RoleDefinition))
		},
	})
	c.Flags().StringVar(&doc, "role-definition", "", "the role as JSON ({Name, Description, Actions, NotActions, DataActions, NotDataActions, AssignableScopes}) or @file")
	_ = c.MarkFlagRequired("role-definition")
	return c
}

func (a *app) roleDefinitionDeleteCommand() *cobra.Command {
	var name string
	var sf scopeFlags
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete a custom role",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, scope, err := sf.open()
			if err != nil {
				return err
			}
			d, err := resolveRole(ctx, s, scope, name)
			if err != nil {
				return err
			}
			defs, err := s.roleDefinitionsClient()
			if err != nil {
				return err
			}
			if _, err := defs.Delete(ctx, scope, *d.Name, nil); err != nil {
				return notFoundOr(err, "role definition", "deleting role definition")
			}
			return nil
		},
	})
	c.Flags().StringVarP(&name, "name", "n", "", "the role's name or id")
	sf.add(c)
	_ = c.MarkFlagRequired("name")
	return c
}
