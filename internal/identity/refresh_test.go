package identity_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

const (
	armScope     = "https://management.azure.com/.default"
	offlineScope = " openid profile offline_access" // what MSAL adds to every user request
)

// signIn runs the password grant for upn with offline_access and returns the tokens.
func signIn(t *testing.T, s *identity.Service, client, upn, scope string) identity.Token {
	t.Helper()
	tok, err := s.PasswordToken(context.Background(), identity.PasswordRequest{ClientID: client, Username: upn,
		Password: "Passw0rd!!", Scope: scope})
	if err != nil {
		t.Fatalf("password grant: %v", err)
	}
	return tok
}

func redeem(s *identity.Service, client, rt, scope string) (identity.Token, error) {
	return s.RedeemRefreshToken(context.Background(), identity.RefreshRequest{Tenant: "organizations", ClientID: client,
		RefreshToken: rt, Scope: scope})
}

// countKeys counts the store's keys under prefix.
func countKeys(t *testing.T, st store.Store, prefix string) int {
	t.Helper()
	n := 0
	if err := st.Scan(context.Background(), prefix, "", func(string, []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

// A refresh token comes only with offline_access, redeems for another resource on another
// node, rotates, and a rotated token presented again revokes the whole family.
func TestRefresh_RotationReuseAndMultiResource(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.service(t, identity.Options{}, false)
	other := e.service(t, identity.Options{}, false) // another node over the same store
	u := newUser(t, s, "rt@contoso.com")
	if err := other.KeysApplied(ctx, []string{keyring.RingKey}); err != nil { // as replication would
		t.Fatal(err)
	}

	if tok := signIn(t, s, azClient, "rt@contoso.com", vaultScope); tok.RefreshToken != "" || tok.IDToken != "" {
		t.Fatalf("refresh or id token without offline_access/openid: %+v", tok)
	}
	tok := signIn(t, s, azClient, "rt@contoso.com", vaultScope+offlineScope)
	raw, err := base64.RawURLEncoding.DecodeString(tok.RefreshToken)
	if err != nil || len(raw) < 32+16 {
		t.Fatalf("refresh token %d bytes (%v): want an opaque base64url value with 256 random bits", len(raw), err)
	}
	id := decodeClaims(t, tok.IDToken)
	if id["aud"] != azClient || id["oid"] != u.ID || id["preferred_username"] != "rt@contoso.com" || id["tid"] != s.TenantID() {
		t.Fatalf("id token claims %v", id)
	}
	if _, err := s.Verify(ctx, tok.IDToken, []string{azClient}); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("an id token verified as an access token: %v", err)
	}
	// The token's hash is stored, never the token.
	found := false
	_ = e.st.Scan(ctx, "", "", func(k string, v []byte) bool {
		found = found || strings.Contains(k+string(v), tok.RefreshToken)
		return true
	})
	if found {
		t.Fatal("the refresh token is in the store")
	}

	arm, err := redeem(other, azClient, tok.RefreshToken, armScope+offlineScope)
	if err != nil {
		t.Fatalf("redeem for ARM on another node: %v", err)
	}
	c, err := other.Verify(ctx, arm.AccessToken, []string{"https://management.azure.com"})
	if err != nil || c.Principal.ObjectID != u.ID {
		t.Fatalf("ARM token from a refresh token: %+v, %v", c, err)
	}
	if arm.RefreshToken == "" || arm.RefreshToken == tok.RefreshToken || arm.IDToken == "" {
		t.Fatal("redemption did not rotate the refresh token (or dropped the id token)")
	}
	// No scope: the sign-in's resource.
	vault, err := redeem(s, azClient, arm.RefreshToken, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, vault.AccessToken, vaultAudiences); err != nil {
		t.Fatalf("default resource: %v", err)
	}
	if _, err := redeem(s, azClient, vault.RefreshToken, "https://evil.example/.default"); !errors.Is(err, identity.ErrUnknownResource) {
		t.Fatalf("unserved resource: %v", err)
	}
	if _, err := redeem(s, "11111111-1111-1111-1111-111111111111", vault.RefreshToken, vaultScope); !errors.Is(err, identity.ErrRefreshTokenClient) {
		t.Fatalf("another client: %v", err)
	}
	// A forged token of a known family (right family id, other secret) is refused and revokes nothing.
	forged := make([]byte, len(raw))
	copy(forged, raw)
	forged[len(forged)-1] ^= 1
	if _, err := redeem(s, azClient, base64.RawURLEncoding.EncodeToString(forged), vaultScope); !errors.Is(err, identity.ErrInvalidRefreshToken) ||
		errors.Is(err, identity.ErrRefreshTokenReused) {
		t.Fatalf("forged token: %v", err)
	}
	if _, err := redeem(s, azClient, "not-a-refresh-token", vaultScope); !errors.Is(err, identity.ErrMalformedRefreshToken) {
		t.Fatalf("malformed: %v", err)
	}

	// Reuse of the first (rotated) token: refused, and the family's current token dies too.
	if _, err := redeem(s, azClient, tok.RefreshToken, vaultScope); !errors.Is(err, identity.ErrRefreshTokenReused) {
		t.Fatalf("reuse: %v, want ErrRefreshTokenReused", err)
	}
	if _, err := redeem(other, azClient, vault.RefreshToken, vaultScope); !errors.Is(err, identity.ErrRefreshTokenRevoked) {
		t.Fatalf("the family's current token after a reuse: %v, want ErrRefreshTokenRevoked", err)
	}
	// Other sign-ins of the user are separate families.
	again := signIn(t, s, azClient, "rt@contoso.com", vaultScope+offlineScope)
	if _, err := redeem(s, azClient, again.RefreshToken, vaultScope); err != nil {
		t.Fatalf("a new sign-in after the revocation: %v", err)
	}
	if _, err := s.ClientCredentials(ctx, "", azClient, "x", vaultScope+" offline_access"); err == nil {
		t.Fatal("client credentials for a public client id")
	}
}

// Two concurrent redemptions of one token: one wins, the other is a reuse and revokes the
// family (the BCP's rule; the winner's new token then dies too).
func TestRefresh_ConcurrentRedemption(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, identity.Options{}, false)
	newUser(t, s, "race@contoso.com")
	tok := signIn(t, s, azClient, "race@contoso.com", vaultScope+offlineScope)
	var wg sync.WaitGroup
	results := make([]error, 8)
	tokens := make([]identity.Token, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tokens[i], results[i] = redeem(s, azClient, tok.RefreshToken, vaultScope)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range results {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("two redemptions of one token succeeded")
		case err == nil:
			won = i
		case !errors.Is(err, identity.ErrRefreshTokenReused) && !errors.Is(err, identity.ErrRefreshTokenRevoked):
			t.Fatalf("redemption %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no redemption succeeded")
	}
	if _, err := redeem(s, azClient, tokens[won].RefreshToken, vaultScope); !errors.Is(err, identity.ErrRefreshTokenRevoked) {
		t.Fatalf("the winner's token after the reuse: %v", err)
	}
}

// A family dies after 90 days without a redemption (each redemption restarts the count) and,
// when set, after its maximum age; an expired family's record is deleted on use.
func TestRefresh_Expiry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   identity.Options
		steps  []time.Duration // redeem after each advance
		expire time.Duration   // then this advance makes it expire
	}{
		{"inactivity 90 days", identity.Options{}, nil, identity.DefaultRefreshTokenMaxInactive + time.Second},
		{"rolling: used every 80 days", identity.Options{}, []time.Duration{80 * 24 * time.Hour, 80 * 24 * time.Hour, 80 * 24 * time.Hour}, 91 * 24 * time.Hour},
		{"max age", identity.Options{RefreshTokenMaxAge: 30 * 24 * time.Hour}, []time.Duration{20 * 24 * time.Hour}, 11 * 24 * time.Hour},
		{"custom inactivity", identity.Options{RefreshTokenMaxInactive: 14 * 24 * time.Hour}, []time.Duration{13 * 24 * time.Hour}, 15 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			tc.opts.Now = clk.Now
			e := newEnv(t)
			s := e.service(t, tc.opts, false)
			newUser(t, s, "exp@contoso.com")
			rt := signIn(t, s, azClient, "exp@contoso.com", vaultScope+offlineScope).RefreshToken
			for i, d := range tc.steps {
				clk.Advance(d)
				tok, err := redeem(s, azClient, rt, vaultScope)
				if err != nil {
					t.Fatalf("step %d (+%v): %v", i, d, err)
				}
				rt = tok.RefreshToken
			}
			clk.Advance(tc.expire)
			if _, err := redeem(s, azClient, rt, vaultScope); !errors.Is(err, identity.ErrRefreshTokenExpired) {
				t.Fatalf("after +%v: %v, want ErrRefreshTokenExpired", tc.expire, err)
			}
			if n := countKeys(t, e.st, "id/rtfamily/"); n != 0 {
				t.Fatalf("%d family records left after expiry", n)
			}
		})
	}
}

// A user holds at most 16 families per client and 64 in all: the oldest is evicted, dead ones
// are forgotten first, and the store holds no more records than the caps.
func TestRefresh_Caps(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t)
	s := e.service(t, identity.Options{Now: clk.Now}, false)
	newUser(t, s, "cap@contoso.com")
	var rts []string
	for range 17 {
		clk.Advance(time.Second)
		rts = append(rts, signIn(t, s, azClient, "cap@contoso.com", vaultScope+offlineScope).RefreshToken)
	}
	if _, err := redeem(s, azClient, rts[0], vaultScope); !errors.Is(err, identity.ErrRefreshTokenRevoked) {
		t.Fatalf("17th family for one client: the oldest still works (%v)", err)
	}
	if _, err := redeem(s, azClient, rts[1], vaultScope); err != nil {
		t.Fatalf("the second oldest was evicted too: %v", err)
	}
	if n := countKeys(t, e.st, "id/rtfamily/"); n != 16 {
		t.Fatalf("%d family records, want 16", n)
	}
	// Many client ids: 64 families in all.
	first := ""
	for i := range 70 {
		clk.Advance(time.Second)
		client := fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		rt := signIn(t, s, client, "cap@contoso.com", vaultScope+offlineScope).RefreshToken
		if i == 0 {
			first = rt
		}
	}
	if n := countKeys(t, e.st, "id/rtfamily/"); n != 64 {
		t.Fatalf("%d family records, want 64", n)
	}
	if _, err := redeem(s, "00000000-0000-0000-0000-000000000000", first, vaultScope); !errors.Is(err, identity.ErrRefreshTokenRevoked) {
		t.Fatalf("oldest of 70 clients' families: %v", err)
	}
}

// Revoking a user (password change or reset, disabling, deletion, revokeSignInSessions) revokes
// the user's refresh tokens on every node and deletes their records; other users keep theirs.
func TestRefresh_RevokedWithTheUser(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		act  func(s *identity.Service, id string) error
		want error
	}{
		{"password change", func(s *identity.Service, id string) error {
			_, err := s.SetUserPassword(ctx, id, "N3w-Passw0rd")
			return err
		}, identity.ErrRefreshTokenRevoked},
		{"disable", func(s *identity.Service, id string) error {
			_, err := s.SetUserEnabled(ctx, id, false)
			return err
		}, identity.ErrRefreshTokenRevoked}, // its families are gone with the disabling
		{"disable then enable", func(s *identity.Service, id string) error {
			if _, err := s.SetUserEnabled(ctx, id, false); err != nil {
				return err
			}
			_, err := s.SetUserEnabled(ctx, id, true)
			return err
		}, identity.ErrRefreshTokenRevoked},
		{"delete", func(s *identity.Service, id string) error { return s.DeleteUser(ctx, id) }, identity.ErrRefreshTokenRevoked},
		{"revokeSignInSessions", func(s *identity.Service, id string) error { return s.RevokeSignInSessions(ctx, id) }, identity.ErrRefreshTokenRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.service(t, identity.Options{}, false)
			other := e.service(t, identity.Options{}, false)
			u := newUser(t, s, "gone@contoso.com")
			newUser(t, s, "kept@contoso.com")
			rt := signIn(t, s, azClient, "gone@contoso.com", vaultScope+offlineScope)
			rt2 := signIn(t, s, azClient, "gone@contoso.com", armScope+offlineScope)
			kept := signIn(t, s, azClient, "kept@contoso.com", vaultScope+offlineScope)
			if err := other.KeysApplied(ctx, []string{keyring.RingKey}); err != nil {
				t.Fatal(err)
			}
			if err := tc.act(s, u.ID); err != nil {
				t.Fatal(err)
			}
			for _, tok := range []identity.Token{rt, rt2} {
				if _, err := redeem(other, azClient, tok.RefreshToken, vaultScope); !errors.Is(err, tc.want) {
					t.Fatalf("refresh after %s: %v, want %v", tc.name, err, tc.want)
				}
			}
			if _, err := redeem(other, azClient, kept.RefreshToken, vaultScope); err != nil {
				t.Fatalf("another user's refresh token: %v", err)
			}
			if n := countKeys(t, e.st, "id/rtfamily/"); n != 1 {
				t.Fatalf("%d family records after revoking the user, want only the other user's", n)
			}
		})
	}
	// revokeSignInSessions leaves access tokens alone (as Entra) but a new sign-in works.
	e := newEnv(t)
	s := e.service(t, identity.Options{}, false)
	newUser(t, s, "sess@contoso.com")
	tok := signIn(t, s, azClient, "sess@contoso.com", vaultScope+offlineScope)
	if err := s.RevokeSignInSessions(ctx, "sess@contoso.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok.AccessToken, vaultAudiences); err != nil {
		t.Fatalf("access token after revokeSignInSessions: %v", err)
	}
	if _, err := redeem(s, azClient, signIn(t, s, azClient, "sess@contoso.com", vaultScope+offlineScope).RefreshToken, vaultScope); err != nil {
		t.Fatalf("sign-in after revokeSignInSessions: %v", err)
	}
	if err := s.RevokeSignInSessions(ctx, "11111111-1111-1111-1111-111111111111"); !errors.Is(err, identity.ErrObjectNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}

// The device code and authorization code grants issue refresh tokens for offline_access too.
func TestRefresh_InteractiveGrants(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	newUser(t, s, "i@contoso.com")
	dc, err := s.StartDeviceCode(ctx, "", azClient, vaultScope+offlineScope, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteDeviceCode(ctx, identity.DeviceSignIn{UserCode: dc.UserCode, Username: "i@contoso.com", Password: "Passw0rd!!", Approve: true}); err != nil {
		t.Fatal(err)
	}
	tok, err := s.PollDeviceCode(ctx, "", azClient, dc.DeviceCode)
	if err != nil || tok.RefreshToken == "" || tok.IDToken == "" {
		t.Fatalf("device code: refresh token %t, id token %t, %v", tok.RefreshToken != "", tok.IDToken != "", err)
	}
	if _, err := redeem(s, azClient, tok.RefreshToken, armScope); err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.IDToken, ".")[1])
	if err := json.Unmarshal(payload, &claims); err != nil || claims["sr_cred"] != nil {
		t.Fatalf("id token claims %v (%v)", claims, err)
	}
}

// A confidential client (a web app redeeming its code with its client secret) gets refresh
// tokens that only its secret redeems; a public client's need none but are checked when sent.
func TestRefresh_ConfidentialClient(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	newUser(t, s, "web@contoso.com")
	app, _, pc := newApp(t, s, "web")
	const redirect = "https://web.localhost/cb"
	if err := s.SetRedirectURIs(ctx, app.AppID, []string{redirect}); err != nil {
		t.Fatal(err)
	}
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	req := identity.AuthorizeRequest{ClientID: app.AppID, RedirectURI: redirect, Scope: vaultScope + offlineScope, ResponseType: "code",
		CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), CodeChallengeMethod: "S256"}
	code := func() string {
		c, err := s.IssueAuthCode(ctx, req, "web@contoso.com", "Passw0rd!!", "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := s.RedeemAuthCodeConfidential(ctx, "", app.AppID, lastCharChanged(pc.SecretText), code(), redirect, verifier, ""); !errors.Is(err, identity.ErrInvalidClient) {
		t.Fatalf("code with a wrong client secret: %v", err)
	}
	tok, err := s.RedeemAuthCodeConfidential(ctx, "", app.AppID, pc.SecretText, code(), redirect, verifier, "")
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("confidential code redemption: refresh token %t, %v", tok.RefreshToken != "", err)
	}
	rr := identity.RefreshRequest{ClientID: app.AppID, RefreshToken: tok.RefreshToken, Scope: vaultScope}
	if _, err := s.RedeemRefreshToken(ctx, rr); !errors.Is(err, identity.ErrInvalidClient) {
		t.Fatalf("confidential refresh without the secret: %v", err)
	}
	rr.ClientSecret = lastCharChanged(pc.SecretText)
	if _, err := s.RedeemRefreshToken(ctx, rr); !errors.Is(err, identity.ErrInvalidClient) {
		t.Fatalf("confidential refresh with a wrong secret: %v", err)
	}
	rr.ClientSecret = pc.SecretText
	if _, err := s.RedeemRefreshToken(ctx, rr); err != nil {
		t.Fatalf("confidential refresh with its secret: %v", err)
	}
	// The public flow of the same app (no secret at the code): its refresh tokens need none.
	pub, err := s.RedeemAuthCode(ctx, "", app.AppID, code(), redirect, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := redeem(s, app.AppID, pub.RefreshToken, vaultScope); err != nil {
		t.Fatalf("public refresh: %v", err)
	}
}
