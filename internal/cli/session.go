package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// applicationID goes into the SDKs' User-Agent so server logs can tell the CLI apart.
const applicationID = "strongroom-cli"

// defaultARMAudience is the public cloud's ARM audience, which the server also uses.
const defaultARMAudience = "https://management.core.windows.net/"

// session is a logged-in profile plus the transport and credential built from it.
type session struct {
	profile *Profile
	hc      *http.Client
	cred    azcore.TokenCredential
}

// newSession builds the transport and credential for p.
func newSession(p *Profile) (*session, error) {
	hc, err := newHTTPClient([]byte(p.CAPEM))
	if err != nil {
		return nil, err
	}
	s := &session{profile: p, hc: hc}
	if p.UserName != "" {
		s.cred = cachedCredential{p: p, hc: hc}
		return s, nil
	}
	cred, err := azidentity.NewClientSecretCredential(p.TenantID, p.ClientID, p.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{
			ClientOptions: s.clientOptions(),
			// Without this MSAL asks login.microsoftonline.com to validate our authority.
			DisableInstanceDiscovery: true,
		})
	if err != nil {
		return nil, fmt.Errorf("creating credential: %w", err)
	}
	s.cred = cred
	return s, nil
}

// cachedCredential serves a user's login from the tokens login got (the password is not kept),
// and from the login's refresh token once they expire (usertokens.go).
type cachedCredential struct {
	p  *Profile
	hc *http.Client
}

func (c cachedCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	for _, want := range opts.Scopes {
		if t, ok := c.cached(want); ok {
			return azcore.AccessToken{Token: t.Token, ExpiresOn: t.ExpiresOn}, nil
		}
	}
	if len(opts.Scopes) == 1 && c.p.RefreshToken != "" {
		t, err := c.refreshToken(ctx, opts.Scopes[0])
		if err == nil {
			return azcore.AccessToken{Token: t.Token, ExpiresOn: t.ExpiresOn}, nil
		}
		return azcore.AccessToken{}, fmt.Errorf("the login of %s has expired (%v): run strongroom login again", c.p.UserName, err)
	}
	return azcore.AccessToken{}, fmt.Errorf("the login of %s has expired or does not cover %v: run strongroom login again", c.p.UserName, opts.Scopes)
}

// sameScope compares ".default" scopes, ignoring a trailing slash of the resource.
func sameScope(a, b string) bool {
	norm := func(s string) string {
		return strings.TrimRight(strings.TrimSuffix(strings.ToLower(s), "/.default"), "/")
	}
	return norm(a) == norm(b)
}

// openSession loads the profile and builds a session from it.
func openSession() (*session, error) {
	p, err := loadProfile()
	if err != nil {
		return nil, err
	}
	return newSession(p)
}

// authority returns the token issuer base URL with a trailing slash.
func (s *session) authority() string {
	a := s.profile.Authority
	if a == "" {
		a = s.profile.Server
	}
	return strings.TrimSuffix(a, "/") + "/"
}

// armEndpoint returns the ARM base URL without a trailing slash.
func (s *session) armEndpoint() string {
	e := s.profile.ResourceManager
	if e == "" {
		e = s.profile.Server
	}
	return strings.TrimSuffix(e, "/")
}

func (s *session) armAudience() string {
	if s.profile.ARMAudience != "" {
		return s.profile.ARMAudience
	}
	return defaultARMAudience
}

// clientOptions are the azcore options shared by the credential and the data-plane clients.
func (s *session) clientOptions() policy.ClientOptions {
	return policy.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.authority()},
		Transport: s.hc,
		Telemetry: policy.TelemetryOptions{ApplicationID: applicationID},
	}
}

// armOptions point the ARM SDK clients at the server's resource manager.
func (s *session) armOptions() *arm.ClientOptions {
	o := s.clientOptions()
	o.Cloud.Services = map[cloud.ServiceName]cloud.ServiceConfiguration{
		cloud.ResourceManager: {Endpoint: s.armEndpoint(), Audience: s.armAudience()},
	}
	// The server has no resource provider registration endpoint to call.
	return &arm.ClientOptions{ClientOptions: o, DisableRPRegistration: true}
}

func (s *session) groupsClient() (*armresources.ResourceGroupsClient, error) {
	c, err := armresources.NewResourceGroupsClient(s.profile.SubscriptionID, s.cred, s.armOptions())
	if err != nil {
		return nil, fmt.Errorf("creating resource groups client: %w", err)
	}
	return c, nil
}

func (s *session) vaultsClient() (*armkeyvault.VaultsClient, error) {
	c, err := armkeyvault.NewVaultsClient(s.profile.SubscriptionID, s.cred, s.armOptions())
	if err != nil {
		return nil, fmt.Errorf("creating vaults client: %w", err)
	}
	return c, nil
}

// armClient is the generic ARM pipeline, used for the subscription list (which has no SDK client
// among this module's dependencies).
func (s *session) armClient() (*arm.Client, error) {
	c, err := arm.NewClient("strongroom.cli", "v1.0.0", s.cred, s.armOptions())
	if err != nil {
		return nil, fmt.Errorf("creating arm client: %w", err)
	}
	return c, nil
}

// vaultURL builds https://{lowercase name}.{keyVaultDns}/ as az does from the cloud's suffix.
func (s *session) vaultURL(name string) string {
	return "https://" + strings.ToLower(name) + "." + strings.TrimPrefix(s.profile.KeyVaultDNS, ".") + "/"
}

// secretsClient returns a data-plane client for vaultURL. The server's challenge names
// https://vault.localhost:<port> as its resource, so the SDK's resource check stays on.
func (s *session) secretsClient(vaultURL string) (*azsecrets.Client, error) {
	c, err := azsecrets.NewClient(vaultURL, s.cred, &azsecrets.ClientOptions{ClientOptions: s.clientOptions()})
	if err != nil {
		return nil, fmt.Errorf("creating secrets client: %w", err)
	}
	return c, nil
}

// armToken gets an access token for ARM; login uses it to check the credentials.
func (s *session) armToken(ctx context.Context) (string, error) {
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{
		Scopes: []string{s.armAudience() + "/.default"},
	})
	if err != nil {
		return "", err
	}
	return tok.Token, nil
}

// callerObjectID returns the caller's object id from the oid claim of an ARM token: az asks
// Graph for it, which this server does not need to serve.
func (s *session) callerObjectID(ctx context.Context) (string, error) {
	tok, err := s.armToken(ctx)
	if err != nil {
		return "", err
	}
	oid, err := tokenClaim(tok, "oid")
	if err != nil {
		return "", fmt.Errorf("finding caller object id: %w", err)
	}
	return oid, nil
}

// tokenClaim decodes a JWT's payload (without verifying it: it is our own token) and returns the
// string claim name.
func tokenClaim(token, name string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", fmt.Errorf("decoding access token: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", fmt.Errorf("decoding access token: %w", err)
	}
	v, _ := claims[name].(string)
	if v == "" {
		return "", fmt.Errorf("access token has no %s claim", name)
	}
	return v, nil
}
