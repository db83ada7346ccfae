package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestCheckLoopback(t *testing.T) {
	for _, c := range []struct {
		listen string
		ok     bool
	}{
		{"127.0.0.1:42356", true},
		{"127.0.0.2:1", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"0.0.0.0:8080", false},
		{":8080", false},
		{"[::]:8080", false},
		{"10.0.0.5:8080", false},
		{"example.com:8080", false},
		{"127.0.0.1", false},
		{"127.0.0.1:http", false},
	} {
		if err := CheckLoopback(c.listen); (err == nil) != c.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok=%v", c.listen, err, c.ok)
		}
	}
}

// fakeServer plays the Strongroom server's agent routes: it signs the certificate request,
// checks each token request's assertion against that certificate, and answers per identity.
type fakeServer struct {
	t      *testing.T
	srv    *httptest.Server
	caFile string

	mu       sync.Mutex
	cert     *x509.Certificate
	requests []map[string]string
	refuse   bool // answer 403 IdentityNotAssigned
	minted   int
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test host CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+registerPath, func(w http.ResponseWriter, r *http.Request) {
		var in struct{ RegistrationToken, CSR string }
		json.NewDecoder(r.Body).Decode(&in)
		if in.RegistrationToken != "srh1.web-1.good" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":"InvalidRegistrationToken","message":"The registration token is unknown, used or expired."}}`)
			return
		}
		der, _ := base64.StdEncoding.DecodeString(in.CSR)
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil || csr.CheckSignature() != nil {
			t.Errorf("bad csr: %v", err)
		}
		certDER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: csr.Subject.CommonName},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, csr.PublicKey, caKey)
		f.mu.Lock()
		f.cert, _ = x509.ParseCertificate(certDER)
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"host": "web-1", "hostId": "h1",
			"certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})),
			"ca":          string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))})
	})
	mux.HandleFunc("POST "+tokenPath, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		jws, err := jose.ParseSigned(r.Header.Get(assertionHeader), []jose.SignatureAlgorithm{jose.ES256})
		f.mu.Lock()
		defer f.mu.Unlock()
		if err != nil || f.cert == nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if _, err := jws.Verify(f.cert.PublicKey); err != nil {
			t.Errorf("assertion signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var in map[string]string
		json.Unmarshal(body, &in)
		f.requests = append(f.requests, in)
		if f.refuse {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":{"code":"IdentityNotAssigned","message":"The requested identity is not assigned to this host."}}`)
			return
		}
		tok := in["current"]
		if tok == "" {
			f.minted++
			tok = "token-" + in["resource"] + "-" + string(rune('0'+f.minted))
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_on": time.Now().Add(time.Hour).Unix(),
			"resource": in["resource"], "token_type": "Bearer", "client_id": "11111111-1111-1111-1111-111111111111"})
	})
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o600)
	return f
}

func newTestAgent(t *testing.T, f *fakeServer) (*Agent, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agent")
	a, err := New(context.Background(), Config{Listen: "127.0.0.1:0", Server: f.srv.URL, CAFile: f.caFile, DataDir: dir,
		RegistrationToken: "srh1.web-1.good", MSIEndpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	return a, dir
}

func TestRegistrationStoresPrivateCredential(t *testing.T) {
	f := newFakeServer(t)
	a, dir := newTestAgent(t, f)
	if a.HostName() != "web-1" || len(a.IdentityHeader()) < 32 {
		t.Fatalf("host %q header %q", a.HostName(), a.IdentityHeader())
	}
	for _, name := range []string{keyFile, certFile, "identity-header"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v", name, err, fi.Mode().Perm())
		}
	}
	// A restart without a token loads the same credential and header.
	b, err := New(context.Background(), Config{Listen: "127.0.0.1:0", Server: f.srv.URL, CAFile: f.caFile, DataDir: dir})
	if err != nil || b.IdentityHeader() != a.IdentityHeader() {
		t.Fatalf("restart: %v", err)
	}
	// A spent or wrong token is refused in the server's words.
	_, err = New(context.Background(), Config{Listen: "127.0.0.1:0", Server: f.srv.URL, CAFile: f.caFile, DataDir: t.TempDir(), RegistrationToken: "srh1.web-1.used"})
	if err == nil || !strings.Contains(err.Error(), "unknown, used or expired") {
		t.Fatalf("bad token: %v", err)
	}
	// A key others can read is refused.
	os.Chmod(filepath.Join(dir, keyFile), 0o644)
	if _, err := New(context.Background(), Config{Listen: "127.0.0.1:0", Server: f.srv.URL, CAFile: f.caFile, DataDir: dir}); err == nil {
		t.Fatal("a world-readable key was accepted")
	}
	if _, err := New(context.Background(), Config{Listen: "0.0.0.0:0", Server: f.srv.URL, CAFile: f.caFile, DataDir: dir}); err == nil {
		t.Fatal("a non-loopback listen address was accepted")
	}
}

func TestProtocols(t *testing.T) {
	f := newFakeServer(t)
	a, _ := newTestAgent(t, f)
	h := a.Handler()
	do := func(method, target string, header map[string]string, body string) (*httptest.ResponseRecorder, map[string]any) {
		req := httptest.NewRequest(method, "http://127.0.0.1:4000"+target, strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		json.Unmarshal(rec.Body.Bytes(), &out)
		return rec, out
	}
	app := "/msi/token?api-version=2019-08-01&resource=" + url.QueryEscape("https://vault.azure.net")
	good := map[string]string{"X-IDENTITY-HEADER": a.IdentityHeader()}
	cases := []struct {
		name, method, target string
		header               map[string]string
		body                 string
		status               int
	}{
		{"app service", "GET", app, good, "", 200},
		{"no header", "GET", app, nil, "", 401},
		{"wrong header", "GET", app, map[string]string{"X-IDENTITY-HEADER": "x" + a.IdentityHeader()[1:]}, "", 401},
		{"wrong api-version", "GET", strings.Replace(app, "2019-08-01", "2017-09-01", 1), good, "", 400},
		{"no resource", "GET", "/msi/token?api-version=2019-08-01", good, "", 400},
		{"two selectors", "GET", app + "&client_id=a&object_id=b", good, "", 400},
		{"POST on app service", "POST", app, good, "", 405},
		{"msi post", "POST", "/oauth2/token", map[string]string{"Metadata": "true", "Content-Type": "application/x-www-form-urlencoded"}, "resource=https%3A%2F%2Fmanagement.azure.com%2F", 200},
		{"msi get", "GET", "/oauth2/token?resource=https://vault.azure.net", map[string]string{"Metadata": "true"}, "", 200},
		{"msi without metadata", "POST", "/oauth2/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "resource=x", 400},
		{"imds", "GET", "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net", map[string]string{"Metadata": "true"}, "", 200},
		{"imds without metadata", "GET", "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net", nil, "", 400},
		{"imds post", "POST", "/metadata/identity/oauth2/token?resource=x", map[string]string{"Metadata": "true"}, "", 405},
		{"other path", "GET", "/msi/token2" + app[len("/msi/token"):], good, "", 404},
	}
	for _, c := range cases {
		rec, out := do(c.method, c.target, c.header, c.body)
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, rec.Code, c.status, rec.Body)
			continue
		}
		if c.status != 200 {
			continue
		}
		if _, isString := out["expires_on"].(string); !isString || out["access_token"] == "" || out["token_type"] != "Bearer" || out["resource"] == "" || out["client_id"] == "" {
			t.Errorf("%s: answer %v", c.name, out)
		}
		if !strings.HasPrefix(c.target, "/msi/") {
			if _, ok := out["expires_in"].(string); !ok {
				t.Errorf("%s: no expires_in string: %v", c.name, out)
			}
		} else if _, ok := out["expires_in"]; ok {
			t.Errorf("%s: App Service answers carry no expires_in: %v", c.name, out)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", c.name, cc)
		}
	}
	// DNS rebinding: another Host is refused.
	req := httptest.NewRequest("GET", "http://evil.example:4000"+app, nil)
	req.Header.Set("X-IDENTITY-HEADER", a.IdentityHeader())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("rebinding host: %d", rec.Code)
	}

	// The second request for a resource sends the held token; the server decides; once it
	// refuses (the identity was unassigned), the agent refuses and forgets the token.
	_, first := do("GET", app, good, "")
	_, second := do("GET", app, good, "")
	if first["access_token"] != second["access_token"] {
		t.Fatalf("held token not reused: %v then %v", first["access_token"], second["access_token"])
	}
	f.mu.Lock()
	last := f.requests[len(f.requests)-1]
	f.refuse = true
	f.mu.Unlock()
	if last["current"] != first["access_token"] {
		t.Fatalf("the agent did not send the held token: %v", last)
	}
	if rec, _ := do("GET", app, good, ""); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "not assigned") {
		t.Fatalf("after the server refused: %d %s", rec.Code, rec.Body)
	}
	f.mu.Lock()
	f.refuse = false
	f.mu.Unlock()
	do("GET", app, good, "")
	f.mu.Lock()
	last = f.requests[len(f.requests)-1]
	f.mu.Unlock()
	if last["current"] != "" {
		t.Fatalf("a refused token was kept: %v", last)
	}
	// Nothing the agent answers contains its key.
	keyPEM, _ := os.ReadFile(filepath.Join(a.cfg.DataDir, keyFile))
	for _, c := range cases {
		rec, _ := do(c.method, c.target, c.header, c.body)
		if strings.Contains(rec.Body.String(), strings.TrimSpace(string(keyPEM))[40:80]) {
			t.Fatalf("%s leaked the host key", c.name)
		}
	}
}

// With --mtls-server the agent asks the server's host-agent listener over mutual TLS, proving
// the host with its certificate and sending no assertion.
func TestMTLSServer(t *testing.T) {
	f := newFakeServer(t)
	a, dir := newTestAgent(t, f)
	var gotCert []byte
	var gotAssertion string
	mtls := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" || len(r.TLS.PeerCertificates) == 0 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		gotCert, gotAssertion = r.TLS.PeerCertificates[0].Raw, r.Header.Get(assertionHeader)
		json.NewEncoder(w).Encode(map[string]any{"access_token": "mtls-token", "expires_on": time.Now().Add(time.Hour).Unix(), "client_id": "c"})
	}))
	mtls.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	mtls.StartTLS()
	t.Cleanup(mtls.Close)
	caFile := filepath.Join(t.TempDir(), "mtls-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mtls.Certificate().Raw}), 0o600)
	b, err := New(context.Background(), Config{Listen: "127.0.0.1:0", Server: f.srv.URL, CAFile: caFile, DataDir: dir, MTLSServer: mtls.URL})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://127.0.0.1:1/msi/token?api-version=2019-08-01&resource=https://vault.azure.net", nil)
	req.Header.Set("X-IDENTITY-HEADER", a.IdentityHeader())
	rec := httptest.NewRecorder()
	b.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "mtls-token") {
		t.Fatalf("through the mTLS listener: %d %s", rec.Code, rec.Body)
	}
	f.mu.Lock()
	want := f.cert.Raw
	f.mu.Unlock()
	if !bytes.Equal(gotCert, want) || gotAssertion != "" {
		t.Fatalf("the agent presented another certificate, or an assertion too (%q)", gotAssertion)
	}
}

// lockedBuffer is an io.Writer the test may read while Run writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Run prints the variables applications need but not IDENTITY_HEADER's value, which only
// agent.env (mode 0600) holds.
func TestRunDoesNotPrintIdentityHeader(t *testing.T) {
	f := newFakeServer(t)
	dir := filepath.Join(t.TempDir(), "agent")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Listen: "127.0.0.1:0", Server: f.srv.URL, CAFile: f.caFile, DataDir: dir,
			RegistrationToken: "srh1.web-1.good"}, &out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "IDENTITY_HEADER") {
		select {
		case err := <-done:
			t.Fatalf("Run ended: %v; output %q", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run printed %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	header, err := loadOrCreateHeader(dir)
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(filepath.Join(dir, "agent.env"))
	if err != nil {
		t.Fatal(err)
	}
	printed := out.String()
	switch {
	case !strings.Contains(string(env), "IDENTITY_HEADER="+header+"\n"):
		t.Fatalf("agent.env lacks the header: %q", env)
	case strings.Contains(printed, header):
		t.Fatalf("the identity header's value was printed: %q", printed)
	case !strings.Contains(printed, "IDENTITY_ENDPOINT=http://127.0.0.1:") || !strings.Contains(printed, filepath.Join(dir, "agent.env")):
		t.Fatalf("the output does not say what applications need and where the header is: %q", printed)
	}
}
