// Package agent is Strongroom's identity agent: it runs on an application host, holds the
// host's credential and serves managed-identity tokens to the applications on that host in
// the two local protocols Azure's SDKs and az speak, so they need nothing but the endpoint
// variables:
//
//	App Service  IDENTITY_ENDPOINT=http://127.0.0.1:<port>/msi/token  IDENTITY_HEADER=<random>
//	             GET ?api-version=2019-08-01&resource=..[&client_id=|&object_id=|&mi_res_id=]
//	             with X-IDENTITY-HEADER: <IDENTITY_HEADER>
//	MSI_ENDPOINT MSI_ENDPOINT=http://127.0.0.1:<port>/oauth2/token   (az login --identity)
//	             POST (form) or GET (query) resource=..[&client_id=..], with Metadata: true
//	IMDS         GET /metadata/identity/oauth2/token?resource=..[&client_id=|&object_id=|&msi_res_id=]
//	             with Metadata: true, for clients pointed at the agent as their instance
//	             metadata host (MSAL Python's AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:<port>)
//
// Both answer {"access_token","expires_on" (unix seconds, a string),"resource","token_type":
// "Bearer","client_id"} (MSI_ENDPOINT adds expires_in and not_before, as Cloud Shell does).
//
// The agent listens on loopback only and refuses requests whose Host header is not a loopback
// name (DNS rebinding). The host credential is an ECDSA P-256 key generated here and the
// certificate the server issued for it when the agent redeemed a one-time registration token;
// both live in the data directory with mode 0600 and no endpoint ever returns them. Every
// token request goes to the server, proved with that key: a host assertion it signs, on the
// server's main listener, or the certificate itself over mutual TLS when the server gives
// agents a listener of their own (--mtls-server). The server decides each one: a token the agent holds is answered again only when the server says it
// still may be, so unassigning an identity from the host takes effect on the next request.
// When the server cannot be reached, a held token with more than a minute left is answered
// (the data plane still refuses it if it was revoked meanwhile).
package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Paths the agent serves.
const (
	AppServicePath = "/msi/token"
	MSIPath        = "/oauth2/token"
	IMDSPath       = "/metadata/identity/oauth2/token"
)

// Config configures an agent.
type Config struct {
	// Listen is the loopback address to serve on ("127.0.0.1:port", "[::1]:port",
	// "localhost:port"); anything else is refused.
	Listen string
	// Server is the Strongroom server's URL (https://host:port).
	Server string
	// CAFile is the PEM bundle that verifies the server's certificate ("" for the system roots).
	CAFile string
	// DataDir holds the host credential and the identity header (created with mode 0700).
	DataDir string
	// RegistrationToken, when set, is redeemed for a host credential before serving.
	RegistrationToken string
	// MTLSServer, when set, is the server's host-agent listener (https://host:port): token
	// requests go there over mutual TLS with the host certificate, instead of to Server with a
	// host assertion. Registration always goes to Server.
	MTLSServer string
	// MSIEndpoint serves the MSI_ENDPOINT and IMDS protocols too (they need no secret header:
	// any local process can use them, as on an Azure VM).
	MSIEndpoint bool
	// Cache, when set, also serves the secrets cache (cache.go).
	Cache *CacheConfig
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Agent serves one host's identities.
type Agent struct {
	cfg    Config
	client *serverClient
	header string // IDENTITY_HEADER
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]heldToken
	// issued are the tokens answered to applications, by SHA-256, for the secrets cache;
	// issuedFloor paces the pruning of expired ones.
	issued      map[[32]byte]issuedToken
	issuedFloor int
}

type heldToken struct {
	resp      tokenAnswer
	expiresOn time.Time
}

// CheckLoopback refuses a listen address that is not on a loopback interface.
func CheckLoopback(listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want host:port on loopback, e.g. 127.0.0.1:42356", listen)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("--listen %q: bad port", listen)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: the identity agent serves loopback only (127.0.0.1, ::1 or localhost)", listen)
	}
	return nil
}

// New loads (or, with a registration token, first obtains) the host credential and the
// identity header from cfg.DataDir.
func New(ctx context.Context, cfg Config) (*Agent, error) {
	if err := CheckLoopback(cfg.Listen); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DataDir == "" {
		return nil, errors.New("--data-dir is required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("securing the data directory: %w", err)
	}
	c, err := newServerClient(cfg.Server, cfg.CAFile, cfg.Now)
	if err != nil {
		return nil, err
	}
	if cfg.MTLSServer != "" {
		if err := c.useMTLS(cfg.MTLSServer); err != nil {
			return nil, err
		}
	}
	if cfg.RegistrationToken != "" {
		if err := c.register(ctx, cfg.DataDir, cfg.RegistrationToken); err != nil {
			return nil, err
		}
	}
	if err := c.loadCredential(cfg.DataDir); err != nil {
		return nil, err
	}
	header, err := loadOrCreateHeader(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, client: c, header: header, now: cfg.Now, cache: map[string]heldToken{},
		issued: map[[32]byte]issuedToken{}, issuedFloor: 64}, nil
}

// IdentityHeader is the value applications send as X-IDENTITY-HEADER (IDENTITY_HEADER).
func (a *Agent) IdentityHeader() string { return a.header }

// HostName is the host the credential names.
func (a *Agent) HostName() string { return a.client.host }

// Environment is what an application on this host needs, for addr the agent listens on.
func (a *Agent) Environment(addr string) []string {
	env := []string{"IDENTITY_ENDPOINT=http://" + addr + AppServicePath, "IDENTITY_HEADER=" + a.header}
	if a.cfg.MSIEndpoint {
		env = append(env, "MSI_ENDPOINT=http://"+addr+MSIPath,
			"# clients that ask the instance metadata service: AZURE_POD_IDENTITY_AUTHORITY_HOST=http://"+addr)
	}
	return env
}

// Serve serves on ln (which must be a loopback listener) until ctx ends.
func (a *Agent) Serve(ctx context.Context, ln net.Listener) error {
	return serveLoopback(ctx, ln, a.Handler(), nil)
}

// serveLoopback serves h on ln (refused unless on loopback), over TLS when tc is set, until ctx ends.
func serveLoopback(ctx context.Context, ln net.Listener, h http.Handler, tc *tls.Config) error {
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		return fmt.Errorf("refusing to serve on %s: not a loopback address", ln.Addr())
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10, TLSConfig: tc}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}

// Run is `strongroom identity agent`: it listens, writes the application environment to
// <data-dir>/agent.env (mode 0600) and to out (all but IDENTITY_HEADER's value), and serves
// until ctx ends.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	a, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	env := a.Environment(ln.Addr().String())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	running := 1
	if cfg.Cache != nil {
		cache, err := newSecretCache(ctx, a, *cfg.Cache)
		if err != nil {
			return err
		}
		cert, err := cacheCertificate(cfg.DataDir, cache.localSuffix, out)
		if err != nil {
			return err
		}
		cln, err := net.Listen("tcp", cfg.Cache.Listen)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", cfg.Cache.Listen, err)
		}
		defer cln.Close()
		_, port, _ := net.SplitHostPort(cln.Addr().String())
		env = append(env, "STRONGROOM_AGENT_CACHE=https://{vault}."+cache.localSuffix+":"+port+"/",
			"STRONGROOM_AGENT_CACHE_CA="+CacheCAPath(cfg.DataDir))
		tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
		go cache.refreshLoop(ctx)
		go func() { errs <- serveLoopback(ctx, cln, loopbackOnly(cache), tc) }()
		running++
	}
	envFile := filepath.Join(cfg.DataDir, "agent.env")
	if err := writePrivate(envFile, []byte(strings.Join(env, "\n")+"\n")); err != nil {
		return err
	}
	fmt.Fprintf(out, "strongroom identity agent for host %s listening on %s\n", a.HostName(), ln.Addr())
	for _, e := range env {
		// The header is what lets a process take tokens: standard output often ends up in a
		// journal or a CI log, so it names where the value is instead.
		if strings.HasPrefix(e, "IDENTITY_HEADER=") {
			e = "# IDENTITY_HEADER: its value is in " + envFile + " (mode 0600)"
		}
		fmt.Fprintln(out, e)
	}
	go func() { errs <- a.Serve(ctx, ln) }()
	var first error
	for ; running > 0; running-- {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// loopbackOnly refuses connections that do not come from a loopback address (the listener is
// on loopback; this holds if a future change widens it).
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			kvError(w, http.StatusForbidden, "Forbidden", "The secrets cache serves this host only.")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Handler serves the two protocols.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(AppServicePath, a.serveAppService)
	if a.cfg.MSIEndpoint { // the header-less protocols, which any local process can use (as IMDS)
		mux.HandleFunc(MSIPath, a.serveMSI)
		mux.HandleFunc("GET "+IMDSPath, a.serveMSI)
	}
	return loopbackHostOnly(mux)
}

// loopbackHostOnly refuses requests that name another host: a web page the host's browser
// loads cannot reach the agent through a DNS name rebound to 127.0.0.1.
func loopbackHostOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		host = strings.Trim(host, "[]")
		ip := net.ParseIP(host)
		if !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			writeError(w, http.StatusForbidden, "invalid_request", "The Host header must name a loopback address.")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// tokenAnswer is what both protocols answer (expires_in and not_before only on MSI_ENDPOINT).
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"`
	ExpiresIn   string `json:"expires_in,omitempty"`
	NotBefore   string `json:"not_before,omitempty"`
	Resource    string `json:"resource"`
	TokenType   string `json:"token_type"`
	ClientID    string `json:"client_id"`
}

// request is one application's token request, whichever protocol carried it.
type request struct {
	resource                    string
	clientID, objectID, miResID string
}

func (a *Agent) serveAppService(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "Use GET.")
		return
	}
	got := r.Header.Get("X-IDENTITY-HEADER")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(a.header)) != 1 {
		writeError(w, http.StatusUnauthorized, "invalid_request", "The X-IDENTITY-HEADER header is missing or wrong.")
		return
	}
	q := r.URL.Query()
	if v := q.Get("api-version"); v != "2019-08-01" {
		writeError(w, http.StatusBadRequest, "invalid_request", "api-version must be 2019-08-01.")
		return
	}
	a.answer(w, r, request{resource: q.Get("resource"), clientID: q.Get("client_id"), objectID: q.Get("object_id"),
		miResID: firstNonEmpty(q.Get("mi_res_id"), q.Get("msi_res_id"))}, false)
}

func (a *Agent) serveMSI(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		writeError(w, http.StatusBadRequest, "invalid_request", "Required metadata header not specified.")
		return
	}
	var v url.Values
	switch r.Method {
	case http.MethodGet:
		v = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "The body must be a form.")
			return
		}
		v = r.Form // the form, then the query
	default:
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "Use GET or POST.")
		return
	}
	a.answer(w, r, request{resource: v.Get("resource"), clientID: v.Get("client_id"), objectID: v.Get("object_id"),
		miResID: firstNonEmpty(v.Get("mi_res_id"), v.Get("msi_res_id"))}, true)
}

func (a *Agent) answer(w http.ResponseWriter, r *http.Request, req request, msi bool) {
	if req.resource == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "The resource parameter is required.")
		return
	}
	n := 0
	for _, s := range []string{req.clientID, req.objectID, req.miResID} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		writeError(w, http.StatusBadRequest, "invalid_request", "Name the identity with at most one of client_id, object_id and mi_res_id.")
		return
	}
	key := req.resource + "\x00" + req.clientID + "\x00" + req.objectID + "\x00" + strings.ToLower(req.miResID)
	a.mu.Lock()
	held, ok := a.cache[key]
	a.mu.Unlock()
	current := ""
	if ok {
		current = held.resp.AccessToken
	}
	resp, status, err := a.client.token(r.Context(), req, current)
	switch {
	case err != nil && status == 0 && ok && held.expiresOn.Sub(a.now()) > time.Minute:
		// The server is unreachable: the token it gave is still good for a while.
		resp, err = held.resp, nil
	case err != nil && status == 0:
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The Strongroom server could not be reached.")
		return
	case err != nil:
		a.mu.Lock()
		delete(a.cache, key)
		a.mu.Unlock()
		code := http.StatusBadRequest
		if status >= 500 {
			code = http.StatusBadGateway
		}
		writeError(w, code, "invalid_request", err.Error())
		return
	default:
		exp, _ := strconv.ParseInt(resp.ExpiresOn, 10, 64)
		a.mu.Lock()
		a.cache[key] = heldToken{resp: resp, expiresOn: time.Unix(exp, 0)}
		a.mu.Unlock()
	}
	if msi {
		exp, _ := strconv.ParseInt(resp.ExpiresOn, 10, 64)
		resp.ExpiresIn = strconv.FormatInt(max(exp-a.now().Unix(), 0), 10)
		resp.NotBefore = strconv.FormatInt(a.now().Unix(), 10)
	}
	a.remember(resp)
	writeJSON(w, http.StatusOK, resp)
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in the shape App Service's endpoint uses for errors.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": msg, "statusCode": status, "message": msg})
}

// loadOrCreateHeader reads <data-dir>/identity-header, making a random one on first start.
func loadOrCreateHeader(dir string) (string, error) {
	p := filepath.Join(dir, "identity-header")
	if b, err := os.ReadFile(p); err == nil {
		if h := strings.TrimSpace(string(b)); len(h) >= 32 {
			return h, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the identity header: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	h := hex.EncodeToString(raw)
	if err := writePrivate(p, []byte(h+"\n")); err != nil {
		return "", err
	}
	return h, nil
}

// writePrivate writes data to path with mode 0600, replacing it atomically.
func writePrivate(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
