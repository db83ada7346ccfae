package cli

// Just-in-time elevation (ours: az has no PIM verbs): `role eligibility create|list|delete`,
// `role activate`, `role deactivate` and `role approval list|approve|deny`, through the official
// armauthorization clients of api-version 2020-10-01 (approvals through the server's
// .../roleAssignmentScheduleRequests/{name}/approve|deny, which Azure serves through Graph).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

const pimAPIVersion = "2020-10-01"

// isoDuration reads --duration as ISO 8601 (PT1H, P365D, P1DT12H) or as Go's 1h30m and
// returns the ISO 8601 form the server takes (the server checks it against the policy).
func isoDuration(flag, v string) (string, error) {
	v = strings.ToUpper(strings.TrimSpace(v))
	bad := usageErrorf("%s %q: use an ISO 8601 duration such as PT1H or P365D, or 1h30m", flag, v)
	if isoDurationRE.MatchString(v) && v != "P" && !strings.HasSuffix(v, "T") {
		return v, nil
	}
	if strings.HasPrefix(v, "P") {
		return "", bad
	}
	d, err := time.ParseDuration(strings.ToLower(v))
	if err != nil || d < time.Second {
		return "", bad
	}
	d = d.Round(time.Second)
	var b strings.Builder
	b.WriteString("P")
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d > 0 {
		b.WriteString("T")
		for _, u := range []struct {
			unit time.Duration
			sym  string
		}{{time.Hour, "H"}, {time.Minute, "M"}, {time.Second, "S"}} {
			if n := d / u.unit; n > 0 {
				fmt.Fprintf(&b, "%d%s", n, u.sym)
				d -= n * u.unit
			}
		}
	}
	return b.String(), nil
}

var isoDurationRE = regexp.MustCompile(`^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$`)

// flatPIM prints a PIM resource as az prints resources: properties flattened, with the role's
// name beside its id.
func flatPIM(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding the answer: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding the answer: %w", err)
	}
	if props, ok := m["properties"].(map[string]any); ok {
		delete(m, "properties")
		for k, v := range props {
			m[k] = v
		}
	}
	if ep, ok := m["expandedProperties"].(map[string]any); ok {
		if rd, ok := ep["roleDefinition"].(map[string]any); ok {
			m["roleDefinitionName"] = rd["displayName"]
		}
	}
	return m, nil
}

func flatPIMList[T any](items []*T) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		m, err := flatPIM(it)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// assigneeFlags name a principal as `role assignment create` does.
type assigneeFlags struct{ assignee, objectID string }

func (f *assigneeFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.assignee, "assignee", "", "user principal name, service principal appId or name, or object id")
	c.Flags().StringVar(&f.objectID, "assignee-object-id", "", "the assignee's object id (no directory lookup)")
}

func (f *assigneeFlags) resolve(ctx context.Context, s *session) (string, error) {
	if (f.assignee == "") == (f.objectID == "") {
		return "", usageErrorf("give exactly one of --assignee and --assignee-object-id")
	}
	if f.objectID != "" {
		return strings.ToLower(f.objectID), nil
	}
	return resolveAssignee(ctx, s, f.assignee)
}

// roleEligibilityCommand is `role eligibility create|list|delete`.
func (a *app) roleEligibilityCommand() *cobra.Command {
	return group(&cobra.Command{Use: "eligibility", Short: "Manage eligible (just-in-time) role assignments"},
		a.roleEligibilityCreateCommand(), a.roleEligibilityListCommand(), a.roleEligibilityDeleteCommand())
}

func (a *app) eligibilityRequest(cmd *cobra.Command, role string, af *assigneeFlags, sf *scopeFlags, typ armauthorization.RequestType,
	info *armauthorization.RoleEligibilityScheduleRequestPropertiesScheduleInfo, justification string) error {
	ctx := cmd.Context()
	s, scope, err := sf.open()
	if err != nil {
		return err
	}
	def, err := resolveRole(ctx, s, scope, role)
	if err != nil {
		return err
	}
	principal, err := af.resolve(ctx, s)
	if err != nil {
		return err
	}
	c, err := armauthorization.NewRoleEligibilityScheduleRequestsClient(s.cred, s.armOptions())
	if err != nil {
		return fmt.Errorf("creating role eligibility client: %w", err)
	}
	props := &armauthorization.RoleEligibilityScheduleRequestProperties{PrincipalID: to.Ptr(principal), RoleDefinitionID: def.ID,
		RequestType: to.Ptr(typ), ScheduleInfo: info}
	if justification != "" {
		props.Justification = to.Ptr(justification)
	}
	resp, err := c.Create(ctx, scope, uuid.NewString(), armauthorization.RoleEligibilityScheduleRequest{Properties: props}, nil)
	if err != nil {
		return notFoundOr(err, "eligibility", "requesting role eligibility")
	}
	out, err := flatPIM(resp.RoleEligibilityScheduleRequest)
	if err != nil {
		return err
	}
	return a.print(out)
}

func (a *app) roleEligibilityCreateCommand() *cobra.Command {
	var role, duration, start, justification string
	var forever bool
	var af assigneeFlags
	var sf scopeFlags
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Make a principal eligible to activate a role at a scope (AdminAssign)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := &armauthorization.RoleEligibilityScheduleRequestPropertiesScheduleInfo{
				Expiration: &armauthorization.RoleEligibilityScheduleRequestPropertiesScheduleInfoExpiration{Type: to.Ptr(armauthorization.TypeNoExpiration)}}
			if start != "" {
				t, err := time.Parse(time.RFC3339, start)
				if err != nil {
					return usageErrorf("--start %q: use an RFC 3339 time such as 2026-03-01T09:00:00Z", start)
				}
				info.StartDateTime = &t
			}
			if !forever {
				d, err := isoDuration("--duration", duration)
				if err != nil {
					return err
				}
				info.Expiration = &armauthorization.RoleEligibilityScheduleRequestPropertiesScheduleInfoExpiration{
					Type: to.Ptr(armauthorization.TypeAfterDuration), Duration: to.Ptr(d)}
			}
			return a.eligibilityRequest(cmd, role, &af, &sf, armauthorization.RequestTypeAdminAssign, info, justification)
		},
	})
	f := c.Flags()
	f.StringVar(&role, "role", "", "role name or id, e.g. \"Key Vault Secrets Officer\"")
	f.StringVar(&duration, "duration", "P365D", "how long the eligibility lasts (ISO 8601, e.g. P90D)")
	f.BoolVar(&forever, "no-expiration", false, "the eligibility never expires (only where the role's policy allows it)")
	f.StringVar(&start, "start", "", "when the eligibility begins (RFC 3339; default now)")
	f.StringVar(&justification, "justification", "", "why the principal is made eligible")
	af.add(c)
	sf.add(c)
	_ = c.MarkFlagRequired("role")
	return c
}

func (a *app) roleEligibilityDeleteCommand() *cobra.Command {
	var role, justification string
	var af assigneeFlags
	var sf scopeFlags
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "End a principal's eligibility for a role at a scope, and its activations (AdminRemove)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.eligibilityRequest(cmd, role, &af, &sf, armauthorization.RequestTypeAdminRemove, nil, justification)
		},
	})
	c.Flags().StringVar(&role, "role", "", "role name or id")
	c.Flags().StringVar(&justification, "justification", "", "why the eligibility ends")
	af.add(c)
	sf.add(c)
	_ = c.MarkFlagRequired("role")
	return c
}

// myEligibilities lists the caller's eligibilities (asTarget()) at scope.
func myEligibilities(ctx context.Context, s *session, scope, filter string) ([]*armauthorization.RoleEligibilitySchedule, error) {
	c, err := armauthorization.NewRoleEligibilitySchedulesClient(s.cred, s.armOptions())
	if err != nil {
		return nil, fmt.Errorf("creating role eligibility client: %w", err)
	}
	opts := &armauthorization.RoleEligibilitySchedulesClientListForScopeOptions{}
	if filter != "" {
		opts.Filter = to.Ptr(filter)
	}
	out, err := collectPages(ctx, c.NewListForScopePager(scope, opts),
		func(p armauthorization.RoleEligibilitySchedulesClientListForScopeResponse) []*armauthorization.RoleEligibilitySchedule {
			return p.Value
		},
		nil, func(e *armauthorization.RoleEligibilitySchedule) *armauthorization.RoleEligibilitySchedule { return e })
	if err != nil {
		return nil, notFoundOr(err, "scope", "listing role eligibilities")
	}
	return out, nil
}

func (a *app) roleEligibilityListCommand() *cobra.Command {
	var all bool
	var assignee string
	var sf scopeFlags
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List eligible role assignments: your own, or everyone's at a scope with --all",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, scope, err := sf.open()
			if err != nil {
				return err
			}
			filter := "asTarget()"
			switch {
			case assignee != "":
				oid, err := resolveAssignee(ctx, s, assignee)
				if err != nil {
					return err
				}
				filter = "principalId eq '" + oid + "'"
			case all:
				filter = ""
			}
			list, err := myEligibilities(ctx, s, scope, filter)
			if err != nil {
				return err
			}
			out, err := flatPIMList(list)
			if err != nil {
				return err
			}
			return a.print(out)
		},
	})
	c.Flags().BoolVar(&all, "all", false, "every principal's eligibilities at, above and below the scope (needs roleAssignments/read)")
	c.Flags().StringVar(&assignee, "assignee", "", "one principal's eligibilities")
	sf.add(c)
	return c
}

// roleMatches reports whether a role definition id names role (a GUID, an id, or a display name).
func roleMatches(id, displayName *string, role string) bool {
	if id == nil {
		return false
	}
	if i := strings.LastIndex(role, "/"); i >= 0 {
		role = role[i+1:]
	}
	return strings.HasSuffix(strings.ToLower(*id), "/"+strings.ToLower(role)) || displayName != nil && strings.EqualFold(*displayName, role)
}

func displayNameOf(ep *armauthorization.ExpandedProperties) *string {
	if ep == nil || ep.RoleDefinition == nil {
		return nil
	}
	return ep.RoleDefinition.DisplayName
}

// scopeCovers reports whether parent is child or above it.
func scopeCovers(parent, child string) bool {
	p, c := strings.ToLower(strings.TrimRight(parent, "/")), strings.ToLower(strings.TrimRight(child, "/"))
	return p == "" || p == c || strings.HasPrefix(c, p+"/")
}

func (a *app) selfRequest(ctx context.Context, s *session, scope, principal string, props *armauthorization.RoleAssignmentScheduleRequestProperties) error {
	props.PrincipalID = to.Ptr(principal)
	c, err := armauthorization.NewRoleAssignmentScheduleRequestsClient(s.cred, s.armOptions())
	if err != nil {
		return fmt.Errorf("creating role activation client: %w", err)
	}
	resp, err := c.Create(ctx, scope, uuid.NewString(), armauthorization.RoleAssignmentScheduleRequest{Properties: props}, nil)
	if err != nil {
		return notFoundOr(err, "activation", "requesting role activation")
	}
	out, err := flatPIM(resp.RoleAssignmentScheduleRequest)
	if err != nil {
		return err
	}
	return a.print(out)
}

// roleActivateCommand is `role activate`: the caller turns its eligibility into an active,
// time-bound role assignment (SelfActivate), or asks for one when the role needs approval.
func (a *app) roleActivateCommand() *cobra.Command {
	var role, justification, duration, ticket, ticketSystem string
	var sf scopeFlags
	c := leaf(&cobra.Command{
		Use:   "activate",
		Short: "Activate a role you are eligible for, for a limited time",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			d, err := isoDuration("--duration", duration)
			if err != nil {
				return err
			}
			s, scope, err := sf.open()
			if err != nil {
				return err
			}
			me, err := s.callerObjectID(ctx)
			if err != nil {
				return err
			}
			// The caller's own eligibilities name the role: no role definition read is needed.
			mine, err := myEligibilities(ctx, s, scope, "asTarget()")
			if err != nil {
				return err
			}
			var elig *armauthorization.RoleEligibilitySchedule
			for _, e := range mine {
				if p := e.Properties; p != nil && p.Scope != nil && roleMatches(p.RoleDefinitionID, displayNameOf(p.ExpandedProperties), role) && scopeCovers(*p.Scope, scope) {
					elig = e
					break
				}
			}
			if elig == nil {
				return &notFoundError{msg: fmt.Sprintf("You are not eligible for role '%s' at scope '%s' or above it (see 'strongroom role eligibility list').", role, scope)}
			}
			props := &armauthorization.RoleAssignmentScheduleRequestProperties{RoleDefinitionID: elig.Properties.RoleDefinitionID,
				RequestType: to.Ptr(armauthorization.RequestTypeSelfActivate), LinkedRoleEligibilityScheduleID: elig.ID,
				ScheduleInfo: &armauthorization.RoleAssignmentScheduleRequestPropertiesScheduleInfo{StartDateTime: to.Ptr(time.Now().UTC()),
					Expiration: &armauthorization.RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration{
						Type: to.Ptr(armauthorization.TypeAfterDuration), Duration: to.Ptr(d)}}}
			if justification != "" {
				props.Justification = to.Ptr(justification)
			}
			if ticket != "" || ticketSystem != "" {
				props.TicketInfo = &armauthorization.RoleAssignmentScheduleRequestPropertiesTicketInfo{TicketNumber: to.Ptr(ticket), TicketSystem: to.Ptr(ticketSystem)}
			}
			return a.selfRequest(ctx, s, scope, me, props)
		},
	})
	f := c.Flags()
	f.StringVar(&role, "role", "", "role name or id you are eligible for")
	f.StringVar(&justification, "justification", "", "why you need the role (required by default)")
	f.StringVar(&duration, "duration", "PT1H", "how long the activation lasts (ISO 8601 or 1h30m; at most the role's policy maximum)")
	f.StringVar(&ticket, "ticket-number", "", "the ticket the activation is for (when the role's policy requires one)")
	f.StringVar(&ticketSystem, "ticket-system", "", "the system the ticket is in")
	sf.add(c)
	_ = c.MarkFlagRequired("role")
	return c
}

// roleDeactivateCommand is `role deactivate`: the caller ends its activation early.
func (a *app) roleDeactivateCommand() *cobra.Command {
	var role string
	var sf scopeFlags
	c := leaf(&cobra.Command{
		Use:   "deactivate",
		Short: "End your activation of a role before it expires",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, scope, err := sf.open()
			if err != nil {
				return err
			}
			me, err := s.callerObjectID(ctx)
			if err != nil {
				return err
			}
			sc, err := armauthorization.NewRoleAssignmentSchedulesClient(s.cred, s.armOptions())
			if err != nil {
				return fmt.Errorf("creating role schedules client: %w", err)
			}
			active, err := collectPages(ctx, sc.NewListForScopePager(scope, &armauthorization.RoleAssignmentSchedulesClientListForScopeOptions{Filter: to.Ptr("asTarget()")}),
				func(p armauthorization.RoleAssignmentSchedulesClientListForScopeResponse) []*armauthorization.RoleAssignmentSchedule {
					return p.Value
				},
				func(x *armauthorization.RoleAssignmentSchedule) bool {
					p := x.Properties
					return p != nil && p.Scope != nil && strings.EqualFold(strings.TrimRight(*p.Scope, "/"), strings.TrimRight(scope, "/")) &&
						roleMatches(p.RoleDefinitionID, displayNameOf(p.ExpandedProperties), role)
				}, func(x *armauthorization.RoleAssignmentSchedule) *armauthorization.RoleAssignmentSchedule { return x })
			if err != nil {
				return notFoundOr(err, "scope", "listing your activations")
			}
			if len(active) == 0 {
				return &notFoundError{msg: fmt.Sprintf("You have no active activation of role '%s' at scope '%s'.", role, scope)}
			}
			return a.selfRequest(ctx, s, scope, me, &armauthorization.RoleAssignmentScheduleRequestProperties{
				RoleDefinitionID: active[0].Properties.RoleDefinitionID, RequestType: to.Ptr(armauthorization.RequestTypeSelfDeactivate)})
		},
	})
	c.Flags().StringVar(&role, "role", "", "role name or id")
	sf.add(c)
	_ = c.MarkFlagRequired("role")
	return c
}

// roleApprovalCommand is `role approval list|approve|deny`.
func (a *app) roleApprovalCommand() *cobra.Command {
	return group(&cobra.Command{Use: "approval", Short: "Review activation requests that need your approval"},
		a.roleApprovalListCommand(), a.roleApprovalReviewCommand("approve"), a.roleApprovalReviewCommand("deny"))
}

func (a *app) roleApprovalListCommand() *cobra.Command {
	var sf scopeFlags
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List the pending activation requests you may approve",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, scope, err := sf.open()
			if err != nil {
				return err
			}
			rc, err := armauthorization.NewRoleAssignmentScheduleRequestsClient(s.cred, s.armOptions())
			if err != nil {
				return fmt.Errorf("creating role activation client: %w", err)
			}
			list, err := collectPages(ctx, rc.NewListForScopePager(scope, &armauthorization.RoleAssignmentScheduleRequestsClientListForScopeOptions{Filter: to.Ptr("asApprover()")}),
				func(p armauthorization.RoleAssignmentScheduleRequestsClientListForScopeResponse) []*armauthorization.RoleAssignmentScheduleRequest {
					return p.Value
				}, nil, func(r *armauthorization.RoleAssignmentScheduleRequest) *armauthorization.RoleAssignmentScheduleRequest {
					return r
				})
			if err != nil {
				return notFoundOr(err, "scope", "listing requests to approve")
			}
			out, err := flatPIMList(list)
			if err != nil {
				return err
			}
			return a.print(out)
		},
	})
	sf.add(c)
	return c
}

func (a *app) roleApprovalReviewCommand(verb string) *cobra.Command {
	var id, justification string
	var sf scopeFlags
	short := "Approve an activation request: the role becomes active for the requested duration from now"
	if verb == "deny" {
		short = "Deny an activation request"
	}
	c := leaf(&cobra.Command{
		Use:   verb,
		Short: short,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := openSession()
			if err != nil {
				return err
			}
			path := "/" + strings.Trim(id, "/")
			if !strings.Contains(id, "/") {
				scope, err := sf.resolve(s)
				if err != nil {
					return err
				}
				path = strings.TrimRight(scope, "/") + "/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/" + id
			}
			ac, err := s.armClient()
			if err != nil {
				return err
			}
			req, err := runtime.NewRequest(ctx, http.MethodPost, runtime.JoinPaths(strings.TrimRight(s.armEndpoint(), "/"), path, verb))
			if err != nil {
				return fmt.Errorf("building the %s request: %w", verb, err)
			}
			req.Raw().URL.RawQuery = "api-version=" + pimAPIVersion
			if err := runtime.MarshalAsJSON(req, map[string]string{"justification": justification}); err != nil {
				return fmt.Errorf("building the %s request: %w", verb, err)
			}
			resp, err := ac.Pipeline().Do(req)
			if err != nil {
				return fmt.Errorf("sending the %s request: %w", verb, err)
			}
			if !runtime.HasStatusCode(resp, http.StatusOK) {
				return notFoundOr(runtime.NewResponseError(resp), "request", verb+" request")
			}
			var body armauthorization.RoleAssignmentScheduleRequest
			if err := runtime.UnmarshalAsJSON(resp, &body); err != nil {
				return fmt.Errorf("reading the answer: %w", err)
			}
			out, err := flatPIM(body)
			if err != nil {
				return err
			}
			return a.print(out)
		},
	})
	c.Flags().StringVar(&id, "id", "", "the request's id (from 'role approval list'), or its name with --scope")
	c.Flags().StringVar(&justification, "justification", "", "why you decided so")
	sf.add(c)
	_ = c.MarkFlagRequired("id")
	return c
}
