package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/identity"
)

// oidcIssuer is an external OpenID Connect issuer over TLS: discovery and a JWKS whose keys
// the test can rotate, counting fetches.
type oidcIssuer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    map[string]any // kid -> private key
	fetches atomic.Int32
}

func newOIDCIssuer(t *testing.T) *oidcIssuer {
	t.Helper()
	o := &oidcIssuer{keys: map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		o.fetches.Add(1)
		json.NewEncoder(w).Encode(map[string]string{"issuer": o.srv.URL, "jwks_uri": o.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		defer o.mu.Unlock()
		var set jose.JSONWebKeySet
		for kid, k := range o.keys {
			var pub any
			switch k := k.(type) {
			case *ecdsa.PrivateKey:
				pub = &k.PublicKey
			default:
				pub = &rsaKey(t, 0).PublicKey
			}
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"})
		}
		json.NewEncoder(w).Encode(set)
	})
	o.srv = httptest.NewTLSServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

func (o *oidcIssuer) addKey(t *testing.T, kid string, k any) {
	o.mu.Lock()
	o.keys[kid] = k
	o.mu.Unlock()
}

// token signs claims with key kid (ES256 for EC keys, RS256 for RSA).
func (o *oidcIssuer) token(t *testing.T, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	m := jwt.SigningMethod(jwt.SigningMethodRS256)
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		m = jwt.SigningMethodES256
	}
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (o *oidcIssuer) claims(sub string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{"iss": o.srv.URL, "sub": sub, "aud": []string{identity.DefaultFederationAudience},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": uuid.NewString()}
}

// httpFetcher fetches discovery and JWKS as package issuer's OIDCFetcher does (this package
// never speaks HTTP itself).
type httpFetcher struct{ hc *http.Client }

func (f httpFetcher) FetchIssuerKeys(ctx context.Context, iss string) (jose.JSONWebKeySet, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	var set jose.JSONWebKeySet
	get := func(u string, v any) error {
		resp, err := f.hc.Get(u)
		if err != nil {
			return fmt.Errorf("%w: %v", identity.ErrFederationFetch, err)
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(v)
	}
	if err := get(iss+"/.well-known/openid-configuration", &doc); err != nil {
		return set, err
	}
	err := get(doc.JWKSURI, &set)
	return set, err
}

func setFetcher(s *identity.Service, o *oidcIssuer) {
	s.SetIssuerKeyFetcher(httpFetcher{o.srv.Client()})
}

func TestFederation_Catalogue(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	now := clk.Now()
	iss := newOIDCIssuer(t)
	unregistered := newOIDCIssuer(t)
	setFetcher(s, iss)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	iss.addKey(t, "ec1", ec)
	iss.addKey(t, "rsa1", rsaKey(t, 0))
	unregistered.addKey(t, "ec1", ec)

	app, err := s.CreateApplication(ctx, "workload")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := s.CreateServicePrincipalForApp(ctx, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	const subject = "system:serviceaccount:prod:billing"
	fc, err := s.CreateFederatedCredential(ctx, app.ID, identity.FederatedCredential{Name: "k8s", Issuer: iss.srv.URL, Subject: subject})
	if err != nil {
		t.Fatalf("CreateFederatedCredential: %v", err)
	}
	if len(fc.Audiences) != 1 || fc.Audiences[0] != identity.DefaultFederationAudience {
		t.Fatalf("default audiences = %v", fc.Audiences)
	}
	with := func(k string, v any) jwt.MapClaims {
		c := iss.claims(subject, now)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"ES256", iss.token(t, "ec1", ec, iss.claims(subject, now)), nil},
		{"RS256", iss.token(t, "rsa1", rsaKey(t, 0), iss.claims(subject, now)), nil},
		{"reused, as projected tokens are", iss.token(t, "ec1", ec, iss.claims(subject, now)), nil},
		{"wrong subject", iss.token(t, "ec1", ec, iss.claims("system:serviceaccount:prod:other", now)), identity.ErrFederationSubject},
		{"wrong audience", iss.token(t, "ec1", ec, with("aud", []string{"api://other"})), identity.ErrFederationAudience},
		{"unregistered issuer", unregistered.token(t, "ec1", ec, func() jwt.MapClaims {
			c := iss.claims(subject, now)
			c["iss"] = unregistered.srv.URL
			return c
		}()), identity.ErrFederationIssuer},
		{"expired", iss.token(t, "ec1", ec, with("exp", now.Add(-time.Hour).Unix())), identity.ErrInvalidAssertion},
		{"not yet valid", iss.token(t, "ec1", ec, with("nbf", now.Add(time.Hour).Unix())), identity.ErrInvalidAssertion},
		{"no exp", iss.token(t, "ec1", ec, with("exp", nil)), identity.ErrInvalidAssertion},
		{"signed by a key the issuer does not publish", iss.token(t, "ec1", other, iss.claims(subject, now)), identity.ErrInvalidAssertion},
		{"unknown kid", iss.token(t, "nope", other, iss.claims(subject, now)), identity.ErrInvalidAssertion},
		{"HS256", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, iss.claims(subject, now))
			tok.Header["kid"] = "ec1"
			raw, _ := tok.SignedString([]byte("k"))
			return raw
		}(), identity.ErrInvalidAssertion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := unregistered.fetches.Load()
			tok, err := s.AssertionToken(ctx, assertionReq(app.AppID, tc.token))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("AssertionToken: %v", err)
				}
				cl, err := s.Verify(ctx, tok.AccessToken, []string{vaultAudience})
				if err != nil || cl.CredentialID != fc.ID || cl.Principal.ObjectID != sp.ID {
					t.Fatalf("Verify = %+v, %v", cl, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if unregistered.fetches.Load() != before {
				t.Fatal("an unregistered issuer was fetched")
			}
		})
	}
	if n := iss.fetches.Load(); n > 2 {
		t.Errorf("issuer discovery fetched %d times, want the cache used (the unknown kid refreshes once)", n)
	}

	// Deleting the federated credential revokes its tokens.
	tok, err := s.AssertionToken(ctx, assertionReq(app.AppID, iss.token(t, "ec1", ec, iss.claims(subject, now))))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFederatedCredential(ctx, app.AppID, "k8s"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok.AccessToken, []string{vaultAudience}); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("token after deleting its federated credential: %v", err)
	}
	if _, err := s.GetFederatedCredential(ctx, app.ID, "k8s"); !errors.Is(err, identity.ErrObjectNotFound) {
		t.Fatalf("deleted credential: %v", err)
	}
}

// An unknown kid refreshes the issuer's keys (a rotation), at most once per 30 seconds.
func TestFederation_KeyRotationRefreshIsRateLimited(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	iss := newOIDCIssuer(t)
	setFetcher(s, iss)
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	iss.addKey(t, "k1", k1)
	app, _ := s.CreateApplication(ctx, "rot")
	if _, err := s.CreateServicePrincipalForApp(ctx, app.AppID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateFederatedCredential(ctx, app.ID, identity.FederatedCredential{Name: "r", Issuer: iss.srv.URL, Subject: "s"}); err != nil {
		t.Fatal(err)
	}
	sign := func(kid string, k *ecdsa.PrivateKey) error {
		_, err := s.AssertionToken(ctx, assertionReq(app.AppID, iss.token(t, kid, k, iss.claims("s", clk.Now()))))
		return err
	}
	if err := sign("k1", k1); err != nil {
		t.Fatal(err)
	}
	iss.addKey(t, "k2", k2)
	clk.Advance(10 * time.Second)
	if err := sign("k2", k2); !errors.Is(err, identity.ErrInvalidAssertion) {
		t.Fatalf("new kid within 30s of the last fetch: %v, want refused without a refetch", err)
	}
	if n := iss.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	clk.Advance(30 * time.Second)
	if err := sign("k2", k2); err != nil {
		t.Fatalf("new kid after 30s: %v", err)
	}
	if n := iss.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}

func TestFederation_Validation(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	app, _ := s.CreateApplication(ctx, "v")
	good := identity.FederatedCredential{Name: "n", Issuer: "https://issuer.example", Subject: "s"}
	if _, err := s.CreateFederatedCredential(ctx, app.ID, good); err != nil {
		t.Fatal(err)
	}
	for name, fc := range map[string]identity.FederatedCredential{
		"http issuer":    {Name: "a", Issuer: "http://issuer.example", Subject: "s"},
		"no subject":     {Name: "b", Issuer: "https://issuer.example"},
		"bad name":       {Name: "a b", Issuer: "https://issuer.example", Subject: "s2"},
		"two audiences":  {Name: "c", Issuer: "https://issuer.example", Subject: "s3", Audiences: []string{"x", "y"}},
		"duplicate name": {Name: "N", Issuer: "https://issuer.example", Subject: "s4"},
		"duplicate pair": {Name: "d", Issuer: "https://issuer.example", Subject: "s"},
	} {
		if _, err := s.CreateFederatedCredential(ctx, app.ID, fc); !errors.Is(err, identity.ErrInvalidInput) && !errors.Is(err, identity.ErrObjectConflict) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := s.CreateFederatedCredential(ctx, uuid.NewString(), good); !errors.Is(err, identity.ErrObjectNotFound) {
		t.Errorf("unknown application: %v", err)
	}
}

// Changing a federated credential's subject revokes the tokens it minted and moves the trust;
// changing only its description does not.
func TestFederation_UpdateMovesTrust(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	now := clk.Now()
	iss := newOIDCIssuer(t)
	setFetcher(s, iss)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	iss.addKey(t, "k", ec)
	app, _ := s.CreateApplication(ctx, "moving")
	if _, err := s.CreateServicePrincipalForApp(ctx, app.AppID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateFederatedCredential(ctx, app.ID, identity.FederatedCredential{Name: "m", Issuer: iss.srv.URL, Subject: "old"}); err != nil {
		t.Fatal(err)
	}
	tok, err := s.AssertionToken(ctx, assertionReq(app.AppID, iss.token(t, "k", ec, iss.claims("old", now))))
	if err != nil {
		t.Fatal(err)
	}
	desc := "just words"
	if _, err := s.UpdateFederatedCredential(ctx, app.ID, "m", identity.FederatedCredentialPatch{Description: &desc}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok.AccessToken, []string{vaultAudience}); err != nil {
		t.Fatalf("after a description change: %v", err)
	}
	sub := "new"
	if _, err := s.UpdateFederatedCredential(ctx, app.ID, "m", identity.FederatedCredentialPatch{Subject: &sub}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok.AccessToken, []string{vaultAudience}); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("after a subject change: %v", err)
	}
	if _, err := s.AssertionToken(ctx, assertionReq(app.AppID, iss.token(t, "k", ec, iss.claims("old", now)))); !errors.Is(err, identity.ErrFederationSubject) {
		t.Fatalf("old subject: %v", err)
	}
	if _, err := s.AssertionToken(ctx, assertionReq(app.AppID, iss.token(t, "k", ec, iss.claims("new", now)))); err != nil {
		t.Fatalf("new subject: %v", err)
	}
}
