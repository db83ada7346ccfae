package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

// az ad app and az ad sp.

func (a *app) adAppCommand() *cobra.Command {
	cred := group(&cobra.Command{Use: "credential", Short: "Manage an application's client secrets"}, a.adAppCredentialResetCommand())
	return group(&cobra.Command{Use: "app", Short: "Manage applications"},
		a.adAppCreateCommand(), a.adAppListCommand(), a.adAppShowCommand(), a.adAppDeleteCommand(), cred)
}

func (a *app) adAppCreateCommand() *cobra.Command {
	var name string
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create an application",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			var out map[string]any
			if err := g.do(cmd.Context(), http.MethodPost, "/v1.0/applications", map[string]any{"displayName": name}, &out); err != nil {
				return fmt.Errorf("creating application: %w", err)
			}
			return a.print(out)
		},
	})
	c.Flags().StringVar(&name, "display-name", "", "the display name of the application")
	_ = c.MarkFlagRequired("display-name")
	return c
}

func (a *app) adAppListCommand() *cobra.Command {
	var lf listFlags
	var appID, identifierURI string
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List applications",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if identifierURI != "" {
				return usageErrorf("--identifier-uri is not supported: applications have no identifier URIs here")
			}
			f, err := singleFilter(lf.filter, startsWithClause("displayName", lf.displayName), eqClause("appId", appID))
			if err != nil {
				return err
			}
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			apps, err := g.list(cmd.Context(), filterPath("/v1.0/applications", f))
			if err != nil {
				return fmt.Errorf("listing applications: %w", err)
			}
			return a.print(apps)
		},
	})
	lf.add(c)
	c.Flags().StringVar(&appID, "app-id", "", "application id")
	c.Flags().StringVar(&identifierURI, "identifier-uri", "", "graph application identifier, must be in uri format")
	return c
}

func (a *app) adAppShowCommand() *cobra.Command {
	var id string
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show an application by its application id or object id",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			var out map[string]any
			if err := g.do(cmd.Context(), http.MethodGet, "/v1.0/applications/"+url.PathEscape(id), nil, &out); err != nil {
				return fmt.Errorf("showing application: %w", err)
			}
			return a.print(out)
		},
	})
	c.Flags().StringVar(&id, "id", "", "identifier uri, application id, or object id")
	_ = c.MarkFlagRequired("id")
	return c
}

func (a *app) adAppDeleteCommand() *cobra.Command {
	var id string
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete an application (and its service principal)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			if err := g.do(cmd.Context(), http.MethodDelete, "/v1.0/applications/"+url.PathEscape(id), nil, nil); err != nil {
				return fmt.Errorf("deleting application: %w", err)
			}
			return nil
		},
	})
	c.Flags().StringVar(&id, "id", "", "identifier uri, application id, or object id")
	_ = c.MarkFlagRequired("id")
	return c
}

// credentialFlags are az's lifetime flags of a new client secret.
type credentialFlags struct {
	years       int
	endDate     string
	displayName string
}

func (f *credentialFlags) add(c *cobra.Command) {
	c.Flags().IntVar(&f.years, "years", 1, "number of years for which the credentials will be valid")
	c.Flags().StringVar(&f.endDate, "end-date", "", "UTC date time the credential ends, e.g. 2027-12-31T11:59:59+00:00 or 2027-12-31")
	c.Flags().StringVar(&f.displayName, "display-name", "", "a friendly name for the credential")
}

func (f *credentialFlags) passwordCredential(now time.Time) (map[string]any, error) {
	end := now.AddDate(f.years, 0, 0)
	if f.years <= 0 {
		return nil, usageErrorf("--years must be a positive number")
	}
	if f.endDate != "" {
		t, err := time.Parse(time.RFC3339, f.endDate)
		if err != nil {
			if t, err = time.Parse("2006-01-02", f.endDate); err != nil {
				return nil, usageErrorf("invalid --end-date %q: use an ISO 8601 date or date time", f.endDate)
			}
		}
		end = t
	}
	pc := map[string]any{"endDateTime": end.UTC().Format(time.RFC3339)}
	if f.displayName != "" {
		pc["displayName"] = f.displayName
	}
	return map[string]any{"passwordCredential": pc}, nil
}

// credentialOut is az's answer to credential reset and create-for-rbac.
type credentialOut struct {
	AppID       string `json:"appId"`
	DisplayName string `json:"displayName,omitempty"`
	Password    string `json:"password"`
	Tenant      string `json:"tenant"`
}

func (a *app) adAppCredentialResetCommand() *cobra.Command {
	var id string
	var appendCred bool
	var cf credentialFlags
	c := leaf(&cobra.Command{
		Use:   "reset",
		Short: "Reset an application's password (client secret); with --append, add one",
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := cf.passwordCredential(time.Now())
			if err != nil {
				return err
			}
			s, g, err := openGraph()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var app map[string]any
			if err := g.do(ctx, http.MethodGet, "/v1.0/applications/"+url.PathEscape(id), nil, &app); err != nil {
				return fmt.Errorf("resetting credential: %w", err)
			}
			objID := str(app, "id")
			var old []string
			if pcs, ok := app["passwordCredentials"].([]any); ok && !appendCred {
				for _, pc := range pcs {
					if m, ok := pc.(map[string]any); ok {
						old = append(old, str(m, "keyId"))
					}
				}
			}
			// An application holds two secrets at most: without --append, make room first.
			if len(old) >= 2 {
				if err := g.do(ctx, http.MethodPost, "/v1.0/applications/"+objID+"/removePassword", map[string]any{"keyId": old[0]}, nil); err != nil {
					return fmt.Errorf("resetting credential: %w", err)
				}
				old = old[1:]
			}
			var pw map[string]any
			if err := g.do(ctx, http.MethodPost, "/v1.0/applications/"+objID+"/addPassword", body, &pw); err != nil {
				return fmt.Errorf("resetting credential: %w", err)
			}
			for _, k := range old {
				if err := g.do(ctx, http.MethodPost, "/v1.0/applications/"+objID+"/removePassword", map[string]any{"keyId": k}, nil); err != nil {
					return fmt.Errorf("removing the old credential %s: %w", k, err)
				}
			}
			return a.print(credentialOut{AppID: str(app, "appId"), Password: str(pw, "secretText"), Tenant: s.profile.TenantID})
		},
	})
	c.Flags().StringVar(&id, "id", "", "identifier uri, application id, or object id")
	c.Flags().BoolVar(&appendCred, "append", false, "append the new credential instead of overwriting")
	cf.add(c)
	_ = c.MarkFlagRequired("id")
	return c
}

func (a *app) adSPCommand() *cobra.Command {
	return group(&cobra.Command{Use: "sp", Short: "Manage service principals"},
		a.adSPCreateCommand(), a.adSPCreateForRBACCommand(), a.adSPListCommand(), a.adSPShowCommand(), a.adSPDeleteCommand())
}

func (a *app) adSPCreateCommand() *cobra.Command {
	var id string
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create a service principal for an application",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			appID, err := g.appIDOf(cmd.Context(), id)
			if err != nil {
				return fmt.Errorf("creating service principal: %w", err)
			}
			var out map[string]any
			if err := g.do(cmd.Context(), http.MethodPost, "/v1.0/servicePrincipals", map[string]any{"appId": appID}, &out); err != nil {
				return fmt.Errorf("creating service principal: %w", err)
			}
			return a.print(out)
		},
	})
	c.Flags().StringVar(&id, "id", "", "identifier uri, application id, or object id of the associated application")
	_ = c.MarkFlagRequired("id")
	return c
}

// appIDOf turns an application's object id or appId into its appId.
func (g *restClient) appIDOf(ctx context.Context, id string) (string, error) {
	var app map[string]any
	if err := g.do(ctx, http.MethodGet, "/v1.0/applications/"+url.PathEscape(id), nil, &app); err != nil {
		return "", err
	}
	return str(app, "appId"), nil
}

func (a *app) adSPCreateForRBACCommand() *cobra.Command {
	var name, role string
	var scopes []string
	var years int
	c := leaf(&cobra.Command{
		Use:   "create-for-rbac",
		Short: "Create an application, its service principal and a password; optionally assign it a role",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (role == "") != (len(scopes) == 0) {
				return usageErrorf("usage error: To create role assignments, specify both --role and --scopes.")
			}
			if years <= 0 {
				return usageErrorf("--years must be a positive number")
			}
			if name == "" {
				name = "azure-cli-" + time.Now().UTC().Format("2006-01-02-15-04-05")
			}
			s, g, err := openGraph()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var app, pw, sp map[string]any
			if err := g.do(ctx, http.MethodPost, "/v1.0/applications", map[string]any{"displayName": name}, &app); err != nil {
				return fmt.Errorf("creating application: %w", err)
			}
			end := time.Now().AddDate(years, 0, 0).UTC().Format(time.RFC3339)
			if err := g.do(ctx, http.MethodPost, "/v1.0/applications/"+str(app, "id")+"/addPassword",
				map[string]any{"passwordCredential": map[string]any{"displayName": "rbac", "endDateTime": end}}, &pw); err != nil {
				return fmt.Errorf("creating password: %w", err)
			}
			if err := g.do(ctx, http.MethodPost, "/v1.0/servicePrincipals", map[string]any{"appId": str(app, "appId")}, &sp); err != nil {
				return fmt.Errorf("creating service principal: %w", err)
			}
			for _, scope := range strings.Fields(strings.Join(scopes, " ")) {
				if err := assignRoleToServicePrincipal(ctx, s, role, scope, str(sp, "id")); err != nil {
					return fmt.Errorf("creating role assignment (the application %s and its service principal exist): %w", str(app, "appId"), err)
				}
			}
			return a.print(credentialOut{AppID: str(app, "appId"), DisplayName: name, Password: str(pw, "secretText"), Tenant: s.profile.TenantID})
		},
	})
	f := c.Flags()
	f.StringVarP(&name, "name", "n", "", "display name of the service principal")
	f.StringVar(&role, "role", "", "role of the service principal: a role name or role definition id")
	f.StringArrayVar(&scopes, "scopes", nil, "space-separated scopes the role assignment applies to, e.g. a vault's resource id")
	f.IntVar(&years, "years", 1, "number of years for which the credentials will be valid")
	return c
}

// assignRoleToServicePrincipal gives the service principal spID the role (a name or a role
// definition id) at scope through ARM's Microsoft.Authorization API, as az does: the role name
// is resolved by GET {scope}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName
// eq '<name>', then PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{new guid}.
func assignRoleToServicePrincipal(ctx context.Context, s *session, role, scope, spID string) error {
	c, err := s.armClient()
	if err != nil {
		return err
	}
	scope = "/" + strings.Trim(scope, "/")
	base := strings.TrimSuffix(c.Endpoint(), "/") + scope + "/providers/Microsoft.Authorization"
	const av = "api-version=2022-04-01"
	defID := ""
	switch {
	case isGUID(role):
		defID = "/providers/Microsoft.Authorization/roleDefinitions/" + strings.ToLower(role)
	case strings.Contains(strings.ToLower(role), "/providers/microsoft.authorization/roledefinitions/"):
		defID = role
	default:
		req, err := runtime.NewRequest(ctx, http.MethodGet, base+"/roleDefinitions?$filter="+url.QueryEscape("roleName eq "+odataQuote(role))+"&"+av)
		if err != nil {
			return err
		}
		resp, err := c.Pipeline().Do(req)
		if err != nil {
			return err
		}
		if !runtime.HasStatusCode(resp, http.StatusOK) {
			return runtime.NewResponseError(resp)
		}
		var page struct {
			Value []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"value"`
		}
		if err := runtime.UnmarshalAsJSON(resp, &page); err != nil {
			return err
		}
		if len(page.Value) != 1 {
			return &notFoundError{msg: fmt.Sprintf("Role '%s' doesn't exist.", role)}
		}
		defID = "/providers/Microsoft.Authorization/roleDefinitions/" + page.Value[0].Name
	}
	req, err := runtime.NewRequest(ctx, http.MethodPut, base+"/roleAssignments/"+uuid.NewString()+"?"+av)
	if err != nil {
		return err
	}
	body := map[string]any{"properties": map[string]any{"roleDefinitionId": defID, "principalId": spID, "principalType": "ServicePrincipal"}}
	if err := runtime.MarshalAsJSON(req, body); err != nil {
		return err
	}
	resp, err := c.Pipeline().Do(req)
	if err != nil {
		return err
	}
	if !runtime.HasStatusCode(resp, http.StatusOK, http.StatusCreated) {
		return runtime.NewResponseError(resp)
	}
	return nil
}

func (a *app) adSPListCommand() *cobra.Command {
	var lf listFlags
	var spn string
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List service principals",
		RunE: func(cmd *cobra.Command, _ []string) error {
			spnClause := ""
			if spn != "" {
				spnClause = "servicePrincipalNames/any(c:c eq " + odataQuote(spn) + ")"
			}
			f, err := singleFilter(lf.filter, startsWithClause("displayName", lf.displayName), spnClause)
			if err != nil {
				return err
			}
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			sps, err := g.list(cmd.Context(), filterPath("/v1.0/servicePrincipals", f))
			if err != nil {
				return fmt.Errorf("listing service principals: %w", err)
			}
			return a.print(sps)
		},
	})
	lf.add(c)
	c.Flags().StringVar(&spn, "spn", "", "service principal name (its application id)")
	return c
}

// spPath is the Graph path of the service principal named by its object id or its appId, as az's
// --id accepts either.
func (g *restClient) spPath(ctx context.Context, id string) (string, error) {
	var out map[string]any
	err := g.do(ctx, http.MethodGet, "/v1.0/servicePrincipals/"+url.PathEscape(id), nil, &out)
	if err != nil {
		return "", err
	}
	return "/v1.0/servicePrincipals/" + str(out, "id"), nil
}

func (a *app) adSPShowCommand() *cobra.Command {
	var id string
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show a service principal by its application id or object id",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			var out map[string]any
			if err := g.do(cmd.Context(), http.MethodGet, "/v1.0/servicePrincipals/"+url.PathEscape(id), nil, &out); err != nil {
				return fmt.Errorf("showing service principal: %w", err)
			}
			return a.print(out)
		},
	})
	c.Flags().StringVar(&id, "id", "", "service principal name (application id), or object id")
	_ = c.MarkFlagRequired("id")
	return c
}

func (a *app) adSPDeleteCommand() *cobra.Command {
	var id string
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete a service principal (its application stays)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, g, err := openGraph()
			if err != nil {
				return err
			}
			p, err := g.spPath(cmd.Context(), id)
			if err != nil {
				return fmt.Errorf("deleting service principal: %w", err)
			}
			if err := g.do(cmd.Context(), http.MethodDelete, p, nil, nil); err != nil {
				return fmt.Errorf("deleting service principal: %w", err)
			}
			return nil
		},
	})
	c.Flags().StringVar(&id, "id", "", "service principal name (application id), or object id")
	_ = c.MarkFlagRequired("id")
	return c
}
