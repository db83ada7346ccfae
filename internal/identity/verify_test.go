package identity_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
)

var vaultAudiences = []string{"https://vault.localhost:8443", "https://vault.azure.net"}

func mustToken(t *testing.T, s *identity.Service, p identity.Principal, secret, scope string) string {
	t.Helper()
	tok, err := s.ClientCredentials(context.Background(), "", p.AppID, secret, scope)
	if err != nil {
		t.Fatalf("ClientCredentials: %v", err)
	}
	return tok.AccessToken
}

// segments splits a compact JWS and decodes its payload.
func payloadOf(t *testing.T, raw string) (parts []string, claims map[string]any) {
	t.Helper()
	parts = strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return parts, claims
}

func encodeSeg(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestService_Verify(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	e := newEnv(t)
	s := e.service(t, identity.Options{Now: clk.Now}, false)
	p, secret := mustCreateSP(t, s, "verifier")
	good := mustToken(t, s, p, secret, "https://vault.localhost:8443/.default")
	armTok := mustToken(t, s, p, secret, "https://management.core.windows.net//.default")
	azureAud := mustToken(t, s, p, secret, "https://vault.azure.net/.default")

	// Another deployment (its own store, keys and tenant).
	other := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	op, osecret := mustCreateSP(t, other, "other")
	foreign := mustToken(t, other, op, osecret, "https://vault.localhost:8443/.default")

	parts, claims := payloadOf(t, good)
	fparts, _ := payloadOf(t, foreign)

	tampered := func(mut func(map[string]any)) string {
		c := map[string]any{}
		for k, v := range claims {
			c[k] = v
		}
		mut(c)
		return parts[0] + "." + encodeSeg(t, c) + "." + parts[2]
	}
	resigned := func(mut func(map[string]any)) string {
		c := map[string]any{}
		for k, v := range claims {
			c[k] = v
		}
		mut(c)
		raw, err := s.SignRaw(c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	noneAlg := encodeSeg(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."
	hsAlg := encodeSeg(t, map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + parts[1] + "." + parts[2]

	cases := []struct {
		name      string
		raw       string
		audiences []string
		reason    string // "" = valid
	}{
		{"fresh token", good, vaultAudiences, ""},
		{"second audience in list", azureAud, vaultAudiences, ""},
		{"trailing slash on allowed side", good, []string{"https://vault.localhost:8443/"}, ""},
		{"case-insensitive", good, []string{"HTTPS://VAULT.LOCALHOST:8443"}, ""},
		{"arm audience", armTok, []string{"https://management.core.windows.net/", "https://management.azure.com/"}, ""},
		{"arm audience without slash", armTok, []string{"https://management.core.windows.net"}, ""},
		{"wrong audience", good, []string{"https://management.azure.com/"}, "wrong audience"},
		{"port matters", good, []string{"https://vault.localhost"}, "wrong audience"},
		{"no audiences", good, nil, "wrong audience"},
		{"other deployment's token", foreign, vaultAudiences, "unknown signing key"},
		{"other deployment's signature", parts[0] + "." + parts[1] + "." + fparts[2], vaultAudiences, "bad signature"},
		{"tampered oid", tampered(func(c map[string]any) { c["oid"] = "00000000-0000-0000-0000-000000000000" }), vaultAudiences, "bad signature"},
		{"tampered exp", tampered(func(c map[string]any) { c["exp"] = 4102444800 }), vaultAudiences, "bad signature"},
		{"truncated signature", good[:len(good)-4], vaultAudiences, "bad signature"},
		{"wrong issuer", resigned(func(c map[string]any) { c["iss"] = "https://evil.example/" + s.TenantID() + "/v2.0" }), vaultAudiences, "wrong issuer"},
		{"wrong tenant", resigned(func(c map[string]any) { c["tid"] = op.TenantID }), vaultAudiences, "wrong issuer"},
		{"v1 token", resigned(func(c map[string]any) { c["ver"] = "1.0" }), vaultAudiences, "unsupported token version"},
		{"no exp", resigned(func(c map[string]any) { delete(c, "exp") }), vaultAudiences, "missing time claims"},
		{"no oid", resigned(func(c map[string]any) { delete(c, "oid") }), vaultAudiences, "missing subject claims"},
		{"app token relabelled user", resigned(func(c map[string]any) { c["idtyp"] = "user" }), vaultAudiences, "identity type mismatch"},
		{"device token", resigned(func(c map[string]any) { c["idtyp"] = "device" }), vaultAudiences, "unsupported identity type"},
		{"array audience", resigned(func(c map[string]any) { c["aud"] = []string{"https://vault.localhost:8443"} }), vaultAudiences, "malformed claims"},
		{"alg none", noneAlg, vaultAudiences, "malformed token"},
		{"alg HS256", hsAlg, vaultAudiences, "malformed token"},
		{"garbage", "not a token", vaultAudiences, "malformed token"},
		{"three dots of garbage", "a.b.c", vaultAudiences, "malformed token"},
		{"empty", "", vaultAudiences, "malformed token"},
		{"huge", strings.Repeat("a", 20000), vaultAudiences, "malformed token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Verify(ctx, c.raw, c.audiences)
			if c.reason != "" {
				if !errors.Is(err, identity.ErrInvalidToken) || !strings.HasSuffix(err.Error(), ": "+c.reason) {
					t.Fatalf("Verify err = %v, want ErrInvalidToken: %s", err, c.reason)
				}
				if len(c.raw) > 20 && strings.Contains(err.Error(), c.raw[len(c.raw)-20:]) {
					t.Fatalf("error text contains the token")
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Principal != p || got.TokenID == "" || !got.Expiry.Equal(clk.Now().Add(time.Hour).Truncate(time.Second)) {
				t.Errorf("claims = %+v", got)
			}
		})
	}
}

func TestService_Verify_Claims(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now, TokenLifetime: 90 * time.Minute}, false)
	p, secret := mustCreateSP(t, s, "claims app")
	raw := mustToken(t, s, p, secret, "https://vault.localhost:8443/.default")

	_, minted := payloadOf(t, raw)
	for _, k := range []string{"aud", "iss", "iat", "nbf", "exp", "appid", "azp", "idtyp", "oid", "sub", "tid", "uti", "ver"} {
		if _, ok := minted[k]; !ok {
			t.Errorf("minted token lacks claim %q", k)
		}
	}
	if minted["sub"] != p.ObjectID || minted["azp"] != p.AppID || minted["idtyp"] != "app" || minted["ver"] != "2.0" {
		t.Errorf("minted claims = %v", minted)
	}

	c, err := s.Verify(ctx, raw, vaultAudiences)
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	if c.Audience != "https://vault.localhost:8443" || !c.IssuedAt.Equal(now.Truncate(time.Second)) ||
		!c.NotBefore.Equal(now.Truncate(time.Second)) || !c.Expiry.Equal(now.Add(90*time.Minute).Truncate(time.Second)) {
		t.Errorf("claims = %+v", c)
	}
	if c.Issuer != "https://localhost:8443/"+s.TenantID()+"/v2.0" || c.IdentityType != "app" ||
		c.Principal.ObjectID != p.ObjectID || c.Principal.AppID != p.AppID || c.Principal.TenantID != s.TenantID() {
		t.Errorf("claims = %+v", c)
	}
}

func TestService_Verify_TimeWindow(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	p, secret := mustCreateSP(t, s, "clock")
	minted := clk.Now()
	raw := mustToken(t, s, p, secret, "https://vault.localhost:8443/.default")
	exp := minted.Add(time.Hour).Truncate(time.Second)

	cases := []struct {
		name   string
		at     time.Time
		reason string
	}{
		{"just minted", minted, ""},
		{"within skew before nbf", minted.Add(-4 * time.Minute), ""},
		{"before nbf", minted.Add(-6 * time.Minute), "not yet valid"},
		{"at exp", exp, ""},
		{"within skew after exp", exp.Add(4 * time.Minute), ""},
		{"expired", exp.Add(6 * time.Minute), "expired"},
		{"valid again from cache", minted.Add(time.Minute), ""},
		{"expired after caching", exp.Add(5*time.Minute + time.Second), "expired"},
	}
	kept, err := s.Verify(ctx, raw, vaultAudiences) // as a connection's token memo keeps them
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		clk.Set(c.at)
		_, err := s.Verify(ctx, raw, vaultAudiences)
		recheckErr := s.Recheck(kept, vaultAudiences)
		for what, err := range map[string]error{"Verify": err, "Recheck": recheckErr} {
			switch {
			case c.reason == "" && err != nil:
				t.Errorf("%s: %s: %v", c.name, what, err)
			case c.reason != "" && (!errors.Is(err, identity.ErrInvalidToken) || !strings.HasSuffix(err.Error(), c.reason)):
				t.Errorf("%s: %s err = %v, want %s", c.name, what, err, c.reason)
			}
		}
	}
	clk.Set(minted)
	if err := s.Recheck(kept, []string{"https://management.azure.com/"}); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("Recheck with another audience: err = %v, want ErrInvalidToken", err)
	}
}

func TestService_Verify_CacheHit(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	p, secret := mustCreateSP(t, s, "cache")
	raw := mustToken(t, s, p, secret, "https://vault.localhost:8443/.default")

	first, err := s.Verify(ctx, raw, vaultAudiences)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CacheLen(); n != 1 {
		t.Fatalf("cache holds %d entries after one verification, want 1", n)
	}
	second, err := s.Verify(ctx, raw, vaultAudiences)
	if err != nil {
		t.Fatal(err)
	}
	if second.Principal != first.Principal || second.TokenID != first.TokenID || !second.Expiry.Equal(first.Expiry) {
		t.Errorf("cached claims %+v differ from first %+v", second, first)
	}
	if n := s.CacheLen(); n != 1 {
		t.Fatalf("cache holds %d entries after a hit, want 1", n)
	}
	// The audience is checked on hits too.
	if _, err := s.Verify(ctx, raw, []string{"https://management.azure.com/"}); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("cached token with wrong audience: err = %v, want ErrInvalidToken", err)
	}
	// Failures are not cached.
	if _, err := s.Verify(ctx, "garbage", vaultAudiences); err == nil {
		t.Fatal("garbage verified")
	}
	if n := s.CacheLen(); n != 1 {
		t.Fatalf("cache holds %d entries after a failure, want 1", n)
	}
}

func TestService_Verify_CacheIsBounded(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	s.SetCacheMax(4)
	p, secret := mustCreateSP(t, s, "bounded")
	var toks []string
	for range 12 {
		toks = append(toks, mustToken(t, s, p, secret, "https://vault.localhost:8443/.default"))
	}
	for i := range 2 {
		for _, raw := range toks {
			if _, err := s.Verify(ctx, raw, vaultAudiences); err != nil {
				t.Fatalf("pass %d: Verify: %v", i, err)
			}
			if n := s.CacheLen(); n > 4 {
				t.Fatalf("cache holds %d entries, bound is 4", n)
			}
		}
	}
	// Expired entries go first: after every token expires, new ones still fit.
	clk.Advance(2 * time.Hour)
	for range 4 {
		raw := mustToken(t, s, p, secret, "https://vault.localhost:8443/.default")
		if _, err := s.Verify(ctx, raw, vaultAudiences); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.CacheLen(); n > 4 {
		t.Fatalf("cache holds %d entries, bound is 4", n)
	}
}

func TestService_New_ReloadKeepsKeysAndTenant(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s1 := e.service(t, identity.Options{}, false)
	p, secret := mustCreateSP(t, s1, "survivor")
	raw := mustToken(t, s1, p, secret, "https://vault.localhost:8443/.default")

	s2 := e.service(t, identity.Options{}, false)
	if s2.TenantID() != s1.TenantID() || s2.SubscriptionID() != s1.SubscriptionID() {
		t.Fatalf("ids changed across restart")
	}
	if _, err := s2.Verify(ctx, raw, vaultAudiences); err != nil {
		t.Fatalf("token from before the restart: %v", err)
	}
	j1, j2 := s1.JWKS(), s2.JWKS()
	if len(j1.Keys) != 1 || len(j2.Keys) != 1 || j1.Keys[0].KeyID != j2.Keys[0].KeyID {
		t.Fatalf("JWKS changed across restart: %v vs %v", j1.Keys, j2.Keys)
	}
	k := j2.Keys[0]
	if !k.IsPublic() || k.Algorithm != "RS256" || k.Use != "sig" || k.KeyID == "" {
		t.Fatalf("JWKS key = public %v alg %q use %q kid %q", k.IsPublic(), k.Algorithm, k.Use, k.KeyID)
	}
	b, err := json.Marshal(j2)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := doc.Keys[0][private]; ok {
			t.Errorf("JWKS publishes private member %q", private)
		}
	}
	// The token's header names that kid.
	hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	if h["kid"] != k.KeyID || h["alg"] != "RS256" || h["typ"] != "JWT" {
		t.Errorf("token header = %v, want kid %q alg RS256 typ JWT", h, k.KeyID)
	}
}
