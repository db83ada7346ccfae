package test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/seal"
	"github.com/strongroom/strongroom/internal/store/bolt"
	"github.com/strongroom/strongroom/internal/testenv"
)

// TestForgery_Catalogue sends every kind of forged, foreign, stale or revoked token to a real
// server and checks each is refused (401 at the data plane, Entra's error at the token
// endpoint) and audited. Tokens that need the server's own signing key with wrong claims are
// minted offline by an identity service opened over the stopped server's store with a shifted
// clock or another public URL, then presented to the restarted server.
func TestForgery_Catalogue(t *testing.T) {
	oidc := startOIDC(t)
	stranger := startOIDC(t)
	e := newEnv(t, &testenv.Options{Env: []string{"STRONGROOM_FEDERATION_CA_FILE=" + oidc.caFile}})
	ctx := context.Background()
	g := &graphClient{t: t, hc: e.srv.HTTP2Client(), origin: e.publicURL}
	admin := g.token(e.cred)
	tenant := e.srv.Admin.TenantID
	tokenURL := e.publicURL + "/" + tenant + "/oauth2/v2.0/token"
	scope := e.dataScope().Scopes[0]

	// Principals whose tokens are revoked below, each holding Key Vault Secrets User.
	type victim struct {
		app    flowApp
		keyID  string
		bearer string
	}
	victims := map[string]*victim{}
	for i, name := range []string{"deleted", "disabled", "secret-removed"} {
		a := e.graphApp(t, g, admin, "forgery-"+name)
		pw := g.must(admin, "POST", "/v1.0/applications/"+a.objectID+"/addPassword", `{"passwordCredential":{"displayName":"ci"}}`, 200)
		if i == 0 {
			e.vaultWithSecret(t, "forgery", "forgevault", a.spID)
		} else if _, err := e.rbacClients(t, e.cred).assign(ctx, e.vaultScope("forgery", "forgevault"), rbac.KeyVaultSecretsUserID, a.spID); err != nil {
			t.Fatal(err)
		}
		tok, err := e.srv.CredentialFor(e.hc, a.appID, pw["secretText"].(string)).GetToken(ctx, e.dataScope())
		if err != nil {
			t.Fatal(err)
		}
		victims[name] = &victim{app: a, keyID: pw["keyId"].(string), bearer: tok.Token}
		if status := e.readWith(t, "forgevault", tok.Token); status != http.StatusOK {
			t.Fatalf("%s reads before revocation: %d", name, status)
		}
	}
	// A federated application and a certificate application for the token-endpoint rows.
	wi := e.graphApp(t, g, admin, "forgery-workload")
	g.must(admin, "POST", "/v1.0/applications/"+wi.objectID+"/federatedIdentityCredentials",
		`{"name":"k8s","issuer":"`+oidc.srv.URL+`","subject":"`+workloadSubject+`"}`, 201)
	certApp := e.graphApp(t, g, admin, "forgery-cert")
	cert, certKey := selfSignedRSA(t)
	g.must(admin, "PATCH", "/v1.0/applications/"+certApp.objectID, `{"keyCredentials":[{"type":"AsymmetricX509Cert","usage":"Verify","key":"`+
		base64.StdEncoding.EncodeToString(cert.Raw)+`"}]}`, 204)

	adminTok, err := e.cred.GetToken(ctx, e.dataScope())
	if err != nil {
		t.Fatal(err)
	}
	armTok, err := e.cred.GetToken(ctx, policyScopes("https://management.core.windows.net//.default"))
	if err != nil {
		t.Fatal(err)
	}
	other := newEnv(t, nil) // another deployment: another tenant
	foreignTok, err := other.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		t.Fatal(err)
	}
	jwks := e.serverJWKS(t, tenant)

	// Offline: the server's own key, wrong claims.
	e.srv.Stop()
	expired := e.offlineToken(t, "", -3*time.Hour, scope)
	early := e.offlineToken(t, "", time.Hour, scope)
	wrongIssuer := e.offlineToken(t, "https://login.evil.localhost", 0, scope)
	e.srv.StartAgain()

	// The revocations.
	g.must(admin, "DELETE", "/v1.0/applications/"+victims["deleted"].app.objectID, "", 204)
	g.must(admin, "PATCH", "/v1.0/servicePrincipals/"+victims["disabled"].app.spID, `{"accountEnabled":false}`, 204)
	g.must(admin, "POST", "/v1.0/applications/"+victims["secret-removed"].app.objectID+"/removePassword", `{"keyId":"`+victims["secret-removed"].keyID+`"}`, 204)

	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	hdr, payload, sig := splitToken(t, adminTok.Token)
	bearers := []struct {
		name, token, reason string
	}{
		{"alg=none", b64json(t, map[string]any{"alg": "none", "typ": "JWT", "kid": jwks.kid}) + "." + payload + ".", "malformed token"},
		{"HS256 keyed with the server's public key", hmacWithPublicKey(t, jwks, payload), "malformed token"},
		{"unknown kid", resign(t, attacker, uuid.NewString(), payload), "unknown signing key"},
		{"attacker key under the server's kid", resign(t, attacker, jwks.kid, payload), "bad signature"},
		{"wrong issuer", wrongIssuer, "wrong issuer"},
		{"wrong audience (an ARM token)", armTok.Token, "wrong audience"},
		{"token of another tenant", foreignTok.Token, "unknown signing key"},
		{"expired", expired, "expired"},
		{"not yet valid", early, "not yet valid"},
		{"tampered payload (oid of another principal)", hdr + "." + editClaims(t, payload, "oid", victims["disabled"].app.spID) + "." + sig, "bad signature"},
		{"signature stripped", hdr + "." + payload + ".", "bad signature"},
		{"deleted principal", victims["deleted"].bearer, "unknown principal"},
		{"disabled principal", victims["disabled"].bearer, "principal disabled"},
		{"removed client secret", victims["secret-removed"].bearer, "credential removed"},
		{"an external issuer's token as a bearer", readFile(t, oidc.tokenFile(t, oidc.srv.URL, workloadSubject)), "malformed token"},
	}
	corr := map[string]string{} // case -> correlation id
	for _, b := range bearers {
		t.Run("bearer/"+b.name, func(t *testing.T) {
			id := uuid.NewString()
			corr[b.name] = id
			status, body := e.readAs(t, "forgevault", b.token, id)
			if status != http.StatusUnauthorized || !strings.Contains(body, "invalid token: "+b.reason) {
				t.Fatalf("got %d %s, want 401 naming %q", status, body, b.reason)
			}
		})
	}
	// The genuine token still reads: the forgeries were refused for what they are.
	if status := e.readWith(t, "forgevault", adminTok.Token); status != http.StatusOK {
		t.Fatalf("the genuine admin token: %d", status)
	}

	// Token endpoint: federated assertions with the wrong subject or from an unregistered
	// issuer, and a replayed client assertion.
	assertionForm := func(clientID, a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {scope},
			"client_assertion_type": {identity.ClientAssertionType}, "client_assertion": {a}}
	}
	replayed := certAssertion(t, cert, certKey, certApp.appID, tokenURL)
	if status, body := e.postToken(t, tokenURL, assertionForm(certApp.appID, replayed), ""); status != http.StatusOK {
		t.Fatalf("first use of the client assertion: %d %v", status, body)
	}
	endpoint := []struct {
		name        string
		form        url.Values
		status, sts int
		reason      string
	}{
		{"federated assertion with the wrong subject", assertionForm(wi.appID, readFile(t, oidc.tokenFile(t, oidc.srv.URL, "system:serviceaccount:prod:intruder"))),
			400, 700213, "federated assertion with an unregistered subject"},
		{"federated assertion from an unregistered issuer", assertionForm(wi.appID, readFile(t, stranger.tokenFile(t, stranger.srv.URL, workloadSubject))),
			400, 700211, "federated assertion from an unregistered issuer"},
		{"federated assertion claiming the registered issuer, signed by another", assertionForm(wi.appID, readFile(t, stranger.tokenFile(t, oidc.srv.URL, workloadSubject))),
			401, 700027, "invalid client assertion"},
		{"replayed client assertion", assertionForm(certApp.appID, replayed), 401, 700027, "client assertion replayed"},
		{"client assertion signed by an unregistered certificate", assertionForm(certApp.appID, func() string {
			c, k := selfSignedRSA(t)
			return certAssertion(t, c, k, certApp.appID, tokenURL)
		}()), 401, 700027, "certificate not registered"},
	}
	for _, c := range endpoint {
		t.Run("token/"+c.name, func(t *testing.T) {
			id := uuid.NewString()
			corr[c.name] = id
			status, body := e.postToken(t, tokenURL, c.form, id)
			codes, _ := body["error_codes"].([]any)
			if status != c.status || len(codes) != 1 || codes[0] != float64(c.sts) {
				t.Fatalf("got %d %v, want %d AADSTS%d", status, body, c.status, c.sts)
			}
		})
	}
	if n := stranger.fetches.Load(); n != 0 {
		t.Fatalf("the unregistered issuer was fetched %d times", n)
	}

	// Every refusal is in the audit log, with its status (and, at the token endpoint, why).
	e.srv.Stop()
	recs := auditByCorrelation(t, e.srv.DataDir)
	for _, b := range bearers {
		r, ok := recs[corr[b.name]]
		if !ok || r.Status != http.StatusUnauthorized || r.Op != "Authentication" || r.Result == "Success" {
			t.Errorf("audit of %q = %+v (found %v), want an Authentication record with 401", b.name, r, ok)
		}
	}
	for _, c := range endpoint {
		r, ok := recs[corr[c.name]]
		if !ok || r.Status != c.status || !strings.Contains(r.Description, c.reason) {
			t.Errorf("audit of %q = %+v (found %v), want %d naming %q", c.name, r, ok, c.status, c.reason)
		}
	}
	t.Logf("forgery catalogue: %d bearer forgeries and %d token-endpoint forgeries refused and audited", len(bearers), len(endpoint))
}

type serverKey struct {
	kid string
	pub *rsa.PublicKey
}

func (e *env) serverJWKS(t *testing.T, tenant string) serverKey {
	t.Helper()
	resp, err := e.hc.Get(e.publicURL + "/" + tenant + "/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, N, E string } `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS: %v", err)
	}
	n, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].N)
	ex, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].E)
	return serverKey{kid: set.Keys[0].Kid, pub: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(ex).Int64())}}
}

// offlineToken mints the bootstrap admin a token with the stopped server's own signing key, by
// an identity service over its store whose clock is shifted by skew or whose public URL (and
// so issuer) is publicURL.
func (e *env) offlineToken(t *testing.T, publicURL string, skew time.Duration, scope string) string {
	t.Helper()
	ctx := context.Background()
	root, err := seal.ReadKeyFile(filepath.Join(e.srv.DataDir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.OpenWithWAL(filepath.Join(e.srv.DataDir, "strongroom.db"), bolt.WALOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, err := keyring.Load(ctx, st, root)
	if err != nil {
		t.Fatal(err)
	}
	if publicURL == "" {
		publicURL = e.publicURL
	}
	ids, err := identity.New(ctx, st, kr, identity.Options{PublicURL: publicURL, DNSSuffix: "vault.localhost",
		Now: func() time.Time { return time.Now().Add(skew) }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ids.ClientCredentials(ctx, "", e.srv.Admin.ClientID, e.srv.Admin.ClientSecret, scope)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func splitToken(t *testing.T, tok string) (hdr, payload, sig string) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatal("not a JWT")
	}
	return p[0], p[1], p[2]
}

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func editClaims(t *testing.T, payload, claim string, v any) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m[claim] = v
	return b64json(t, m)
}

// resign signs payload (base64url claims) with key under kid, RS256.
func resign(t *testing.T, key *rsa.PrivateKey, kid, payload string) string {
	t.Helper()
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	var claims jwt.MapClaims
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hmacWithPublicKey is the classic algorithm-confusion forgery: HS256 keyed with the server's
// published RSA key (PEM, as a naive verifier would load it).
func hmacWithPublicKey(t *testing.T, k serverKey, payload string) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	var claims jwt.MapClaims
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// certAssertion is a client assertion as MSAL signs it: PS256, x5t#S256, aud the token endpoint.
func certAssertion(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey, clientID, aud string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodPS256, jwt.MapClaims{"aud": aud, "iss": clientID, "sub": clientID,
		"jti": uuid.NewString(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	sum := sha256.Sum256(cert.Raw)
	tok.Header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:])
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readAs reads secret "db" with bearer tok under a client request id; status and body.
func (e *env) readAs(t *testing.T, vault, tok, requestID string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", strings.TrimSuffix(e.srv.VaultURL(vault), "/")+"/secrets/db?api-version=7.5", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("x-ms-client-request-id", requestID)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// postToken posts a token request form; status and decoded body.
func (e *env) postToken(t *testing.T, tokenURL string, form url.Values, requestID string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if requestID != "" {
		req.Header.Set("x-ms-client-request-id", requestID)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

type auditRec struct {
	Op, Result, Description string
	Status                  int
}

// auditByCorrelation reads a stopped server's audit log, keyed by correlation id.
func auditByCorrelation(t *testing.T, dataDir string) map[string]auditRec {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dataDir, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]auditRec{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			OperationName     string `json:"operationName"`
			ResultType        string `json:"resultType"`
			ResultDescription string `json:"resultDescription"`
			CorrelationID     string `json:"correlationId"`
			Properties        struct {
				Status int `json:"httpStatusCode"`
			} `json:"properties"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if rec.CorrelationID != "" {
			out[rec.CorrelationID] = auditRec{Op: rec.OperationName, Result: rec.ResultType, Description: rec.ResultDescription, Status: rec.Properties.Status}
		}
	}
	return out
}
