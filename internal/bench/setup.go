package bench

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// armScope is the Go ARM SDKs' scope: the audience plus "/.default" (the double slash is real).
const armScope = "https://management.core.windows.net//.default"

// Admin holds what the benchmark needs from the admin credentials file.
type Admin struct {
	TenantID       string
	SubscriptionID string
	ClientID       string
	ClientSecret   string
}

// adminKeys maps normalized JSON keys (lowercase, no '_' or '-') to Admin fields. The file is
// written by the server, so accept the common spellings rather than pin one.
var adminKeys = map[string]func(*Admin) *string{
	"tenantid":       func(a *Admin) *string { return &a.TenantID },
	"tenant":         func(a *Admin) *string { return &a.TenantID },
	"subscriptionid": func(a *Admin) *string { return &a.SubscriptionID },
	"subscription":   func(a *Admin) *string { return &a.SubscriptionID },
	"clientid":       func(a *Admin) *string { return &a.ClientID },
	"appid":          func(a *Admin) *string { return &a.ClientID },
	"applicationid":  func(a *Admin) *string { return &a.ClientID },
	"clientsecret":   func(a *Admin) *string { return &a.ClientSecret },
	"secret":         func(a *Admin) *string { return &a.ClientSecret },
	"password":       func(a *Admin) *string { return &a.ClientSecret },
}

// ParseAdmin reads the admin credentials from JSON. Keys may sit at any depth and use camelCase,
// snake_case or kebab-case; the first string value found for a field wins.
func ParseAdmin(data []byte) (Admin, error) {
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return Admin{}, fmt.Errorf("parsing admin file: %w", err)
	}
	var a Admin
	walkAdmin(doc, &a)
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"tenantId", a.TenantID}, {"subscriptionId", a.SubscriptionID},
		{"clientId", a.ClientID}, {"clientSecret", a.ClientSecret},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return Admin{}, fmt.Errorf("parsing admin file: missing %s", strings.Join(missing, ", "))
	}
	return a, nil
}

func walkAdmin(v any, a *Admin) {
	switch v := v.(type) {
	case map[string]any:
		// Sorted keys keep "first found wins" deterministic.
		for _, k := range slices.Sorted(maps.Keys(v)) {
			child := v[k]
			if s, ok := child.(string); ok {
				norm := strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(k))
				if field, ok := adminKeys[norm]; ok && *field(a) == "" {
					*field(a) = s
				}
				continue
			}
			walkAdmin(child, a)
		}
	case []any:
		for _, child := range v {
			walkAdmin(child, a)
		}
	}
}

func readAdmin(path string) (Admin, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Admin{}, fmt.Errorf("reading admin file: %w", err)
	}
	return ParseAdmin(data)
}

// prepare gets the tokens, makes sure the vault exists and returns the data-plane target.
func prepare(ctx context.Context, cfg Config, roots *x509.CertPool, admin Admin) (*target, error) {
	tr := newTransport(roots, false)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	progress(cfg, "getting tokens from %s", cfg.Server)
	armToken, err := fetchToken(ctx, hc, cfg.Server, admin, armScope)
	if err != nil {
		return nil, err
	}
	progress(cfg, "ensuring vault %s in resource group %s", cfg.Vault, cfg.ResourceGroup)
	if err := ensureVault(ctx, hc, cfg, admin, armToken); err != nil {
		return nil, err
	}
	reader := admin
	if cfg.Groups > 0 || cfg.Assignments > 0 {
		if reader, err = accessReader(ctx, hc, cfg, admin, armToken); err != nil {
			return nil, err
		}
	}
	dataToken, err := fetchToken(ctx, hc, cfg.Server, reader, cfg.Scope)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("parsing --server: %w", err)
	}
	return newTarget(cfg, u.Port(), dataToken)
}

// fetchToken runs the client-credentials flow against {server}/{tenant}/oauth2/v2.0/token.
func fetchToken(ctx context.Context, hc *http.Client, server string, a Admin, scope string) (string, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {a.ClientID},
		"client_secret": {a.ClientSecret},
		"scope":         {scope},
	}
	u := strings.TrimSuffix(server, "/") + "/" + url.PathEscape(a.TenantID) + "/oauth2/v2.0/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("requesting token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	body, err := do(hc, req, http.StatusOK)
	if err != nil {
		return "", fmt.Errorf("requesting token for %s: %w", scope, err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("requesting token for %s: no access_token in reply", scope)
	}
	return tok.AccessToken, nil
}

// ensureVault creates the resource group and the vault through ARM. A vault that already exists
// (200 or 409 VaultAlreadyExists) is fine.
func ensureVault(ctx context.Context, hc *http.Client, cfg Config, a Admin, armToken string) error {
	if err := ensureGroup(ctx, hc, cfg.Server, cfg.ResourceGroup, a, armToken); err != nil {
		return err
	}
	return createVault(ctx, hc, cfg.Server, cfg.ResourceGroup, cfg.Vault, a, armToken)
}

func armBase(server string, a Admin) string {
	return strings.TrimSuffix(server, "/") + "/subscriptions/" + url.PathEscape(a.SubscriptionID)
}

// ensureGroup creates (or updates) the resource group rg.
func ensureGroup(ctx context.Context, hc *http.Client, server, rg string, a Admin, armToken string) error {
	u := armBase(server, a) + "/resourcegroups/" + url.PathEscape(rg) + "?api-version=2021-04-01"
	if _, err := armPut(ctx, hc, u, armToken, map[string]any{"location": "eastus"}); err != nil {
		return fmt.Errorf("creating resource group %s: %w", rg, err)
	}
	return nil
}

// createVault creates vault name in rg; one that already exists (200 or 409) is fine.
func createVault(ctx context.Context, hc *http.Client, server, rg, name string, a Admin, armToken string) error {
	vault := armBase(server, a) + "/resourceGroups/" + url.PathEscape(rg) +
		"/providers/Microsoft.KeyVault/vaults/" + url.PathEscape(name) + "?api-version=2023-07-01"
	body := map[string]any{
		"location": "eastus",
		"properties": map[string]any{
			"tenantId":       a.TenantID,
			"sku":            map[string]string{"family": "A", "name": "standard"},
			"accessPolicies": []any{},
			// Before api-version 2026-02-01 a vault naming no model uses access policies.
			"enableRbacAuthorization": true,
		},
	}
	status, err := armPut(ctx, hc, vault, armToken, body)
	if err != nil && status != http.StatusConflict {
		return fmt.Errorf("creating vault %s: %w", name, err)
	}
	return nil
}

// armPut sends a JSON PUT and returns the status; err is set for any non-2xx reply.
func armPut(ctx context.Context, hc *http.Client, u, token string, v any) (int, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, statusError(resp.StatusCode, reply)
	}
	return resp.StatusCode, nil
}

// do sends req and returns the body when the status is want.
func do(hc *http.Client, req *http.Request, want int) ([]byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading reply: %w", err)
	}
	if resp.StatusCode != want {
		return nil, statusError(resp.StatusCode, body)
	}
	return body, nil
}

// statusError describes an unexpected reply, using the Azure or OAuth2 error body when present.
func statusError(status int, body []byte) error {
	var azure struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &azure) == nil && azure.Error.Code != "" {
		return fmt.Errorf("status %d: %s: %s", status, azure.Error.Code, azure.Error.Message)
	}
	var oauth struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &oauth) == nil && oauth.Error != "" {
		return fmt.Errorf("status %d: %s: %s", status, oauth.Error, oauth.Description)
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200]
	}
	if text == "" {
		return fmt.Errorf("status %d", status)
	}
	return fmt.Errorf("status %d: %s", status, text)
}
