package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

// flowApp is an application and service principal made through Graph for a token flow test.
type flowApp struct {
	objectID, appID, spID string
}

func (e *env) graphApp(t *testing.T, g *graphClient, admin, name string) flowApp {
	t.Helper()
	app := g.must(admin, "POST", "/v1.0/applications", `{"displayName":"`+name+`"}`, 201)
	a := flowApp{objectID: app["id"].(string), appID: app["appId"].(string)}
	a.spID = g.must(admin, "POST", "/v1.0/servicePrincipals", `{"appId":"`+a.appID+`"}`, 201)["id"].(string)
	return a
}

// vaultWithSecret makes an RBAC vault holding secret "db" and gives the service principal spID
// Key Vault Secrets User on it.
func (e *env) vaultWithSecret(t *testing.T, rg, vault, spID string) {
	t.Helper()
	e.vaultWithSecretFor(t, rg, vault, spID, "ServicePrincipal")
}

func (e *env) vaultWithSecretFor(t *testing.T, rg, vault, principalID, principalType string) {
	t.Helper()
	ctx := context.Background()
	kv := e.createVault(t, rg, vault, nil)
	if _, err := kv.SetSecret(ctx, "db", azsecrets.SetSecretParameters{Value: to.Ptr("s3cret")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rbacClients(t, e.cred).assignAs(ctx, e.vaultScope(rg, vault), rbac.KeyVaultSecretsUserID, principalID, principalType); err != nil {
		t.Fatal(err)
	}
}

func (e *env) clientOptions() azcore.ClientOptions {
	return policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.publicURL + "/"}, Transport: e.hc}
}

// dataScope is the data plane's token scope, as the SDK's challenge names it.
func (e *env) dataScope() policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost:" + portOf(e.publicURL) + "/.default"}}
}

func portOf(u string) string { return u[strings.LastIndex(u, ":")+1:] }

// readWith reads secret "db" of vault with raw bearer tok and returns the status.
func (e *env) readWith(t *testing.T, vault, tok string) int {
	t.Helper()
	req, err := http.NewRequest("GET", strings.TrimSuffix(e.srv.VaultURL(vault), "/")+"/secrets/db?api-version=7.5", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(resp.Body)
		t.Logf("read %s: %d %s", vault, resp.StatusCode, body)
	}
	return resp.StatusCode
}

func selfSignedRSA(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "billing-api"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// The official ClientCertificateCredential (MSAL's PS256 client assertion with x5t#S256)
// reads a secret once the application holds a certificate (PATCH keyCredentials), and its
// token stops working on the request after the certificate is removed.
func TestTokenFlows_ClientCertificateCredential(t *testing.T) {
	recordClient(t, "go", "azidentity ClientCertificateCredential")
	e := newEnv(t, nil)
	ctx := context.Background()
	g := &graphClient{t: t, hc: e.srv.HTTP2Client(), origin: e.publicURL}
	admin := g.token(e.cred)
	app := e.graphApp(t, g, admin, "cert-api")
	e.vaultWithSecret(t, "flows", "certvault", app.spID)

	cert, key := selfSignedRSA(t)
	g.must(admin, "PATCH", "/v1.0/applications/"+app.objectID, `{"keyCredentials":[{"type":"AsymmetricX509Cert","usage":"Verify",
		"displayName":"ci","key":"`+base64.StdEncoding.EncodeToString(cert.Raw)+`"}]}`, 204)

	cred, err := azidentity.NewClientCertificateCredential(e.srv.Admin.TenantID, app.appID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.clientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	kv := e.srv.Secrets("certvault", cred, e.hc)
	got, err := kv.GetSecret(ctx, "db", "", nil)
	if err != nil || got.Value == nil || *got.Value != "s3cret" {
		t.Fatalf("GetSecret with ClientCertificateCredential = %v, %v", got.Value, err)
	}
	tok, err := cred.GetToken(ctx, e.dataScope())
	if err != nil {
		t.Fatal(err)
	}
	if c := claimsOf(t, tok.Token); c["oid"] != app.spID || c["appid"] != app.appID || c["sr_cred"] == "" {
		t.Fatalf("certificate token claims = %v", c)
	}
	// The token's credential is the certificate: removing it (PATCH with none) revokes it.
	g.must(admin, "PATCH", "/v1.0/applications/"+app.objectID, `{"keyCredentials":[]}`, 204)
	if status := e.readWith(t, "certvault", tok.Token); status != http.StatusUnauthorized {
		t.Fatalf("read with the removed certificate's token = %d, want 401", status)
	}
	fresh, err := azidentity.NewClientCertificateCredential(e.srv.Admin.TenantID, app.appID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.clientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.GetToken(ctx, e.dataScope()); err == nil || !strings.Contains(err.Error(), "AADSTS700027") {
		t.Fatalf("sign-in with the removed certificate: %v, want AADSTS700027", err)
	}

	// addKey / removeKey do the same one credential at a time.
	added := g.must(admin, "POST", "/v1.0/applications/"+app.objectID+"/addKey", `{"keyCredential":{"type":"AsymmetricX509Cert","usage":"Verify",
		"key":"`+base64.StdEncoding.EncodeToString(cert.Raw)+`"},"passwordCredential":null,"proof":""}`, 200)
	keyID, _ := added["keyId"].(string)
	tok2, err := fresh.GetToken(ctx, e.dataScope())
	if err != nil || claimsOf(t, tok2.Token)["sr_cred"] != keyID {
		t.Fatalf("token after addKey: %v (want sr_cred %s)", err, keyID)
	}
	if status := e.readWith(t, "certvault", tok2.Token); status != http.StatusOK {
		t.Fatalf("read after addKey = %d", status)
	}
	g.must(admin, "POST", "/v1.0/applications/"+app.objectID+"/removeKey", `{"keyId":"`+keyID+`","proof":""}`, 204)
	if status := e.readWith(t, "certvault", tok2.Token); status != http.StatusUnauthorized {
		t.Fatalf("read after removeKey = %d, want 401", status)
	}
}

// testOIDC is an external OpenID Connect issuer on 127.0.0.1 over TLS (discovery + JWKS), as
// a Kubernetes cluster's service account issuer is.
type testOIDC struct {
	srv     *httptest.Server
	key     *ecdsa.PrivateKey
	kid     string
	fetches atomic.Int32
	caFile  string
}

func startOIDC(t *testing.T) *testOIDC {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o := &testOIDC{key: key, kid: uuid.NewString()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		o.fetches.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"issuer": o.srv.URL, "jwks_uri": o.srv.URL + "/openid/v1/jwks",
			"id_token_signing_alg_values_supported": []string{"ES256"}})
	})
	mux.HandleFunc("GET /openid/v1/jwks", func(w http.ResponseWriter, _ *http.Request) {
		o.fetches.Add(1)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: o.kid, Algorithm: "ES256", Use: "sig"}}})
	})
	o.srv = httptest.NewTLSServer(mux)
	t.Cleanup(o.srv.Close)
	o.caFile = filepath.Join(t.TempDir(), "oidc-ca.pem")
	if err := os.WriteFile(o.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return o
}

// tokenFile writes a projected service account token for sub and returns its path.
func (o *testOIDC) tokenFile(t *testing.T, iss, sub string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": iss, "sub": sub, "aud": []string{"api://AzureADTokenExchange"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	tok.Header["kid"] = o.kid
	raw, err := tok.SignedString(o.key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const workloadSubject = "system:serviceaccount:prod:billing-worker"

// The official WorkloadIdentityCredential, with a token file from an external OIDC issuer the
// server reaches over HTTPS (trusting the issuer's CA through STRONGROOM_FEDERATION_CA_FILE),
// reads a secret; another subject or an unregistered issuer is refused with Entra's codes
// (the unregistered one without being fetched); deleting the federated credential revokes.
func TestTokenFlows_WorkloadIdentityCredential(t *testing.T) {
	recordClient(t, "go", "azidentity WorkloadIdentityCredential")
	oidc := startOIDC(t)
	stranger := startOIDC(t)
	e := newEnv(t, &testenv.Options{Env: []string{"STRONGROOM_FEDERATION_CA_FILE=" + oidc.caFile}})
	ctx := context.Background()
	g := &graphClient{t: t, hc: e.srv.HTTP2Client(), origin: e.publicURL}
	admin := g.token(e.cred)
	app := e.graphApp(t, g, admin, "billing-worker")
	e.vaultWithSecret(t, "flows", "wivault", app.spID)

	fic := g.must(admin, "POST", "/v1.0/applications/"+app.objectID+"/federatedIdentityCredentials",
		`{"name":"aks-prod","issuer":"`+oidc.srv.URL+`","subject":"`+workloadSubject+`","audiences":["api://AzureADTokenExchange"]}`, 201)
	if fic["id"] == "" || fic["issuer"] != oidc.srv.URL {
		t.Fatalf("created federated credential = %v", fic)
	}
	list := g.must(admin, "GET", "/v1.0/applications/"+app.objectID+"/federatedIdentityCredentials", "", 200)
	if v, _ := list["value"].([]any); len(v) != 1 {
		t.Fatalf("federated credentials = %v", list)
	}
	newCred := func(tokenFile string) *azidentity.WorkloadIdentityCredential {
		c, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: e.clientOptions(),
			ClientID: app.appID, TenantID: e.srv.Admin.TenantID, TokenFilePath: tokenFile, DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cred := newCred(oidc.tokenFile(t, oidc.srv.URL, workloadSubject))
	got, err := e.srv.Secrets("wivault", cred, e.hc).GetSecret(ctx, "db", "", nil)
	if err != nil || got.Value == nil || *got.Value != "s3cret" {
		t.Fatalf("GetSecret with WorkloadIdentityCredential = %v, %v", got.Value, err)
	}
	if oidc.fetches.Load() == 0 {
		t.Fatal("the issuer's discovery and keys were never fetched")
	}
	tok, err := cred.GetToken(ctx, e.dataScope())
	if err != nil {
		t.Fatal(err)
	}
	if c := claimsOf(t, tok.Token); c["oid"] != app.spID || c["sr_cred"] != fic["id"] {
		t.Fatalf("workload token claims = %v", c)
	}

	if _, err := newCred(oidc.tokenFile(t, oidc.srv.URL, "system:serviceaccount:prod:other")).GetToken(ctx, e.dataScope()); err == nil ||
		!strings.Contains(err.Error(), "AADSTS700213") {
		t.Fatalf("another subject: %v, want AADSTS700213", err)
	}
	if _, err := newCred(stranger.tokenFile(t, stranger.srv.URL, workloadSubject)).GetToken(ctx, e.dataScope()); err == nil ||
		!strings.Contains(err.Error(), "AADSTS700211") {
		t.Fatalf("unregistered issuer: %v, want AADSTS700211", err)
	}
	if n := stranger.fetches.Load(); n != 0 {
		t.Fatalf("the unregistered issuer was fetched %d times", n)
	}

	g.must(admin, "DELETE", "/v1.0/applications/"+app.objectID+"/federatedIdentityCredentials/aks-prod", "", 204)
	if status := e.readWith(t, "wivault", tok.Token); status != http.StatusUnauthorized {
		t.Fatalf("read after deleting the federated credential = %d, want 401", status)
	}
}

// The official DeviceCodeCredential, for a user holding Key Vault Secrets User: the user signs
// in at the server's /devicelogin page with UPN and password and the code, and the credential's
// polling gets a token that reads the secret. An application without a directory role may not
// register credentials on its own application.
func TestTokenFlows_DeviceCodeCredential(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	g := &graphClient{t: t, hc: e.srv.HTTP2Client(), origin: e.publicURL}
	admin := g.token(e.cred)
	user := g.must(admin, "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"Dev","mailNickname":"dev",
		"userPrincipalName":"dev@contoso.com","passwordProfile":{"password":"Passw0rd!!"}}`, 201)
	e.vaultWithSecretFor(t, "flows", "dcvault", user["id"].(string), "User")

	signedIn := make(chan int, 1)
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{ClientOptions: e.clientOptions(),
		TenantID: e.srv.Admin.TenantID, ClientID: azCLIClientID, DisableInstanceDiscovery: true,
		UserPrompt: func(_ context.Context, m azidentity.DeviceCodeMessage) error {
			go func() {
				form := url.Values{"user_code": {m.UserCode}, "username": {"dev@contoso.com"}, "password": {"Passw0rd!!"}, "decision": {"approve"}}
				resp, err := e.hc.PostForm(m.VerificationURL, form)
				if err != nil {
					signedIn <- 0
					return
				}
				resp.Body.Close()
				signedIn <- resp.StatusCode
			}()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.srv.Secrets("dcvault", cred, e.hc).GetSecret(ctx, "db", "", nil)
	if err != nil || got.Value == nil || *got.Value != "s3cret" {
		t.Fatalf("GetSecret with DeviceCodeCredential = %v, %v", got.Value, err)
	}
	if status := <-signedIn; status != http.StatusOK {
		t.Fatalf("device sign-in page answered %d", status)
	}

	// Credentials are directory writes: an application without a directory role is refused.
	app := e.graphApp(t, g, admin, "no-role")
	pw := g.must(admin, "POST", "/v1.0/applications/"+app.objectID+"/addPassword", `{}`, 200)
	appTok := g.token(e.srv.CredentialFor(e.hc, app.appID, pw["secretText"].(string)))
	g.must(appTok, "POST", "/v1.0/applications/"+app.objectID+"/federatedIdentityCredentials",
		`{"name":"x","issuer":"https://issuer.example","subject":"s"}`, 403)
	g.must(appTok, "PATCH", "/v1.0/applications/"+app.objectID, `{"keyCredentials":[]}`, 403)
}
