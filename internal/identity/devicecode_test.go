package identity_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
)

const azClient = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

func newUser(t *testing.T, s *identity.Service, upn string) identity.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), identity.UserInput{UserPrincipalName: upn, DisplayName: "D", Password: "Passw0rd!!", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestDeviceCode_Lifecycle(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	e := newEnv(t)
	s := e.service(t, identity.Options{Now: clk.Now}, false)
	other := e.service(t, identity.Options{Now: clk.Now}, false) // another node: the flow is in the store
	u := newUser(t, s, "dev@contoso.com")

	dc, err := s.StartDeviceCode(ctx, "organizations", azClient, vaultAudience+"/.default offline_access", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(dc.UserCode) != 9 || dc.Interval != 5 || dc.ExpiresIn != 900 {
		t.Fatalf("device code %+v", dc)
	}
	if _, err := s.PollDeviceCode(ctx, "", azClient, dc.DeviceCode); !errors.Is(err, identity.ErrAuthorizationPending) {
		t.Fatalf("poll before sign-in: %v", err)
	}
	if _, err := s.PollDeviceCode(ctx, "", "11111111-1111-1111-1111-111111111111", dc.DeviceCode); !errors.Is(err, identity.ErrBadVerificationCode) {
		t.Fatalf("another client's poll: %v", err)
	}
	sign := func(code, password string, approve bool) error {
		return other.CompleteDeviceCode(ctx, identity.DeviceSignIn{UserCode: code, Username: "dev@contoso.com", Password: password, Approve: approve})
	}
	if err := sign("AAAAAAAAA", "Passw0rd!!", true); !errors.Is(err, identity.ErrBadVerificationCode) {
		t.Fatalf("unknown user code: %v", err)
	}
	if err := sign(dc.UserCode, "wrong", true); !errors.Is(err, identity.ErrInvalidGrant) {
		t.Fatalf("wrong password: %v", err)
	}
	formatted := strings.ToLower(dc.UserCode[:4] + "-" + dc.UserCode[4:])
	if err := sign(formatted, "Passw0rd!!", true); err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	if err := sign(dc.UserCode, "Passw0rd!!", true); !errors.Is(err, identity.ErrBadVerificationCode) {
		t.Fatalf("second sign-in for one code: %v", err)
	}
	clk.Advance(identity.DevicePollInterval)
	tok, err := other.PollDeviceCode(ctx, "", azClient, dc.DeviceCode)
	if err != nil {
		t.Fatalf("poll after sign-in: %v", err)
	}
	c, err := s.Verify(ctx, tok.AccessToken, []string{vaultAudience})
	if err != nil || c.Principal.ObjectID != u.ID || c.IdentityType != "user" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	clk.Advance(identity.DevicePollInterval)
	if _, err := s.PollDeviceCode(ctx, "", azClient, dc.DeviceCode); !errors.Is(err, identity.ErrExpiredToken) {
		t.Fatalf("the used code: %v", err)
	}

	// Expiry.
	dc2, err := s.StartDeviceCode(ctx, "", azClient, vaultAudience+"/.default", "")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(16 * time.Minute)
	if err := sign(dc2.UserCode, "Passw0rd!!", true); !errors.Is(err, identity.ErrExpiredToken) {
		t.Fatalf("sign-in after expiry: %v", err)
	}
	if _, err := s.PollDeviceCode(ctx, "", azClient, dc2.DeviceCode); !errors.Is(err, identity.ErrExpiredToken) {
		t.Fatalf("poll after expiry: %v", err)
	}

	// A disabled user signs in to nothing.
	dc3, _ := s.StartDeviceCode(ctx, "", azClient, vaultAudience+"/.default", "")
	if _, err := s.SetUserEnabled(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := sign(dc3.UserCode, "Passw0rd!!", true); !errors.Is(err, identity.ErrUserDisabled) {
		t.Fatalf("disabled user: %v", err)
	}
	// Bad requests.
	if _, err := s.StartDeviceCode(ctx, "", "nope", vaultAudience+"/.default", ""); !errors.Is(err, identity.ErrUnknownClient) {
		t.Fatalf("malformed client: %v", err)
	}
	if _, err := s.StartDeviceCode(ctx, "", azClient, "https://storage.azure.com/.default", ""); !errors.Is(err, identity.ErrUnknownResource) {
		t.Fatalf("unserved resource: %v", err)
	}
}

func TestDeviceCode_StartsLimitedPerSource(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	var err error
	for i := 0; i < 40 && err == nil; i++ {
		_, err = s.StartDeviceCode(ctx, "", azClient, vaultAudience+"/.default", "198.51.100.7")
	}
	if !errors.Is(err, identity.ErrLockedOut) {
		t.Fatalf("40 starts from one address: %v, want a lockout", err)
	}
	if _, err := s.StartDeviceCode(ctx, "", azClient, vaultAudience+"/.default", "203.0.113.9"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestAuthCode_ExpiryAndSingleUse(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	newUser(t, s, "p@contoso.com")
	app, err := s.CreateApplication(ctx, "portal")
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "https://portal.localhost/cb"
	if err := s.SetRedirectURIs(ctx, app.AppID, []string{redirect}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RedirectURIs(ctx, app.ID); err != nil || len(got) != 1 || got[0] != redirect {
		t.Fatalf("RedirectURIs = %v, %v", got, err)
	}
	verifier := strings.Repeat("a", 43)
	sum := sha256.Sum256([]byte(verifier))
	req := identity.AuthorizeRequest{ClientID: app.AppID, RedirectURI: redirect, Scope: vaultAudience + "/.default", ResponseType: "code",
		CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), CodeChallengeMethod: "S256"}
	for name, bad := range map[string]func(r *identity.AuthorizeRequest){
		"unregistered redirect": func(r *identity.AuthorizeRequest) { r.RedirectURI = "https://portal.localhost/cb2" },
		"unknown client":        func(r *identity.AuthorizeRequest) { r.ClientID = azClient },
	} {
		r := req
		bad(&r)
		if err := s.CheckAuthorizeRequest(ctx, r); !errors.Is(err, identity.ErrRedirectURIMismatch) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, bad := range map[string]func(r *identity.AuthorizeRequest){
		"plain":        func(r *identity.AuthorizeRequest) { r.CodeChallengeMethod = "plain" },
		"no challenge": func(r *identity.AuthorizeRequest) { r.CodeChallenge = "" },
		"token":        func(r *identity.AuthorizeRequest) { r.ResponseType = "token" },
	} {
		r := req
		bad(&r)
		if err := s.CheckAuthorizeRequest(ctx, r); !errors.Is(err, identity.ErrInvalidAuthRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	code, err := s.IssueAuthCode(ctx, req, "p@contoso.com", "Passw0rd!!", "")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(11 * time.Minute)
	if _, err := s.RedeemAuthCode(ctx, "", app.AppID, code, redirect, verifier); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("expired code: %v", err)
	}
	code, _ = s.IssueAuthCode(ctx, req, "p@contoso.com", "Passw0rd!!", "")
	if _, err := s.RedeemAuthCode(ctx, "", azClient, code, redirect, verifier); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("another client: %v", err)
	}
	if _, err := s.RedeemAuthCode(ctx, "", app.AppID, code, redirect, verifier); err != nil {
		t.Fatalf("the right client, after another client tried: %v", err)
	}
	if _, err := s.IssueAuthCode(ctx, req, "p@contoso.com", "bad", ""); !errors.Is(err, identity.ErrInvalidGrant) {
		t.Fatalf("wrong password: %v", err)
	}
}
