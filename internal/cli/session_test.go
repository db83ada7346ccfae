package cli

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestLoopbackAddr(t *testing.T) {
	tests := map[string]string{
		"localhost:8443":                  "127.0.0.1:8443",
		"LOCALHOST:8443":                  "127.0.0.1:8443",
		"mykeyvault.vault.localhost:8443": "127.0.0.1:8443",
		"kv.vault.localhost.:443":         "127.0.0.1:443",
		"example.com:443":                 "example.com:443",
		"notlocalhost:443":                "notlocalhost:443",
		"10.0.0.1:443":                    "10.0.0.1:443",
		"no-port":                         "no-port",
	}
	for in, want := range tests {
		if got := loopbackAddr(in); got != want {
			t.Errorf("loopbackAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewHTTPClientRejectsBadCA(t *testing.T) {
	if _, err := newHTTPClient([]byte("not a certificate")); err == nil {
		t.Error("newHTTPClient accepted a CA file with no certificates")
	}
}

func TestProfileRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	t.Setenv(configDirEnv, dir)
	if _, err := loadProfile(); !errors.Is(err, errNotLoggedIn) {
		t.Fatalf("loadProfile before login = %v, want errNotLoggedIn", err)
	}
	want := &Profile{Server: "https://localhost:8443", TenantID: "t", ClientID: "c", ClientSecret: "s", KeyVaultDNS: "vault.localhost:8443"}
	if err := saveProfile(want); err != nil {
		t.Fatal(err)
	}
	got, err := loadProfile()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loadProfile = %+v, want %+v", got, want)
	}
	for path, mode := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, profileFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	if removed, err := removeProfile(); !removed || err != nil {
		t.Fatalf("removeProfile = %v, %v", removed, err)
	}
	if removed, err := removeProfile(); removed || err != nil {
		t.Fatalf("second removeProfile = %v, %v", removed, err)
	}
}

func TestTokenClaim(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tok := enc(`{"alg":"RS256"}`) + "." + enc(`{"oid":"abc","tid":"t","n":1}`) + ".sig"
	if got, err := tokenClaim(tok, "oid"); err != nil || got != "abc" {
		t.Errorf("tokenClaim(oid) = %q, %v", got, err)
	}
	for _, bad := range []struct{ tok, claim string }{
		{tok, "missing"}, {tok, "n"}, {"opaque", "oid"}, {"a.!!!.c", "oid"}, {"a." + enc("[]") + ".c", "oid"},
	} {
		if _, err := tokenClaim(bad.tok, bad.claim); err == nil {
			t.Errorf("tokenClaim(%q, %q) succeeded", bad.tok, bad.claim)
		}
	}
}

func TestVaultURL(t *testing.T) {
	for dns, want := range map[string]string{
		"vault.localhost:8443":  "https://mykeyvault.vault.localhost:8443/",
		".vault.localhost:8443": "https://mykeyvault.vault.localhost:8443/",
	} {
		s := &session{profile: &Profile{KeyVaultDNS: dns}}
		if got := s.vaultURL("myKeyVault"); got != want {
			t.Errorf("vaultURL with suffix %q = %q, want %q", dns, got, want)
		}
	}
}

func TestFetchMetadata(t *testing.T) {
	const object = `{"name":"Strongroom","resourceManager":"https://localhost:8443/",
		"authentication":{"loginEndpoint":"https://localhost:8443/","audiences":["https://management.core.windows.net/"],"tenant":"t"},
		"suffixes":{"keyVaultDns":"vault.localhost:8443"}}`
	tests := []struct {
		name, body string
		status     int
		wantDNS    string
		wantRM     string
		wantErr    bool
	}{
		{"object", object, 200, "vault.localhost:8443", "https://localhost:8443", false},
		{"array of clouds", "[" + object + "]", 200, "vault.localhost:8443", "https://localhost:8443", false},
		{"missing document uses defaults", "", 404, "vault.SERVERHOST", "SERVER", false},
		{"server error", "", 500, "", "", true},
		{"not json", "<html>", 200, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/metadata/endpoints" || r.URL.Query().Get("api-version") == "" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
			hc, err := newHTTPClient(ca)
			if err != nil {
				t.Fatal(err)
			}
			meta, err := fetchMetadata(t.Context(), hc, srv.URL)
			if (err != nil) != tt.wantErr {
				t.Fatalf("fetchMetadata error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			p := &Profile{Server: srv.URL}
			applyMetadata(p, meta)
			host := srv.Listener.Addr().String()
			wantDNS := map[string]string{"vault.SERVERHOST": "vault." + host}[tt.wantDNS]
			if wantDNS == "" {
				wantDNS = tt.wantDNS
			}
			wantRM := map[string]string{"SERVER": srv.URL}[tt.wantRM]
			if wantRM == "" {
				wantRM = tt.wantRM
			}
			if p.KeyVaultDNS != wantDNS || p.ResourceManager != wantRM || p.ARMAudience != defaultARMAudience {
				t.Errorf("profile after metadata = %+v, want keyVaultDns %q, resourceManager %q", p, wantDNS, wantRM)
			}
		})
	}
}
