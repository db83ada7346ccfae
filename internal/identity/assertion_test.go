package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
)

const vaultAudience = "https://vault.localhost:8443"

// testCert is a self-signed RSA certificate and its key.
type testCert struct {
	key *rsa.PrivateKey
	der []byte
}

var rsaKeys = map[int]*rsa.PrivateKey{}

func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	if k := rsaKeys[i]; k != nil {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKeys[i] = k
	return k
}

func newTestCert(t testing.TB, key *rsa.PrivateKey, from, until time.Time) testCert {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "client"},
		NotBefore: from, NotAfter: until}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{key: key, der: der}
}

func (c testCert) x5tS256() string {
	s := sha256.Sum256(c.der)
	return base64.StdEncoding.EncodeToString(s[:])
}
func (c testCert) x5t() string {
	s := sha1.Sum(c.der)
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// assertion signs claims as MSAL does (PS256 with x5t#S256) unless edit changes the token.
func assertion(t testing.TB, c testCert, claims jwt.MapClaims, edit func(*jwt.Token)) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodPS256, claims)
	tok.Header["x5t#S256"] = c.x5tS256()
	if edit != nil {
		edit(tok)
	}
	var key any = c.key
	if tok.Method == jwt.SigningMethodHS256 {
		key = []byte("secret")
	}
	if tok.Method == jwt.SigningMethodNone {
		key = jwt.UnsafeAllowNoneSignatureType
	}
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func certClaims(clientID string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{"aud": testPublicURL + "/organizations/oauth2/v2.0/token", "iss": clientID, "sub": clientID,
		"jti": uuid.NewString(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
}

func assertionReq(clientID, a string) identity.AssertionRequest {
	return identity.AssertionRequest{Tenant: "organizations", ClientID: clientID, Assertion: a, Scope: vaultAudience + "/.default",
		TokenEndpoint: testPublicURL + "/organizations/oauth2/v2.0/token"}
}

// certApp is an application with a registered certificate and a service principal.
func certApp(t *testing.T, s *identity.Service, now time.Time) (identity.Application, identity.ServicePrincipal, testCert, identity.KeyCredential) {
	t.Helper()
	return certAppWith(t, s, newTestCert(t, rsaKey(t, 0), now.Add(-time.Hour), now.Add(24*time.Hour)))
}

// certAppWith is certApp with the certificate c.
func certAppWith(t *testing.T, s *identity.Service, c testCert) (identity.Application, identity.ServicePrincipal, testCert, identity.KeyCredential) {
	t.Helper()
	ctx := context.Background()
	app, err := s.CreateApplication(ctx, "cert-app")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := s.CreateServicePrincipalForApp(ctx, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := s.AddKeyCredential(ctx, app.ID, identity.KeyCredentialInput{Type: "AsymmetricX509Cert", Usage: "Verify", Key: c.der, DisplayName: "ci"})
	if err != nil {
		t.Fatalf("AddKeyCredential: %v", err)
	}
	return app, sp, c, kc
}

// Every case runs against a fresh application (so that the refusals do not add up to the
// client id's lockout), holding certificate c and one that expires in an hour.
func TestAssertion_CertificateCatalogue(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	now := clk.Now()
	c := newTestCert(t, rsaKey(t, 0), now.Add(-time.Hour), now.Add(24*time.Hour))
	other := newTestCert(t, rsaKey(t, 1), now.Add(-time.Hour), now.Add(24*time.Hour))
	expired := newTestCert(t, rsaKey(t, 2), now.Add(-48*time.Hour), now.Add(time.Hour))
	with := func(id, k string, v any) jwt.MapClaims {
		m := certClaims(id, now)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	good := func(id string) string { return assertion(t, c, certClaims(id, now), nil) }
	cases := []struct {
		name    string
		mk      func(id string) string
		advance time.Duration
		want    error // nil: a token
	}{
		{"PS256 x5t#S256 as MSAL sends it", good, 0, nil},
		{"RS256 x5t as ADFS-style clients send it", func(id string) string {
			return assertion(t, c, certClaims(id, now), func(tk *jwt.Token) {
				tk.Method = jwt.SigningMethodRS256
				tk.Header["alg"] = "RS256"
				delete(tk.Header, "x5t#S256")
				tk.Header["x5t"] = c.x5t()
			})
		}, 0, nil},
		{"aud is the tenant id's token endpoint", func(id string) string {
			return assertion(t, c, with(id, "aud", testPublicURL+"/"+s.TenantID()+"/oauth2/v2.0/token"), nil)
		}, 0, nil},
		{"alg none", func(id string) string {
			return assertion(t, c, certClaims(id, now), func(tk *jwt.Token) { tk.Method = jwt.SigningMethodNone; tk.Header["alg"] = "none" })
		}, 0, identity.ErrInvalidAssertion},
		{"HS256", func(id string) string {
			return assertion(t, c, certClaims(id, now), func(tk *jwt.Token) { tk.Method = jwt.SigningMethodHS256; tk.Header["alg"] = "HS256" })
		}, 0, identity.ErrInvalidAssertion},
		{"signed by another key, naming the registered certificate", func(id string) string {
			return assertion(t, testCert{key: other.key, der: c.der}, certClaims(id, now), nil)
		}, 0, identity.ErrInvalidAssertion},
		{"unregistered certificate", func(id string) string { return assertion(t, other, certClaims(id, now), nil) }, 0, identity.ErrUnknownCertificate},
		{"expired certificate", func(id string) string {
			return assertion(t, expired, certClaims(id, now.Add(2*time.Hour)), nil)
		}, 2 * time.Hour, identity.ErrUnknownCertificate},
		{"no thumbprint", func(id string) string {
			return assertion(t, c, certClaims(id, now), func(tk *jwt.Token) { delete(tk.Header, "x5t#S256") })
		}, 0, identity.ErrInvalidAssertion},
		{"wrong audience", func(id string) string {
			return assertion(t, c, with(id, "aud", "https://login.microsoftonline.com/x/oauth2/v2.0/token"), nil)
		}, 0, identity.ErrInvalidAssertion},
		{"sub is another client", func(id string) string { return assertion(t, c, with(id, "sub", uuid.NewString()), nil) }, 0, identity.ErrInvalidAssertion},
		{"expired", func(id string) string { return assertion(t, c, with(id, "exp", now.Add(-10*time.Minute).Unix()), nil) }, 0, identity.ErrInvalidAssertion},
		{"not yet valid", func(id string) string { return assertion(t, c, with(id, "nbf", now.Add(10*time.Minute).Unix()), nil) }, 0, identity.ErrInvalidAssertion},
		{"no exp", func(id string) string { return assertion(t, c, with(id, "exp", nil), nil) }, 0, identity.ErrInvalidAssertion},
		{"no nbf", func(id string) string { return assertion(t, c, with(id, "nbf", nil), nil) }, 0, identity.ErrInvalidAssertion},
		{"no jti", func(id string) string { return assertion(t, c, with(id, "jti", nil), nil) }, 0, identity.ErrInvalidAssertion},
		{"lifetime over an hour", func(id string) string { return assertion(t, c, with(id, "exp", now.Add(3*time.Hour).Unix()), nil) }, 0, identity.ErrInvalidAssertion},
		{"tampered payload (valid JSON, another jti)", func(id string) string {
			parts := splitJWT(good(id))
			raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			m["jti"] = uuid.NewString()
			b, _ := json.Marshal(m)
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
		}, 0, identity.ErrInvalidAssertion},
		{"garbage", func(string) string { return "not-a-jwt" }, 0, identity.ErrInvalidAssertion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app, sp, _, kc := certAppWith(t, s, c)
			if _, err := s.AddKeyCredential(ctx, app.ID, identity.KeyCredentialInput{Type: "AsymmetricX509Cert", Usage: "Verify", Key: expired.der}); err != nil {
				t.Fatal(err)
			}
			a := tc.mk(app.AppID)
			clk.Set(now.Add(tc.advance))
			defer clk.Set(now)
			tok, err := s.AssertionToken(ctx, assertionReq(app.AppID, a))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("AssertionToken: %v", err)
				}
				cl, err := s.Verify(ctx, tok.AccessToken, []string{vaultAudience})
				if err != nil || cl.CredentialID != kc.KeyID || cl.Principal.ObjectID != sp.ID {
					t.Fatalf("Verify = %+v, %v: want sp %s minted with key %s", cl, err, sp.ID, kc.KeyID)
				}
				if _, err := s.AssertionToken(ctx, assertionReq(app.AppID, a)); !errors.Is(err, identity.ErrAssertionReplayed) {
					t.Fatalf("the same assertion again: %v, want ErrAssertionReplayed", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, identity.ErrInvalidClient) {
				t.Fatalf("AssertionToken err = %v, want %v", err, tc.want)
			}
		})
	}
}

// A client id whose assertions keep failing is locked out like one whose secrets do: even a
// good assertion is then refused without being checked.
func TestAssertion_FailuresLockOut(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	now := clk.Now()
	app, _, c, _ := certApp(t, s, now)
	other := newTestCert(t, rsaKey(t, 1), now.Add(-time.Hour), now.Add(24*time.Hour))
	for range identity.ClientFailureLimit {
		if _, err := s.AssertionToken(ctx, assertionReq(app.AppID, assertion(t, other, certClaims(app.AppID, now), nil))); !errors.Is(err, identity.ErrUnknownCertificate) {
			t.Fatalf("unregistered certificate: %v", err)
		}
	}
	if _, err := s.AssertionToken(ctx, assertionReq(app.AppID, assertion(t, c, certClaims(app.AppID, now), nil))); !errors.Is(err, identity.ErrLockedOut) {
		t.Fatalf("good assertion after %d failures: %v, want a lockout", identity.ClientFailureLimit, err)
	}
}

func splitJWT(s string) []string { return strings.SplitN(s, ".", 3) }

// Removing a certificate revokes its tokens at once, here and (through the applied keys) on
// another node; a token of a client secret of the same application is untouched.
func TestAssertion_RemovingCertificateRevokes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	clk := newFakeClock()
	s := e.service(t, identity.Options{Now: clk.Now}, false)
	other := e.service(t, identity.Options{Now: clk.Now}, false)
	now := clk.Now()
	app, _, c, kc := certApp(t, s, now)
	pc, err := s.AddPassword(ctx, app.ID, "pw", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.AssertionToken(ctx, assertionReq(app.AppID, assertion(t, c, certClaims(app.AppID, now), nil)))
	if err != nil {
		t.Fatal(err)
	}
	secretTok := appToken(t, s, app.AppID, pc.SecretText)
	if err := other.KeysApplied(ctx, []string{keyring.RingKey}); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []*identity.Service{s, other} {
		if _, err := svc.Verify(ctx, tok.AccessToken, []string{vaultAudience}); err != nil {
			t.Fatalf("before removal: %v", err)
		}
	}
	got, err := s.GetApplication(ctx, app.ID)
	if err != nil || len(got.PasswordCredentials) != 1 {
		t.Fatalf("application shows %d password credentials, want only its own 1 (%v)", len(got.PasswordCredentials), err)
	}
	if err := s.RemoveKeyCredential(ctx, app.AppID, kc.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok.AccessToken, []string{vaultAudience}); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("after removal, writer: %v", err)
	}
	sp, err := s.GetServicePrincipal(ctx, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.KeysApplied(ctx, []string{"id/principal/" + sp.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(ctx, tok.AccessToken, []string{vaultAudience}); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("after removal, other node: %v", err)
	}
	if _, err := s.Verify(ctx, secretTok, []string{vaultAudience}); err != nil {
		t.Fatalf("client secret token after certificate removal: %v", err)
	}
	if _, err := s.AssertionToken(ctx, assertionReq(app.AppID, assertion(t, c, certClaims(app.AppID, now), nil))); !errors.Is(err, identity.ErrUnknownCertificate) {
		t.Fatalf("sign-in with the removed certificate: %v", err)
	}
}

func TestAssertion_SetKeyCredentials(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	now := clk.Now()
	app, _, c, kc := certApp(t, s, now)
	tok, err := s.AssertionToken(ctx, assertionReq(app.AppID, assertion(t, c, certClaims(app.AppID, now), nil)))
	if err != nil {
		t.Fatal(err)
	}
	c2 := newTestCert(t, rsaKey(t, 1), now.Add(-time.Hour), now.Add(24*time.Hour))
	// Keep the held one by keyId, add another.
	got, err := s.SetKeyCredentials(ctx, app.ID, []identity.KeyCredentialInput{{KeyID: kc.KeyID},
		{Type: "AsymmetricX509Cert", Usage: "Verify", Key: c2.der}})
	if err != nil || len(got) != 2 {
		t.Fatalf("SetKeyCredentials = %d, %v", len(got), err)
	}
	if _, err := s.Verify(ctx, tok.AccessToken, []string{vaultAudience}); err != nil {
		t.Fatalf("kept certificate's token: %v", err)
	}
	// Replace with only the new one: the old one's token stops verifying.
	if _, err := s.SetKeyCredentials(ctx, app.ID, []identity.KeyCredentialInput{{KeyID: got[1].KeyID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok.AccessToken, []string{vaultAudience}); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("dropped certificate's token: %v", err)
	}
	list, err := s.ListKeyCredentials(ctx, app.AppID)
	if err != nil || len(list) != 1 || list[0].KeyID != got[1].KeyID {
		t.Fatalf("ListKeyCredentials = %+v, %v", list, err)
	}
	for name, in := range map[string]identity.KeyCredentialInput{
		"unknown keyId":  {KeyID: uuid.NewString()},
		"symmetric type": {Type: "Symmetric", Usage: "Verify", Key: c2.der},
		"sign usage":     {Type: "AsymmetricX509Cert", Usage: "Sign", Key: c2.der},
		"not a cert":     {Type: "AsymmetricX509Cert", Usage: "Verify", Key: []byte("junk")},
		"expired cert": {Type: "AsymmetricX509Cert", Usage: "Verify",
			Key: newTestCert(t, rsaKey(t, 2), now.Add(-48*time.Hour), now.Add(-time.Hour)).der},
	} {
		if _, err := s.SetKeyCredentials(ctx, app.ID, []identity.KeyCredentialInput{in}); !errors.Is(err, identity.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
}

// A disabled principal gets no token from a valid assertion; an unknown client id is unknown.
func TestAssertion_DisabledAndUnknown(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	now := clk.Now()
	app, _, c, _ := certApp(t, s, now)
	if _, err := s.SetServicePrincipalEnabled(ctx, app.AppID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AssertionToken(ctx, assertionReq(app.AppID, assertion(t, c, certClaims(app.AppID, now), nil))); !errors.Is(err, identity.ErrPrincipalDisabled) {
		t.Fatalf("disabled: %v", err)
	}
	unknown := uuid.NewString()
	if _, err := s.AssertionToken(ctx, assertionReq(unknown, assertion(t, c, certClaims(unknown, now), nil))); !errors.Is(err, identity.ErrUnknownClient) {
		t.Fatalf("unknown client: %v", err)
	}
}

// A client assertion used on one node is refused on another (the jti is recorded in the
// store), until its lifetime has passed.
func TestAssertion_ReplayAcrossNodes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	clk := newFakeClock()
	s := e.service(t, identity.Options{Now: clk.Now}, false)
	other := e.service(t, identity.Options{Now: clk.Now}, false)
	now := clk.Now()
	app, _, c, _ := certApp(t, s, now)
	a := assertion(t, c, certClaims(app.AppID, now), nil)
	if _, err := s.AssertionToken(ctx, assertionReq(app.AppID, a)); err != nil {
		t.Fatal(err)
	}
	if _, err := other.AssertionToken(ctx, assertionReq(app.AppID, a)); !errors.Is(err, identity.ErrAssertionReplayed) {
		t.Fatalf("replay on another node: %v", err)
	}
	// A fresh assertion still works on the other node.
	if _, err := other.AssertionToken(ctx, assertionReq(app.AppID, assertion(t, c, certClaims(app.AppID, now), nil))); err != nil {
		t.Fatalf("fresh assertion on the other node: %v", err)
	}
}
