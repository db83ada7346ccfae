package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// The portal's API client: each call is an http.Request handed to the server's own handler
// in-process, with the signed-in person's bearer token, so it takes the path a request from
// the network takes (authentication, the service's guard, the firewall, audit). The caller
// address is the browser's (a vault firewall judges the person's machine, as Azure's portal
// does) and the User-Agent names the portal, so audit records say who acted and through what.

// Planes and the resources their tokens are for.
var planeResource = map[string]string{"arm": armResource, "data": dataResource, "graph": graphResource}

const (
	armAPIVersion   = "2023-07-01"
	authzAPIVersion = "2022-04-01"
	dataAPIVersion  = "7.5"
)

type apiResult struct {
	status int
	body   []byte
	header http.Header
}

// apiError is an API answer's error envelope.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

// errorOf decodes a failed answer's {"error":{"code","message"}} (Graph's and ARM's alike).
func (res apiResult) errorOf() *apiError {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Inner   *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	_ = json.Unmarshal(res.body, &env)
	e := &apiError{Status: res.status, Code: env.Error.Code, Message: env.Error.Message}
	if e.Message == "" {
		e.Message = fmt.Sprintf("The server answered %d %s.", res.status, http.StatusText(res.status))
	}
	return e
}

// recorder is a minimal in-memory http.ResponseWriter for in-process calls.
type recorder struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (rw *recorder) Header() http.Header { return rw.h }
func (rw *recorder) WriteHeader(s int) {
	if rw.status == 0 {
		rw.status = s
	}
}
func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	return rw.buf.Write(b)
}

// host is the public origin's host[:port].
func (p *Portal) host() string {
	u, err := url.Parse(p.opts.PublicURL)
	if err != nil {
		return "localhost"
	}
	return u.Host
}

// vaultHost is a vault's data-plane host[:port]; "" for a name Key Vault does not allow, whose
// URI could name another host ("a@b" is user a at vault b).
func (p *Portal) vaultHost(vault string) string {
	if !validVaultName(vault) {
		return ""
	}
	u, err := url.Parse(p.opts.VaultURI(vault))
	if err != nil || u.User != nil || !strings.HasPrefix(u.Host, strings.ToLower(vault)+".") {
		return ""
	}
	return u.Host
}

// do sends one in-process request. token "" sends none (the token endpoint).
func (p *Portal) do(r *http.Request, token, method, host, target, contentType string, body []byte, clientInfo string) apiResult {
	req, err := http.NewRequestWithContext(r.Context(), method, "https://"+host+target, bytes.NewReader(body))
	if err != nil {
		return apiResult{status: http.StatusBadRequest, body: []byte(`{"error":{"code":"BadRequest","message":"The portal could not build the request."}}`)}
	}
	req.Host, req.RequestURI, req.RemoteAddr, req.TLS = host, target, r.RemoteAddr, r.TLS
	req.Proto, req.ProtoMajor, req.ProtoMinor = r.Proto, r.ProtoMajor, r.ProtoMinor
	req.Header.Set("User-Agent", clientInfo)
	req.Header.Set("X-Ms-Client-Request-Id", uuid.NewString())
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 { // judged only from a trusted proxy
		req.Header["X-Forwarded-For"] = xff
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rw := &recorder{h: http.Header{}}
	p.api.ServeHTTP(rw, req)
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	return apiResult{status: rw.status, body: rw.buf.Bytes(), header: rw.h}
}

// errSignInAgain means the session's sign-in was revoked or ran out: the person must sign in.
var errSignInAgain = errors.New("your sign-in has expired or was revoked; sign in again")

// token returns the session's access token for plane, redeeming the refresh token for a new
// one when it is missing or about to expire. Refreshes of one session are serialized: the
// issuer treats a refresh token presented twice as stolen.
func (p *Portal) token(r *http.Request, plane string) (string, error) {
	s := sessionFrom(r)
	now := p.opts.Now()
	if t, ok := s.Tokens[plane]; ok && now.Add(2*time.Minute).Before(t.Expires) {
		return t.Token, nil
	}
	mu, _ := p.refreshMu.LoadOrStore(s.key, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	// Another request may have refreshed meanwhile: read the stored session again.
	if sealed, err := p.opts.Store.Get(r.Context(), s.key); err == nil {
		if fresh, err := p.openSession(r.Context(), s.key, sealed); err == nil {
			*s = *fresh
		}
	} else {
		return "", errSignInAgain // signed out meanwhile
	}
	if t, ok := s.Tokens[plane]; ok && now.Add(2*time.Minute).Before(t.Expires) {
		return t.Token, nil
	}
	clientID, err := p.ensureClient(r.Context())
	if err != nil {
		return "", fmt.Errorf("preparing a token request: %w", err)
	}
	tok, _, err := p.tokenRequest(r, url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID},
		"refresh_token": {s.Refresh}, "scope": {planeResource[plane] + "/.default offline_access"}})
	if err != nil {
		return "", errSignInAgain
	}
	err = p.saveSession(r.Context(), s, func(s *session) {
		if s.Tokens == nil {
			s.Tokens = map[string]accessToken{}
		}
		s.Tokens[plane] = accessToken{Token: tok.AccessToken, Expires: now.Add(time.Duration(tok.ExpiresIn) * time.Second)}
		if tok.RefreshToken != "" {
			s.Refresh = tok.RefreshToken
		}
	})
	if errors.Is(err, errSessionGone) {
		return "", errSignInAgain // signed out while the token was fetched
	}
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// call makes one API call as the signed-in person. in, when not nil, is sent as JSON; out,
// when not nil, receives a successful answer. A failed answer is an *apiError.
func (p *Portal) call(r *http.Request, plane, method, host, target string, in, out any, clientInfo string) error {
	tok, err := p.token(r, plane)
	if err != nil {
		return err
	}
	var body []byte
	ct := ""
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
		ct = "application/json"
	}
	if clientInfo == "" {
		clientInfo = ClientInfo
	}
	res := p.do(r, tok, method, host, target, ct, body, clientInfo)
	clear(body) // may hold a secret value
	if res.status >= 300 {
		return res.errorOf()
	}
	if out != nil && len(res.body) > 0 {
		if err := json.Unmarshal(res.body, out); err != nil {
			return fmt.Errorf("decoding the server's answer: %w", err)
		}
	}
	return nil
}

// arm calls the management plane at path (api-version added).
func (p *Portal) arm(r *http.Request, method, path, apiVersion string, q url.Values, in, out any) error {
	if q == nil {
		q = url.Values{}
	}
	q.Set("api-version", apiVersion)
	return p.call(r, "arm", method, p.host(), path+"?"+q.Encode(), in, out, "")
}

// data calls a vault's data plane.
func (p *Portal) data(r *http.Request, vault, method, path string, q url.Values, in, out any, clientInfo string) error {
	host := p.vaultHost(vault)
	if host == "" {
		return &apiError{Status: http.StatusNotFound, Code: "VaultNotFound", Message: "There is no vault of that name."}
	}
	if q == nil {
		q = url.Values{}
	}
	q.Set("api-version", dataAPIVersion)
	return p.call(r, "data", method, host, path+"?"+q.Encode(), in, out, clientInfo)
}

// graph calls the directory.
func (p *Portal) graph(r *http.Request, method, path string, out any) error {
	return p.call(r, "graph", method, p.host(), path, nil, out, "")
}

// pathEscape escapes one path segment.
func pathEscape(s string) string { return strings.ReplaceAll(url.PathEscape(s), "+", "%2B") }
