package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
)

// The fetcher reads discovery and JWKS over HTTPS, trusting an extra CA file; it refuses a
// discovery document naming another issuer, an http jwks_uri, an untrusted certificate and an
// unreadable CA file, each with ErrFederationFetch.
func TestOIDCFetcher(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var srv *httptest.Server
	docIssuer, jwksURI := "", ""
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": docIssuer, "jwks_uri": jwksURI})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	})
	srv = httptest.NewTLSServer(mux)
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	docIssuer, jwksURI = srv.URL, srv.URL+"/keys"
	set, err := issuer.NewOIDCFetcher(ca).FetchIssuerKeys(ctx, srv.URL)
	if err != nil || len(set.Keys) != 1 || set.Keys[0].KeyID != "k1" {
		t.Fatalf("FetchIssuerKeys = %+v, %v", set, err)
	}
	for name, tc := range map[string]struct {
		ca, iss, docIssuer, jwks string
	}{
		"another issuer in the document": {ca, srv.URL, "https://other.example", srv.URL + "/keys"},
		"http jwks_uri":                  {ca, srv.URL, srv.URL, "http://" + srv.Listener.Addr().String() + "/keys"},
		"untrusted certificate":          {"", srv.URL, srv.URL, srv.URL + "/keys"},
		"unreadable CA file":             {filepath.Join(t.TempDir(), "missing.pem"), srv.URL, srv.URL, srv.URL + "/keys"},
		"http issuer":                    {ca, "http://" + srv.Listener.Addr().String(), srv.URL, srv.URL + "/keys"},
	} {
		docIssuer, jwksURI = tc.docIssuer, tc.jwks
		if _, err := issuer.NewOIDCFetcher(tc.ca).FetchIssuerKeys(ctx, tc.iss); !errors.Is(err, identity.ErrFederationFetch) {
			t.Errorf("%s: err = %v, want ErrFederationFetch", name, err)
		}
	}
}
