package issuer_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// TestHostAgentListener: over mutual TLS, a registered host's certificate gets tokens for its
// assigned identity; no certificate, a self-made one, another host's, a removed host's, and
// every path and method are refused before anything is served.
func TestHostAgentListener(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{5}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.New(ctx, st, kr, identity.Options{PublicURL: "https://localhost:9"})
	if err != nil {
		t.Fatal(err)
	}
	mi, _, err := id.PutManagedIdentity(ctx, "prod", "worker-a", "eastus", nil)
	if err != nil {
		t.Fatal(err)
	}
	register := func(name string) tls.Certificate {
		_, token, _, err := id.RegisterHost(ctx, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
		_, certPEM, _, err := id.RedeemHostRegistration(ctx, token, csr)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(certPEM)
		return tls.Certificate{Certificate: [][]byte{b.Bytes}, PrivateKey: key}
	}
	web1, web2 := register("web-1"), register("web-2")
	if _, err := id.AssignHostIdentity(ctx, "web-1", "prod", "worker-a"); err != nil {
		t.Fatal(err)
	}
	// A certificate naming web-1 that the host CA did not issue.
	forgedKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forgedDER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "web-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		&x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "web-1"}}, &forgedKey.PublicKey, forgedKey)
	forged := tls.Certificate{Certificate: [][]byte{forgedDER}, PrivateKey: forgedKey}

	var mu sync.Mutex
	var outcomes []issuer.HostAgentOutcome
	srv := httptest.NewUnstartedServer(issuer.HostAgentHandler(id, func(_ *http.Request, o issuer.HostAgentOutcome) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}))
	srv.TLS = issuer.HostAgentTLSConfig(tls.Certificate{}) // the test server's own certificate is added by StartTLS
	srv.TLS.Certificates = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	client := func(cert *tls.Certificate) *http.Client {
		c := &tls.Config{RootCAs: pool}
		if cert != nil {
			c.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: c}}
	}
	post := func(c *http.Client, method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil // the handshake failed
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	ask := `{"resource":"https://vault.azure.net"}`
	status, out := post(client(&web1), "POST", "/token", ask)
	if status != 200 || out["client_id"] != mi.ClientID || out["token_type"] != "Bearer" {
		t.Fatalf("web-1: %d %v", status, out)
	}
	if _, err := id.Verify(ctx, out["access_token"].(string), []string{"https://vault.azure.net"}); err != nil {
		t.Fatalf("the minted token: %v", err)
	}
	for _, c := range []struct {
		name         string
		cert         *tls.Certificate
		method, path string
		want         int
	}{
		{"no certificate", nil, "POST", "/token", 0},
		{"forged certificate", &forged, "POST", "/token", 401},
		{"forged, another path", &forged, "GET", "/../token", 401},
		{"forged, escaped path", &forged, "POST", "/%74oken", 401},
		{"another host", &web2, "POST", "/token", 400}, // web-2 has no identity
		{"another path", &web1, "POST", "/Token", 404},
		{"another method", &web1, "GET", "/token", 405},
	} {
		if got, body := post(client(c.cert), c.method, c.path, ask); got != c.want || body["access_token"] != nil {
			t.Errorf("%s: %d %v, want %d", c.name, got, body, c.want)
		}
	}
	if err := id.RemoveHost(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := post(client(&web1), "POST", "/token", ask); got != 401 {
		t.Fatalf("a removed host: %d", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) == 0 || outcomes[0].Host != "web-1" || outcomes[0].ObjectID != mi.PrincipalID || outcomes[0].Status != 200 {
		t.Fatalf("audit outcomes: %+v", outcomes)
	}
}
