package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Credentials the trivial server writes to admin.json. It accepts any client and token.
const (
	trivialTenant       = "00000000-0000-0000-0000-00000000b3c4"
	trivialSubscription = "00000000-0000-0000-0000-00000000b3c5"
)

// TrivialServer answers the benchmark's endpoints from memory with the least work an honest
// server could do: parse the JSON body, store the value under a lock, marshal a minimal secret
// bundle. No disk, no crypto beyond TLS, no authentication beyond the presence of a bearer token.
// It is the ceiling a real server is measured against. It is safe for concurrent use.
type TrivialServer struct {
	// keyVaultHeaders adds the data-plane headers Key Vault (and Strongroom) send on every
	// response, as constants: the ceiling for a server that is faithful on the wire.
	keyVaultHeaders bool
	srv             *http.Server
	mu              sync.RWMutex
	secrets         map[string]trivialSecret // "{vault}/{name}" → latest version
	version         atomic.Uint64
}

type trivialSecret struct {
	value   string
	id      string
	version string
	created int64
}

// secretBundle is the minimal Key Vault reply.
type secretBundle struct {
	Value      string           `json:"value"`
	ID         string           `json:"id"`
	Attributes bundleAttributes `json:"attributes"`
}

type bundleAttributes struct {
	Enabled         bool   `json:"enabled"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

// NewTrivialServer creates the server, writing its certificate to certDir/ca.pem and dummy
// credentials to certDir/admin.json. With keyVaultHeaders, secret responses carry Key Vault's
// data-plane header set (docs/benchmarks.md measures what it costs).
func NewTrivialServer(certDir string, keyVaultHeaders bool) (*TrivialServer, error) {
	cert, err := selfSignedCert(certDir)
	if err != nil {
		return nil, err
	}
	admin, err := json.MarshalIndent(map[string]string{
		"tenantId": trivialTenant, "subscriptionId": trivialSubscription,
		"clientId": "trivial-admin", "clientSecret": "trivial",
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(certDir, "admin.json"), append(admin, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("writing admin.json: %w", err)
	}
	s := &TrivialServer{secrets: map[string]trivialSecret{}, keyVaultHeaders: keyVaultHeaders}
	s.srv = &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return s, nil
}

// Listen opens a TCP listener on addr for Serve. addr must be a loopback IP ("127.0.0.1:9443",
// "[::1]:0") or "localhost": the server accepts any token, so it must not be reachable from
// another machine.
func (s *TrivialServer) Listen(addr string) (net.Listener, error) {
	if err := loopbackOnly(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return ln, nil
}

// loopbackOnly refuses an address whose host is not a loopback IP or "localhost" (an empty host
// would mean every interface).
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || strings.EqualFold(host, "localhost") {
		return nil
	}
	return fmt.Errorf("listen address %q: the trivial server accepts any token, so it listens on loopback only (127.0.0.1, ::1 or localhost)", addr)
}

// Serve serves TLS on ln until Shutdown; it returns nil after a clean shutdown.
func (s *TrivialServer) Serve(ln net.Listener) error {
	if err := s.srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}

// Shutdown stops the server gracefully.
func (s *TrivialServer) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// ServeHTTP routes by path prefix; the vault comes from the Host, as in Key Vault.
func (s *TrivialServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/secrets/"):
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			trivialError(w, http.StatusUnauthorized, "Unauthorized", "bearer token required")
			return
		}
		name, version, _ := strings.Cut(p[len("/secrets/"):], "/")
		vault, _, _ := strings.Cut(r.Host, ".")
		switch r.Method {
		case http.MethodPut:
			s.put(w, r, vault, name)
		case http.MethodGet:
			s.get(w, vault, name, version)
		default:
			trivialError(w, http.StatusMethodNotAllowed, "BadParameter", "method not allowed")
		}
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/oauth2/v2.0/token"):
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"trivial"}`)
	case r.Method == http.MethodPut && strings.HasPrefix(p, "/subscriptions/"):
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"properties":{"provisioningState":"Succeeded"}}`)
	case p == "/health":
		fmt.Fprint(w, "ok\n")
	default:
		trivialError(w, http.StatusNotFound, "NotFound", "no such endpoint")
	}
}

func (s *TrivialServer) put(w http.ResponseWriter, r *http.Request, vault, name string) {
	var in struct {
		Value *string `json:"value"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil || in.Value == nil {
		trivialError(w, http.StatusBadRequest, "BadParameter", "body must be {\"value\": string}")
		return
	}
	version := fmt.Sprintf("%032x", s.version.Add(1))
	sec := trivialSecret{
		value:   *in.Value,
		id:      "https://" + r.Host + "/secrets/" + name + "/" + version,
		version: version,
		created: time.Now().Unix(),
	}
	s.mu.Lock()
	s.secrets[vault+"/"+name] = sec
	s.mu.Unlock()
	s.writeBundle(w, sec)
}

func (s *TrivialServer) get(w http.ResponseWriter, vault, name, version string) {
	s.mu.RLock()
	sec, ok := s.secrets[vault+"/"+name]
	s.mu.RUnlock()
	// Only the latest version is kept: the benchmark never reads older ones.
	if !ok || (version != "" && version != sec.version) {
		trivialError(w, http.StatusNotFound, "SecretNotFound", "secret not found")
		return
	}
	s.writeBundle(w, sec)
}

func (s *TrivialServer) writeBundle(w http.ResponseWriter, sec trivialSecret) {
	body, err := json.Marshal(secretBundle{
		Value: sec.value, ID: sec.id,
		Attributes: bundleAttributes{Enabled: true, Created: sec.created, Updated: sec.created,
			RecoveryLevel: "Recoverable+Purgeable", RecoverableDays: 90},
	})
	if err != nil {
		trivialError(w, http.StatusInternalServerError, "InternalError", "encoding reply")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if s.keyVaultHeaders {
		h := w.Header()
		for k, v := range keyVaultHeaders {
			h[k] = v
		}
	}
	w.Write(body)
}

// keyVaultHeaders are the data-plane headers of akv-spec.md §2.3 with constant values.
var keyVaultHeaders = http.Header{
	"Cache-Control":                 {"no-cache"},
	"Pragma":                        {"no-cache"},
	"Expires":                       {"-1"},
	"Strict-Transport-Security":     {"max-age=31536000;includeSubDomains"},
	"X-Content-Type-Options":        {"nosniff"},
	"X-Ms-Keyvault-Network-Info":    {"addr=127.0.0.1;"},
	"X-Ms-Keyvault-Region":          {"eastus"},
	"X-Ms-Keyvault-Service-Version": {"trivial/1"},
	"X-Ms-Request-Id":               {"00000000-0000-0000-0000-000000000000"},
}

func trivialError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":%q}}`, code, msg)
}
