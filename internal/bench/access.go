package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/google/uuid"
)

// Built-in role GUIDs the access load assigns (Azure's ids).
const (
	roleSecretsOfficer = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	roleSecretsUser    = "4633458b-17de-408a-b874-0445c86b69e6"
	roleKeyVaultReader = "21090545-7ca7-4776-b22c-e363652d74d2"
)

// nestedDepth is how deep the benchmark's reader sits in nested groups.
const nestedDepth = 10

// populateAccess builds the access-control load of Config.Groups and Config.Assignments: that
// many directory groups, the first nestedDepth nested in a chain, and that many role
// assignments spread over the groups at secret scopes of the vault; and a reader application
// that is a member of the innermost group only, whose access (Key Vault Secrets Officer on the
// vault) comes through the outermost one. It returns the reader's credentials, which the run
// uses instead of the admin's, so every request is decided through nestedDepth groups.
func populateAccess(ctx context.Context, hc *http.Client, cfg Config, a Admin, armToken string) (Admin, error) {
	origin := strings.TrimSuffix(cfg.Server, "/")
	graphToken, err := fetchToken(ctx, hc, cfg.Server, a, origin+"/.default")
	if err != nil {
		return Admin{}, err
	}
	groups := make([]string, max(cfg.Groups, nestedDepth))
	progress(cfg, "creating %d directory groups", len(groups))
	for i := range groups {
		var g struct {
			ID string `json:"id"`
		}
		nick := fmt.Sprintf("bench-%s-%d", cfg.Vault, i)
		if err := graphPost(ctx, hc, origin+"/v1.0/groups", graphToken,
			map[string]any{"displayName": nick, "mailNickname": nick, "securityEnabled": true, "mailEnabled": false}, &g); err != nil {
			return Admin{}, fmt.Errorf("creating group %d: %w", i, err)
		}
		groups[i] = g.ID
	}
	for i := 0; i+1 < nestedDepth; i++ { // groups[i] is a member of groups[i+1]
		if err := addMember(ctx, hc, origin, graphToken, groups[i+1], groups[i]); err != nil {
			return Admin{}, err
		}
	}
	reader, err := createReader(ctx, hc, origin, armToken, a)
	if err != nil {
		return Admin{}, err
	}
	if err := addMember(ctx, hc, origin, graphToken, groups[0], reader.objectID); err != nil {
		return Admin{}, err
	}
	vault := armBase(cfg.Server, a) + "/resourceGroups/" + url.PathEscape(cfg.ResourceGroup) + "/providers/Microsoft.KeyVault/vaults/" + url.PathEscape(cfg.Vault)
	if err := assignRole(ctx, hc, vault, armToken, a, roleSecretsOfficer, groups[nestedDepth-1]); err != nil {
		return Admin{}, err
	}
	progress(cfg, "creating %d role assignments", cfg.Assignments)
	roles := []string{roleSecretsUser, roleKeyVaultReader, roleSecretsOfficer}
	for i := 1; i < cfg.Assignments; i++ {
		scope := fmt.Sprintf("%s/secrets/access-%d", vault, i)
		if err := assignRole(ctx, hc, scope, armToken, a, roles[i%len(roles)], groups[i%len(groups)]); err != nil {
			return Admin{}, err
		}
	}
	return Admin{TenantID: a.TenantID, SubscriptionID: a.SubscriptionID, ClientID: reader.appID, ClientSecret: reader.secret}, nil
}

// accessReader returns the reader of the access-control load, building the load unless
// Config.ReaderFile already names one.
func accessReader(ctx context.Context, hc *http.Client, cfg Config, a Admin, armToken string) (Admin, error) {
	if cfg.ReaderFile != "" {
		if r, err := readAdmin(cfg.ReaderFile); err == nil {
			return r, nil
		}
	}
	r, err := populateAccess(ctx, hc, cfg, a, armToken)
	if err != nil || cfg.ReaderFile == "" {
		return r, err
	}
	b, err := json.Marshal(map[string]string{"tenantId": r.TenantID, "subscriptionId": r.SubscriptionID, "clientId": r.ClientID, "clientSecret": r.ClientSecret})
	if err != nil {
		return Admin{}, err
	}
	if err := os.WriteFile(cfg.ReaderFile, b, 0o600); err != nil {
		return Admin{}, fmt.Errorf("writing the reader file: %w", err)
	}
	return r, nil
}

type readerApp struct{ objectID, appID, secret string }

// createReader makes the service principal the run reads as (POST /sys/principals).
func createReader(ctx context.Context, hc *http.Client, origin, armToken string, a Admin) (readerApp, error) {
	var p struct {
		ObjectID     string `json:"objectId"`
		AppID        string `json:"appId"`
		ClientSecret string `json:"clientSecret"`
	}
	err := postJSON(ctx, hc, origin+"/sys/principals", armToken, map[string]any{"displayName": "bench-reader"}, http.StatusCreated, &p)
	if err != nil {
		return readerApp{}, fmt.Errorf("creating the reader: %w", err)
	}
	return readerApp{p.ObjectID, p.AppID, p.ClientSecret}, nil
}

func addMember(ctx context.Context, hc *http.Client, origin, token, group, member string) error {
	err := postJSON(ctx, hc, origin+"/v1.0/groups/"+group+"/members/$ref", token,
		map[string]any{"@odata.id": origin + "/v1.0/directoryObjects/" + member}, http.StatusNoContent, nil)
	if err != nil {
		return fmt.Errorf("adding %s to group %s: %w", member, group, err)
	}
	return nil
}

func assignRole(ctx context.Context, hc *http.Client, scope, armToken string, a Admin, role, principal string) error {
	u := scope + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString() + "?api-version=2022-04-01"
	_, err := armPut(ctx, hc, u, armToken, map[string]any{"properties": map[string]any{
		"roleDefinitionId": "/subscriptions/" + a.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
		"principalId":      principal, "principalType": "Group"}})
	if err != nil {
		return fmt.Errorf("assigning role %s to %s at %s: %w", role, principal, scope, err)
	}
	return nil
}

func graphPost(ctx context.Context, hc *http.Client, u, token string, body, out any) error {
	return postJSON(ctx, hc, u, token, body, http.StatusCreated, out)
}

// postJSON POSTs body as JSON and decodes the reply into out (when not nil) if the status is want.
func postJSON(ctx context.Context, hc *http.Client, u, token string, body any, want int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	reply, err := do(hc, req, want)
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(reply, out)
}
