package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The secrets cache: a loopback HTTPS endpoint speaking the Key Vault secrets API, so that an
// application on the host points its official SDK at https://{vault}.<suffix>:<cache-port>/
// instead of the server, with a managed identity from this same agent.
//
// Who may use it: a request must carry a token this agent handed out (through IDENTITY_ENDPOINT
// or MSI_ENDPOINT) and that has not expired; it names the identity. The cache reads from the
// server as that identity with a token of its own (the host credential), so the server decides
// and audits every read as it would a direct one, and an identity unassigned from the host
// gets nothing more.
//
// What it keeps: the bodies of the GET /secrets/{name} and /secrets/{name}/{32-hex version}
// answers it served, in memory only, refreshed every Refresh. What it serves:
//   - the server's answer whenever the server answers;
//   - the last good body, with "x-strongroom-cache: stale" and Age, only when the server cannot
//     be reached (no connection, 502/503/504, or no token because of that), and for at most
//     MaxStale after it was last fetched;
//   - never a body after the server said the secret is gone (404 or 410 for the latest version
//     drops every copy of the name for every identity; for one version, that identity's copy of
//     that version only, so a lookup of a version that never existed costs nobody else their
//     copies) or refused the identity (401/403 drops that identity's copies, which covers a
//     disabled secret and revoked access). A change made while the server could not be reached
//     is therefore seen at the first answer after it comes back, by a request or the refresh loop.
//
// Everything else (lists, a secret's versions, rotation policy and status, writes, deletes) is
// passed to the server as the same identity, uncached, with list pages' nextLink pointed at the
// cache; a write or delete of a secret drops its cached copies.

// Cache response headers.
const (
	CacheHeader = "x-strongroom-cache" // "fresh" (the server answered) or "stale" (kept copy)
	cacheFresh  = "fresh"
	cacheStale  = "stale"
)

// CacheConfig configures the secrets cache of an agent.
type CacheConfig struct {
	// Listen is the loopback address of the HTTPS endpoint.
	Listen string
	// DNSSuffix is the vault host suffix applications use (vault.localhost); "" asks the server.
	DNSSuffix string
	// Refresh is how often kept secrets are fetched again (default 30 s).
	Refresh time.Duration
	// MaxStale bounds how long after its last fetch a copy may be served during an outage
	// (default 24 h).
	MaxStale time.Duration
	// MaxEntries bounds the copies kept; the least recently used goes first (default 10,000).
	MaxEntries int
}

// issuedToken is what the agent remembers of a token it handed to an application.
type issuedToken struct {
	clientID  string
	expiresOn time.Time
}

type cacheKey struct{ clientID, vault, name, version string }

type cacheEntry struct {
	body     []byte
	fetched  time.Time
	lastUsed time.Time
}

// secretCache is the cache endpoint's state.
type secretCache struct {
	a        *Agent
	cfg      CacheConfig
	upstream *http.Client
	// upstreamSuffix is the server's vault host suffix with its port (vault.localhost:8443);
	// localSuffix the suffix applications name, without a port.
	upstreamSuffix, localSuffix string
	authority                   string // the challenge's authorization, learned from the server

	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
	tokens  map[string]heldToken // upstream tokens by client id
}

// vaultName is Key Vault's vault name rule.
var vaultName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)

// secretPath matches the reads the cache answers from its copies: a secret's latest version
// or one version by its id (32 hex digits, as the server makes them). Anything else under a
// secret (/versions, /rotationpolicy, /rotationstatus, /pending) is not a secret's value.
var secretPath = regexp.MustCompile(`^/secrets/([0-9a-zA-Z-]{1,127})(?:/([0-9a-fA-F]{32}))?/?$`)

// secretWrite matches the routes whose successful write or delete changes a secret's copies,
// with the secret's name: any route under /secrets/{name} or /deletedsecrets/{name}.
var secretWrite = regexp.MustCompile(`^/(?:secrets|deletedsecrets)/([0-9a-zA-Z-]{1,127})(?:/|$)`)

func newSecretCache(ctx context.Context, a *Agent, cfg CacheConfig) (*secretCache, error) {
	if err := CheckLoopback(cfg.Listen); err != nil {
		return nil, fmt.Errorf("--cache-listen: %w", err)
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.MaxStale <= 0 {
		cfg.MaxStale = 24 * time.Hour
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10_000
	}
	c := &secretCache{a: a, cfg: cfg, entries: map[cacheKey]*cacheEntry{}, tokens: map[string]heldToken{}}
	meta, err := a.client.metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("the secrets cache needs the server's vault DNS suffix: %w", err)
	}
	c.upstreamSuffix = meta.suffix
	c.authority = meta.authority
	c.localSuffix = cfg.DNSSuffix
	if c.localSuffix == "" {
		c.localSuffix, _, _ = strings.Cut(meta.suffix, ":")
	}
	// Every vault host is dialled at the server's own address: the agent needs no DNS entry for
	// the vaults, and TLS still checks the vault name against the server's certificate.
	serverAddr := a.client.base.Host
	if a.client.base.Port() == "" {
		serverAddr += ":443"
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c.upstream = &http.Client{Timeout: 15 * time.Second,
		Transport: &http.Transport{TLSClientConfig: a.client.tls.Clone(), ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 8,
			IdleConnTimeout: time.Minute,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, serverAddr)
			}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

// remember records a token the agent answered, so the cache can tell who presents it.
func (a *Agent) remember(t tokenAnswer) {
	exp, err := strconv.ParseInt(t.ExpiresOn, 10, 64)
	if err != nil || t.AccessToken == "" {
		return
	}
	sum := sha256.Sum256([]byte(t.AccessToken))
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.issued) >= 2*a.issuedFloor { // amortized pruning of expired tokens
		for k, v := range a.issued {
			if !v.expiresOn.After(now) {
				delete(a.issued, k)
			}
		}
		a.issuedFloor = max(len(a.issued), 64)
	}
	a.issued[sum] = issuedToken{clientID: t.ClientID, expiresOn: time.Unix(exp, 0)}
}

// issuedTo returns the identity of a token this agent handed out and that is still valid.
func (a *Agent) issuedTo(raw string) (string, bool) {
	// Looked up by its SHA-256: the lookup's timing says nothing about the token's bytes.
	sum := sha256.Sum256([]byte(raw))
	a.mu.Lock()
	it, ok := a.issued[sum]
	a.mu.Unlock()
	if !ok || !it.expiresOn.After(a.now()) || it.clientID == "" {
		return "", false
	}
	return it.clientID, true
}

// ServeHTTP answers one application request.
func (c *secretCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	vault, ok := strings.CutSuffix(strings.ToLower(host), "."+strings.ToLower(c.localSuffix))
	if !ok || !vaultName.MatchString(vault) {
		kvError(w, http.StatusBadRequest, "BadParameter", "The Host header must name a vault: {vault}."+c.localSuffix+".")
		return
	}
	resource := "https://" + c.localSuffix
	if port != "" && port != "443" {
		resource += ":" + port
	}
	raw, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !hasBearer || strings.TrimSpace(raw) == "" {
		c.challenge(w, resource, "AKV10000: Request is missing a Bearer or PoP token.")
		return
	}
	clientID, ok := c.a.issuedTo(strings.TrimSpace(raw))
	if !ok {
		c.challenge(w, resource, "AKV10032: Invalid token: the secrets cache accepts only managed-identity tokens that this host's agent issued and that have not expired.")
		return
	}
	if m := secretPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
		c.serveSecret(w, r, cacheKey{clientID: clientID, vault: vault, name: strings.ToLower(m[1]), version: strings.ToLower(m[2])})
		return
	}
	c.pass(w, r, clientID, vault)
}

func (c *secretCache) challenge(w http.ResponseWriter, resource, msg string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s", resource="%s"`, c.authority, resource))
	kvError(w, http.StatusUnauthorized, "Unauthorized", msg)
}

// fetchResult is one upstream read of a kept secret.
type fetchResult struct {
	status int // 0: the server could not be reached
	body   []byte
	header http.Header
}

// reachable reports whether the server gave an answer the cache acts on.
func (f fetchResult) reachable() bool {
	switch f.status {
	case 0, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return false
	}
	return true
}

func (c *secretCache) serveSecret(w http.ResponseWriter, r *http.Request, k cacheKey) {
	res := c.fetch(r.Context(), k, r.URL.RawQuery)
	if res.reachable() {
		c.apply(k, res)
		copyHeader(w.Header(), res.header)
		w.Header().Set(CacheHeader, cacheFresh)
		w.WriteHeader(res.status)
		_, _ = w.Write(res.body)
		return
	}
	now := c.a.now()
	c.mu.Lock()
	e, ok := c.entries[k]
	var body []byte
	var age time.Duration
	if ok && now.Sub(e.fetched) <= c.cfg.MaxStale {
		e.lastUsed = now
		body, age = e.body, now.Sub(e.fetched)
	}
	c.mu.Unlock()
	if body == nil {
		kvError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The Strongroom server cannot be reached and the agent holds no recent copy of this secret.")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set(CacheHeader, cacheStale)
	w.Header().Set("Age", strconv.Itoa(int(age.Seconds())))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// apply updates the copies after the server's answer res for k.
func (c *secretCache) apply(k cacheKey, res fetchResult) {
	now := c.a.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case res.status == http.StatusOK:
		e := c.entries[k]
		if e == nil {
			c.evictLocked()
			e = &cacheEntry{}
			c.entries[k] = e
		}
		e.body, e.fetched, e.lastUsed = res.body, now, now
	case (res.status == http.StatusNotFound || res.status == http.StatusGone) && k.version != "":
		// A version is never removed alone (a deleted secret's latest answers 404 too), so
		// this says only that the version asked for is not there: anyone may ask for any id.
		delete(c.entries, k)
	case res.status == http.StatusNotFound || res.status == http.StatusGone:
		// Gone for everyone: deleted, purged, or the vault is gone.
		c.dropLocked(func(o cacheKey) bool { return o.vault == k.vault && o.name == k.name })
	case res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
		// This identity may no longer read it (revoked, or the secret disabled).
		c.dropLocked(func(o cacheKey) bool { return o.clientID == k.clientID && o.vault == k.vault && o.name == k.name })
	}
}

func (c *secretCache) dropLocked(match func(cacheKey) bool) {
	for o := range c.entries {
		if match(o) {
			delete(c.entries, o)
		}
	}
}

// evictLocked makes room for one more copy by dropping the least recently used.
func (c *secretCache) evictLocked() {
	if len(c.entries) < c.cfg.MaxEntries {
		return
	}
	var oldest cacheKey
	var at time.Time
	for k, e := range c.entries {
		if at.IsZero() || e.lastUsed.Before(at) {
			oldest, at = k, e.lastUsed
		}
	}
	delete(c.entries, oldest)
}

// fetch reads k from the server as k's identity.
func (c *secretCache) fetch(ctx context.Context, k cacheKey, rawQuery string) fetchResult {
	token, status, err := c.upstreamToken(ctx, k.clientID)
	if err != nil {
		if status == 0 || status >= 500 {
			return fetchResult{}
		}
		// The server refused the identity to this host: as good as a 403 from the data plane.
		body, _ := json.Marshal(kvErrorBody("Forbidden", "The identity is no longer available to this host: "+err.Error()))
		return fetchResult{status: http.StatusForbidden, body: body, header: jsonHeader()}
	}
	if rawQuery == "" {
		rawQuery = "api-version=7.5"
	}
	u := "https://" + k.vault + "." + c.upstreamSuffix + "/secrets/" + k.name
	if k.version != "" {
		u += "/" + k.version
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"?"+rawQuery, nil)
	if err != nil {
		return fetchResult{}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.upstream.Do(req)
	if err != nil {
		return fetchResult{}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fetchResult{}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		c.forgetToken(k.clientID)
	}
	return fetchResult{status: resp.StatusCode, body: body, header: resp.Header}
}

// upstreamToken returns a data-plane token for clientID from the server, kept while it has
// more than five minutes left.
func (c *secretCache) upstreamToken(ctx context.Context, clientID string) (string, int, error) {
	now := c.a.now()
	c.mu.Lock()
	held, ok := c.tokens[clientID]
	c.mu.Unlock()
	if ok && held.expiresOn.Sub(now) > 5*time.Minute {
		return held.resp.AccessToken, http.StatusOK, nil
	}
	resp, status, err := c.a.client.token(ctx, request{resource: "https://vault.azure.net", clientID: clientID}, "")
	if err != nil {
		if status != 0 && status < 500 {
			c.forgetToken(clientID)
		}
		return "", status, err
	}
	exp, _ := strconv.ParseInt(resp.ExpiresOn, 10, 64)
	c.mu.Lock()
	c.tokens[clientID] = heldToken{resp: resp, expiresOn: time.Unix(exp, 0)}
	c.mu.Unlock()
	return resp.AccessToken, http.StatusOK, nil
}

func (c *secretCache) forgetToken(clientID string) {
	c.mu.Lock()
	delete(c.tokens, clientID)
	c.mu.Unlock()
}

// refreshLoop fetches every kept copy again each Refresh until ctx ends, and drops copies
// nobody asked for in MaxStale.
func (c *secretCache) refreshLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.refreshOnce(ctx)
		}
	}
}

func (c *secretCache) refreshOnce(ctx context.Context) {
	now := c.a.now()
	c.mu.Lock()
	keys := make([]cacheKey, 0, len(c.entries))
	for k, e := range c.entries {
		if now.Sub(e.lastUsed) > c.cfg.MaxStale {
			delete(c.entries, k)
			continue
		}
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, k := range keys {
		if ctx.Err() != nil {
			return
		}
		res := c.fetch(ctx, k, "")
		if !res.reachable() {
			continue
		}
		c.mu.Lock()
		_, still := c.entries[k]
		c.mu.Unlock()
		if still || res.status != http.StatusOK {
			c.apply(k, res)
		}
	}
}

// pass forwards any other request to the server as clientID, uncached. A successful write or
// delete of a secret drops its copies; list answers' nextLink is pointed back at the cache.
func (c *secretCache) pass(w http.ResponseWriter, r *http.Request, clientID, vault string) {
	token, status, err := c.upstreamToken(r.Context(), clientID)
	if err != nil {
		if status == 0 || status >= 500 {
			kvError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The Strongroom server cannot be reached.")
			return
		}
		kvError(w, http.StatusForbidden, "Forbidden", "The identity is no longer available to this host: "+err.Error())
		return
	}
	upstreamBase := "https://" + vault + "." + c.upstreamSuffix
	localBase := "https://" + r.Host
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target, _ := url.Parse(upstreamBase)
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", "Bearer "+token)
			pr.Out.Header.Del("Cookie")
		},
		Transport: c.upstream.Transport,
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode/100 == 2 && r.Method != http.MethodGet {
				if m := secretWrite.FindStringSubmatch(r.URL.Path); m != nil {
					name := strings.ToLower(m[1])
					c.mu.Lock()
					c.dropLocked(func(o cacheKey) bool { return o.vault == vault && o.name == name })
					c.mu.Unlock()
				}
			}
			return rewriteNextLink(resp, upstreamBase, localBase)
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			kvError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The Strongroom server cannot be reached.")
		},
	}
	rp.ServeHTTP(w, r)
}

// rewriteNextLink points a JSON answer's nextLink at the cache, so the SDK's pager stays on it.
func rewriteNextLink(resp *http.Response, upstreamBase, localBase string) error {
	if !strings.Contains(resp.Header.Get("Content-Type"), "json") || resp.ContentLength > 8<<20 {
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	var page map[string]json.RawMessage
	if json.Unmarshal(raw, &page) == nil {
		var next string
		if json.Unmarshal(page["nextLink"], &next) == nil && strings.HasPrefix(next, upstreamBase+"/") {
			page["nextLink"], _ = json.Marshal(localBase + strings.TrimPrefix(next, upstreamBase))
			if out, err := json.Marshal(page); err == nil {
				raw = out
			}
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	resp.ContentLength = int64(len(raw))
	resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
	return nil
}

func copyHeader(dst, src http.Header) {
	for _, h := range []string{"Content-Type", "x-ms-keyvault-service-version", "x-ms-request-id", "WWW-Authenticate"} {
		if v := src.Get(h); v != "" {
			dst.Set(h, v)
		}
	}
}

func jsonHeader() http.Header {
	return http.Header{"Content-Type": []string{"application/json; charset=utf-8"}}
}

func kvErrorBody(code, msg string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": msg}}
}

// kvError answers in Key Vault's error envelope.
func kvError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, kvErrorBody(code, msg))
}

// serverMetadata is what the cache learns from the server's cloud metadata and challenge.
type serverMetadata struct {
	suffix    string // keyVaultDns, with the server's port
	authority string // the data plane challenge's authorization
}

// metadata reads the vault suffix from /metadata/endpoints and the authority from the data
// plane's challenge.
func (c *serverClient) metadata(ctx context.Context) (serverMetadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/metadata/endpoints?api-version=2022-09-01", nil)
	if err != nil {
		return serverMetadata{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return serverMetadata{}, fmt.Errorf("reading %s/metadata/endpoints: %w", c.base, err)
	}
	defer resp.Body.Close()
	var meta struct {
		Authentication struct {
			LoginEndpoint string `json:"loginEndpoint"`
			Tenant        string `json:"tenant"`
		} `json:"authentication"`
		Suffixes struct {
			KeyVaultDNS string `json:"keyVaultDns"`
		} `json:"suffixes"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta); err != nil || resp.StatusCode != http.StatusOK {
		return serverMetadata{}, fmt.Errorf("reading %s/metadata/endpoints: HTTP %d", c.base, resp.StatusCode)
	}
	out := serverMetadata{suffix: strings.TrimPrefix(meta.Suffixes.KeyVaultDNS, "."), authority: strings.TrimSuffix(meta.Authentication.LoginEndpoint, "/")}
	if out.suffix == "" {
		return serverMetadata{}, errors.New("the server's metadata names no keyVaultDns suffix")
	}
	if out.authority == "" {
		out.authority = c.base.String()
	}
	if meta.Authentication.Tenant != "" {
		out.authority += "/" + meta.Authentication.Tenant
	}
	return out, nil
}
