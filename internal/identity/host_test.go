package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/strongroom/strongroom/internal/identity"
)

// testHost is a registered host's side: its key and certificate.
type testHost struct {
	name string
	key  *ecdsa.PrivateKey
	cert []byte // DER
}

func csrFor(t *testing.T, name string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func registerHost(t *testing.T, s *identity.Service, name string) testHost {
	t.Helper()
	ctx := context.Background()
	_, token, _, err := s.RegisterHost(ctx, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	key, csr := csrFor(t, name)
	_, certPEM, _, err := s.RedeemHostRegistration(ctx, token, csr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	return testHost{name: name, key: key, cert: b.Bytes}
}

// assertion signs a host assertion for body, with claims changed by edit.
func (h testHost) assertion(t *testing.T, now time.Time, body []byte, edit func(map[string]any)) string {
	t.Helper()
	sum := sha256.Sum256(h.cert)
	bh := sha256.Sum256(body)
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := map[string]any{"iss": h.name, "sub": h.name, "aud": identity.HostAssertionAudience, "iat": now.Unix(),
		"exp": now.Add(2 * time.Minute).Unix(), "jti": hex.EncodeToString(jti), "bh": base64.RawURLEncoding.EncodeToString(bh[:])}
	if edit != nil {
		edit(claims)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: h.key, KeyID: hex.EncodeToString(sum[:])}},
		(&jose.SignerOptions{}).WithType(identity.HostAssertionType))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestManagedIdentityLifecycle(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	mi, created, err := s.PutManagedIdentity(ctx, "prod", "billing-worker", "westeurope", map[string]string{"team": "billing"})
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	if !guidRE.MatchString(mi.PrincipalID) || !guidRE.MatchString(mi.ClientID) || mi.TenantID != s.TenantID() {
		t.Fatalf("ids: %+v", mi)
	}
	if want := "/subscriptions/" + s.SubscriptionID() + "/resourceGroups/prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/billing-worker"; mi.ResourceID != want {
		t.Fatalf("resource id %q, want %q", mi.ResourceID, want)
	}
	if of, ok := s.ManagedIdentityOf(ctx, mi.PrincipalID); !ok || of.ResourceID != mi.ResourceID {
		t.Fatalf("ManagedIdentityOf: %+v %v", of, ok)
	}
	if _, ok := s.ManagedIdentityOf(ctx, s.AdminObjectID()); ok {
		t.Fatal("the admin is no managed identity")
	}
	if typ, ok := s.PrincipalType(mi.PrincipalID); !ok || typ != identity.TypeServicePrincipal {
		t.Fatalf("principal type %q %v", typ, ok)
	}
	again, created, err := s.PutManagedIdentity(ctx, "PROD", "Billing-Worker", "eastus", nil)
	if err != nil || created || again.PrincipalID != mi.PrincipalID || again.Location != "westeurope" || len(again.Tags) != 0 {
		t.Fatalf("update: %+v created=%v err=%v", again, created, err)
	}
	// No secret ever: the token endpoint refuses its client id whatever secret is sent.
	if _, err := s.ClientCredentials(ctx, "", mi.ClientID, "anything", "https://vault.azure.net/.default"); !errors.Is(err, identity.ErrInvalidClient) {
		t.Fatalf("client credentials for a managed identity: %v", err)
	}
	if _, _, err := s.PutManagedIdentity(ctx, "prod", "x", "westeurope", nil); !errors.Is(err, identity.ErrInvalidInput) {
		t.Fatalf("short name: %v", err)
	}
	if _, _, err := s.PutManagedIdentity(ctx, "other", "second-one", "westeurope", nil); err != nil {
		t.Fatal(err)
	}
	all, _ := s.ListManagedIdentities(ctx, "")
	inProd, _ := s.ListManagedIdentities(ctx, "prod")
	if len(all) != 2 || len(inProd) != 1 {
		t.Fatalf("lists: all %d prod %d", len(all), len(inProd))
	}
	if err := s.DeleteManagedIdentity(ctx, "prod", "billing-worker"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetManagedIdentity(ctx, "prod", "billing-worker"); !errors.Is(err, identity.ErrObjectNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, ok := s.PrincipalType(mi.PrincipalID); ok {
		t.Fatal("the principal outlived its identity")
	}
	if _, ok := s.ManagedIdentityOf(ctx, mi.PrincipalID); ok {
		t.Fatal("the index outlived its identity")
	}
}

func TestHostRegistrationTokenSingleUseAndExpiry(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clock.Now}, false)
	h, token, created, err := s.RegisterHost(ctx, "web-1", 10*time.Minute)
	if err != nil || !created || h.Registered || h.RegistrationExpiresOn.IsZero() {
		t.Fatalf("register: %+v %v %v", h, created, err)
	}
	_, csr := csrFor(t, "web-1")
	cases := []struct {
		name  string
		token string
	}{
		{"garbage", "nope"},
		{"unknown host", strings.Replace(token, "web-1", "web-2", 1)},
		{"wrong secret part", token[:len(token)-2] + "AA"},
	}
	for _, c := range cases {
		if _, _, _, err := s.RedeemHostRegistration(ctx, c.token, csr); !errors.Is(err, identity.ErrBadRegistrationToken) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	h, certPEM, caPEM, err := s.RedeemHostRegistration(ctx, token, csr)
	if err != nil || !h.Registered || len(certPEM) == 0 || len(caPEM) == 0 {
		t.Fatalf("redeem: %+v %v", h, err)
	}
	cb, _ := pem.Decode(certPEM)
	cert, _ := x509.ParseCertificate(cb.Bytes)
	ab, _ := pem.Decode(caPEM)
	ca, _ := x509.ParseCertificate(ab.Bytes)
	if cert.Subject.CommonName != "web-1" || cert.CheckSignatureFrom(ca) != nil {
		t.Fatalf("certificate %v names %q", cert.CheckSignatureFrom(ca), cert.Subject.CommonName)
	}
	if _, _, _, err := s.RedeemHostRegistration(ctx, token, csr); !errors.Is(err, identity.ErrBadRegistrationToken) {
		t.Fatalf("second redemption: %v", err)
	}
	// A new registration of the same host expires unused.
	_, token2, created, err := s.RegisterHost(ctx, "web-1", time.Minute)
	if err != nil || created {
		t.Fatal(err, created)
	}
	clock.Advance(time.Minute + time.Second)
	if _, _, _, err := s.RedeemHostRegistration(ctx, token2, csr); !errors.Is(err, identity.ErrBadRegistrationToken) {
		t.Fatalf("expired token: %v", err)
	}
	// A key that cannot sign host assertions is refused, and the token is not spent on it.
	_, token3, _, _ := s.RegisterHost(ctx, "web-1", time.Minute)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	weak, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "web-1"}}, p384)
	if _, _, _, err := s.RedeemHostRegistration(ctx, token3, weak); !errors.Is(err, identity.ErrInvalidInput) {
		t.Fatalf("a P-384 key: %v", err)
	}
	if _, _, _, err := s.RedeemHostRegistration(ctx, token3, csr); err != nil {
		t.Fatalf("the token after a refused request: %v", err)
	}
	if _, _, _, err := s.RegisterHost(ctx, "web-1", 25*time.Hour); !errors.Is(err, identity.ErrInvalidInput) {
		t.Fatalf("ttl past the maximum: %v", err)
	}
	if _, _, _, err := s.RegisterHost(ctx, "bad/name", 0); !errors.Is(err, identity.ErrInvalidInput) {
		t.Fatalf("bad name: %v", err)
	}
}

func TestHostTokensFollowAssignments(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clock.Now}, false)
	vault := []string{"https://vault.azure.net"}
	a, _, _ := s.PutManagedIdentity(ctx, "prod", "worker-a", "westeurope", nil)
	b, _, _ := s.PutManagedIdentity(ctx, "prod", "worker-b", "westeurope", nil)
	web := registerHost(t, s, "web-1")
	other := registerHost(t, s, "web-2")

	if _, _, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{}, "https://vault.azure.net", ""); !errors.Is(err, identity.ErrNoHostIdentity) {
		t.Fatalf("no identity: %v", err)
	}
	if _, err := s.AssignHostIdentity(ctx, "web-1", "prod", "worker-a"); err != nil {
		t.Fatal(err)
	}
	tok, hi, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{}, "https://vault.azure.net", "")
	if err != nil || hi.ClientID != a.ClientID || tok.ObjectID != a.PrincipalID {
		t.Fatalf("mint: %+v %v", hi, err)
	}
	c, err := s.Verify(ctx, tok.AccessToken, vault)
	if err != nil || c.Principal.ObjectID != a.PrincipalID || c.Principal.AppID != a.ClientID {
		t.Fatalf("verify: %+v %v", c, err)
	}
	// The token the agent holds is answered again while it may be, and not for another audience.
	if again, _, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{}, "https://vault.azure.net", tok.AccessToken); err != nil || again.AccessToken != tok.AccessToken {
		t.Fatalf("reuse: %v (same token: %v)", err, again.AccessToken == tok.AccessToken)
	}
	if arm, _, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{}, "https://management.azure.com", tok.AccessToken); err != nil || arm.AccessToken == tok.AccessToken {
		t.Fatalf("reuse for another audience: %v", err)
	}
	clock.Advance(56 * time.Minute)
	if fresh, _, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{}, "https://vault.azure.net", tok.AccessToken); err != nil || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("a token near expiry was answered again: %v", err)
	}
	// Not assigned to web-2, and web-1 may not act as b.
	if _, _, err := s.MintHostToken(ctx, "web-2", identity.HostIdentitySelector{ClientID: a.ClientID}, "https://vault.azure.net", ""); !errors.Is(err, identity.ErrIdentityNotAssigned) {
		t.Fatalf("other host: %v", err)
	}
	if _, _, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{ObjectID: b.PrincipalID}, "https://vault.azure.net", ""); !errors.Is(err, identity.ErrIdentityNotAssigned) {
		t.Fatalf("unassigned identity: %v", err)
	}
	if _, _, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{}, "https://evil.example", ""); !errors.Is(err, identity.ErrUnknownResource) {
		t.Fatalf("unserved resource: %v", err)
	}
	if _, err := s.AssignHostIdentity(ctx, "web-1", "prod", "worker-b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{}, "https://vault.azure.net", ""); !errors.Is(err, identity.ErrAmbiguousIdentity) {
		t.Fatalf("two identities, none named: %v", err)
	}
	if _, hi, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{ResourceID: strings.ToLower(b.ResourceID)}, "https://vault.azure.net/.default", ""); err != nil || hi.PrincipalID != b.PrincipalID {
		t.Fatalf("by mi_res_id: %+v %v", hi, err)
	}
	// The same identity on a second host: unassigning it from web-1 leaves web-2's tokens alone.
	if _, err := s.AssignHostIdentity(ctx, "web-2", "prod", "worker-a"); err != nil {
		t.Fatal(err)
	}
	tok2, _, err := s.MintHostToken(ctx, "web-2", identity.HostIdentitySelector{}, "https://vault.azure.net", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UnassignHostIdentity(ctx, "web-1", "prod", "worker-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok.AccessToken, vault); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("a token minted through an unassigned host still verifies: %v", err)
	}
	if _, err := s.Verify(ctx, tok2.AccessToken, vault); err != nil {
		t.Fatalf("web-2's token: %v", err)
	}
	if _, _, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{ClientID: a.ClientID}, "https://vault.azure.net", ""); !errors.Is(err, identity.ErrIdentityNotAssigned) {
		t.Fatalf("after unassign: %v", err)
	}
	if _, err := s.UnassignHostIdentity(ctx, "web-1", "prod", "worker-a"); !errors.Is(err, identity.ErrIdentityNotAssigned) {
		t.Fatalf("unassign twice: %v", err)
	}
	// Removing web-2 revokes its tokens and its assertions.
	body := []byte(`{"resource":"https://vault.azure.net"}`)
	if _, err := s.VerifyHostAssertion(ctx, other.assertion(t, clock.Now(), body, nil), body); err != nil {
		t.Fatalf("assertion before removal: %v", err)
	}
	if err := s.RemoveHost(ctx, "web-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok2.AccessToken, vault); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("a removed host's token still verifies: %v", err)
	}
	if _, err := s.VerifyHostAssertion(ctx, other.assertion(t, clock.Now(), body, nil), body); !errors.Is(err, identity.ErrHostNotFound) {
		t.Fatalf("assertion after removal: %v", err)
	}
	_ = web
}

func TestHostAssertionChecks(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clock.Now}, false)
	web := registerHost(t, s, "web-1")
	stranger := web
	stranger.key, _ = csrFor(t, "web-1") // same name and certificate, another key
	body := []byte(`{"resource":"https://vault.azure.net"}`)
	now := clock.Now()
	good := web.assertion(t, now, body, nil)
	if h, err := s.VerifyHostAssertion(ctx, good, body); err != nil || h.Name != "web-1" {
		t.Fatalf("good assertion: %+v %v", h, err)
	}
	cases := []struct {
		name      string
		assertion string
		body      []byte
	}{
		{"replayed", good, body},
		{"another body", web.assertion(t, now, body, nil), []byte(`{"resource":"https://management.azure.com"}`)},
		{"wrong key", stranger.assertion(t, now, body, nil), body},
		{"expired", web.assertion(t, now.Add(-10*time.Minute), body, nil), body},
		{"too long-lived", web.assertion(t, now, body, func(c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() }), body},
		{"wrong audience", web.assertion(t, now, body, func(c map[string]any) { c["aud"] = "https://vault.azure.net" }), body},
		{"issuer not the subject", web.assertion(t, now, body, func(c map[string]any) { c["iss"] = "web-2" }), body},
		{"short jti", web.assertion(t, now, body, func(c map[string]any) { c["jti"] = "1" }), body},
		{"garbage", "a.b.c", body},
	}
	for _, c := range cases {
		if _, err := s.VerifyHostAssertion(ctx, c.assertion, c.body); !errors.Is(err, identity.ErrHostCredential) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Registering again (a reinstalled host) replaces the certificate: the old key is refused.
	_, token, _, _ := s.RegisterHost(ctx, "web-1", 0)
	_, csr := csrFor(t, "web-1")
	if _, _, _, err := s.RedeemHostRegistration(ctx, token, csr); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyHostAssertion(ctx, web.assertion(t, now, body, nil), body); !errors.Is(err, identity.ErrHostCredential) {
		t.Fatalf("old certificate after re-registration: %v", err)
	}
}

// A second service on the same store stands for another cluster node: an unassignment made on
// one reaches the other through KeysApplied (the principal record the marker lives on), so a
// token minted through the host stops verifying there on the next request too.
func TestHostUnassignReachesOtherNodes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s1 := e.service(t, identity.Options{}, false)
	s2 := e.service(t, identity.Options{}, false)
	mi, _, err := s1.PutManagedIdentity(ctx, "prod", "worker-a", "westeurope", nil)
	if err != nil {
		t.Fatal(err)
	}
	registerHost(t, s1, "web-1")
	if _, err := s1.AssignHostIdentity(ctx, "web-1", "prod", "worker-a"); err != nil {
		t.Fatal(err)
	}
	principalKey := "id/principal/" + mi.PrincipalID
	if err := s2.KeysApplied(ctx, []string{principalKey}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := s2.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{}, "https://vault.azure.net", "") // any node mints
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*identity.Service{s1, s2} {
		if _, err := s.Verify(ctx, tok.AccessToken, []string{"https://vault.azure.net"}); err != nil {
			t.Fatalf("before unassigning: %v", err)
		}
	}
	if _, err := s1.UnassignHostIdentity(ctx, "web-1", "prod", "worker-a"); err != nil {
		t.Fatal(err)
	}
	if err := s2.KeysApplied(ctx, []string{principalKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Verify(ctx, tok.AccessToken, []string{"https://vault.azure.net"}); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("the other node still verifies the token: %v", err)
	}
	if _, _, err := s2.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{}, "https://vault.azure.net", tok.AccessToken); !errors.Is(err, identity.ErrNoHostIdentity) {
		t.Fatalf("the other node mints after unassigning: %v", err)
	}
}

// An identity deleted and made again under its name is a new principal: the host's old
// assignment counts for nothing and is not shown; assigning the new one works.
func TestHostForgetsDeletedIdentities(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	old, _, _ := s.PutManagedIdentity(ctx, "prod", "worker-a", "westeurope", nil)
	registerHost(t, s, "web-1")
	if _, err := s.AssignHostIdentity(ctx, "web-1", "prod", "worker-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteManagedIdentity(ctx, "prod", "worker-a"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.GetHost(ctx, "web-1"); len(h.Identities) != 0 {
		t.Fatalf("a deleted identity is still shown: %+v", h.Identities)
	}
	if _, _, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{ObjectID: old.PrincipalID}, "https://vault.azure.net", ""); !errors.Is(err, identity.ErrIdentityNotAssigned) {
		t.Fatalf("mint for a deleted identity: %v", err)
	}
	again, _, _ := s.PutManagedIdentity(ctx, "prod", "worker-a", "westeurope", nil)
	h, err := s.AssignHostIdentity(ctx, "web-1", "prod", "worker-a")
	if err != nil || len(h.Identities) != 1 || h.Identities[0].PrincipalID != again.PrincipalID {
		t.Fatalf("assigning the new identity: %+v %v", h.Identities, err)
	}
	if _, hi, err := s.MintHostToken(ctx, "web-1", identity.HostIdentitySelector{}, "https://vault.azure.net", ""); err != nil || hi.PrincipalID != again.PrincipalID {
		t.Fatalf("mint for the new identity: %+v %v", hi, err)
	}
}
