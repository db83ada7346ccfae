// Package httpapi is Strongroom's HTTP edge. One handler serves every plane: requests whose Host
// is "{vault}.{dns-suffix}" reach the Key Vault secrets data plane; all others reach the token
// issuer, the ARM management plane, the small Graph subset the az CLI needs, and /health.
//
// Every request except /health is authenticated (the issuer's endpoints authenticate clients
// themselves), then handled, then audited, and only then answered: the response is buffered so
// that a request whose audit record cannot be written is answered 500 instead (fail-closed), and
// once the audit sink has failed nothing is executed at all. This package maps domain errors to
// statuses in exactly one place (writeError).
package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/azkv/arm"
	"github.com/strongroom/strongroom/internal/held"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
	"github.com/strongroom/strongroom/internal/metrics"
	"github.com/strongroom/strongroom/internal/netacl"
	"github.com/strongroom/strongroom/internal/service"
)

// Verifier checks bearer tokens.
type Verifier interface {
	Verify(ctx context.Context, raw string, audiences []string) (identity.Claims, error)
	// Recheck repeats Verify's per-use checks for claims Verify gave the same token earlier.
	Recheck(c identity.Claims, audiences []string) error
}

// Registrar adds routes (the token issuer) to a mux.
type Registrar interface {
	Register(mux *http.ServeMux)
}

// AuditLog is where request records go: the one audit path (audit.Recorder), with the intent
// journal that makes a change's record durable before the change commits (audit.Log.Intend).
type AuditLog interface {
	audit.Recorder
	Intend(ctx context.Context, e audit.Event) (audit.IntentToken, error)
	IntentNote(e audit.Event) (audit.IntentToken, []byte, error)
	Resolve(t audit.IntentToken)
}

// Config is the edge's configuration.
type Config struct {
	PublicURL      string // "https://localhost:8443"; authority host and resource manager origin
	DNSSuffix      string // "vault.localhost"
	TenantID       string
	SubscriptionID string
	// VaultRequestsPer10s is the per-vault request budget (Key Vault's is 4000); 0 disables it.
	VaultRequestsPer10s int
	// MaxBodyBytes caps request bodies (default 1 MiB).
	MaxBodyBytes int64
	// Ready reports whether the server may serve (false while shutting down); nil means always.
	Ready func() bool
	// StoreFailure reports why the store stopped accepting writes (nil while it accepts them);
	// /health then answers 503 so that operators and load balancers see it. Nil: never.
	StoreFailure func() error
	// Seal seals the server (POST /sys/seal by an authorized operator); nil disables the route.
	Seal func()
	// Rekey replaces the root key (POST /sys/rekey by an authorized operator) and returns what
	// operators must keep (new Shamir shares); nil disables the route.
	Rekey func(ctx context.Context, shares, threshold int) (*arm.RekeyResult, error)
	// MigrateSeal moves the data folder to another seal type (POST /sys/seal/migrate).
	MigrateSeal func(ctx context.Context, to string, shares, threshold int) (*arm.SealMigrateResult, error)
	// TrustedProxies are the peers whose X-Forwarded-For names the client the vault firewall
	// judges; nil trusts none.
	TrustedProxies *netacl.Proxies
	// Events serves event subscriptions and dead letters (arm_events.go); nil: not served.
	Events EventsAPI
	// Alerts serves alert rules, fired alerts and honeytokens (arm_monitor.go); nil: not served.
	Alerts AlertsAPI
	// AuditQuery answers queries over the local audit log (arm_auditquery.go); nil: not served.
	AuditQuery AuditQueryAPI
	// Metrics counts each answered request by vault, operation and result (metrics.go); nil: not counted.
	Metrics *metrics.Registry
	// Portal serves /portal/ on the main origin (internal/portal); nil: not served. Its pages
	// are not audited themselves: each API call a page makes comes back through ServeHTTP.
	Portal http.Handler
}

// Server is the root http.Handler.
type Server struct {
	cfg        Config
	svc        *service.Service
	tokens     Verifier
	audit      AuditLog
	log        *slog.Logger
	control    *http.ServeMux
	throttle   *throttler
	hostSuffix string // "." + lower-case DNS suffix, for vaultFromHost
	// audiences caches dataAudiences for the last port seen (every vault shares the listener's).
	audiences atomic.Pointer[portAudiences]
}

// New builds the handler.
func New(cfg Config, svc *service.Service, tokens Verifier, issuer Registrar, al AuditLog, log *slog.Logger) *Server {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	s := &Server{cfg: cfg, svc: svc, tokens: tokens, audit: al, log: log, control: http.NewServeMux(),
		hostSuffix: "." + strings.ToLower(cfg.DNSSuffix),
		throttle:   newThrottler(cfg.VaultRequestsPer10s)}
	if a, ok := issuer.(attemptNoter); ok {
		a.OnAttempt(noteTokenAttempt)
	}
	issuer.Register(s.control)
	s.control.HandleFunc("/", s.serveARM)
	return s
}

// attemptNoter is an issuer that reports token requests for their audit records.
type attemptNoter interface {
	OnAttempt(func(r *http.Request, a issuer.Attempt))
}

// noteTokenAttempt puts a token request's client id (and object id, or failure reason) into
// its audit record; never the secret.
func noteTokenAttempt(r *http.Request, a issuer.Attempt) {
	if ri, ok := r.Context().Value(ctxKey{}).(*reqInfo); ok {
		ri.tokenClientID, ri.tokenObjectID, ri.tokenFailure, ri.tokenUPN = a.ClientID, a.ObjectID, a.Failure, a.UPN
	}
}

// constantHeaders go on every response, as Key Vault sends them (a slice: ranging over a map
// showed on the read path).
var constantHeaders = []struct {
	key   string
	value []string
}{
	{"Cache-Control", []string{"no-cache"}},
	{"Pragma", []string{"no-cache"}},
	{"Expires", []string{"-1"}},
	{"Strict-Transport-Security", []string{"max-age=31536000;includeSubDomains"}},
	{"X-Content-Type-Options", []string{"nosniff"}},
}

type ctxKey struct{}

// reqInfo carries per-request facts from the handlers to the audit record.
type reqInfo struct {
	id         string
	op         string
	resourceID string
	// auditResourceID is resourceID upper-cased, when a cache had it ready.
	auditResourceID string
	objectID        string
	apiVersion      string
	claims          *identity.Claims // nil, or claimsVal: kept in this allocation
	claimsVal       identity.Claims
	// A token request's client id, object id (on success) and failure reason.
	tokenClientID, tokenObjectID, tokenFailure, tokenUPN string
	// authFailure is why a data-plane request was challenged (Key Vault's AKV100xx message).
	authFailure string

	// Allocated with the request's state rather than one by one (see request).
	headerValues [3]string // X-Ms-Request-Id, X-Ms-Keyvault-Region, X-Ms-Keyvault-Network-Info
	held         held.Answer

	// The request's intent (RecordIntent): made durable before its first change commits.
	srv       *Server
	req       *http.Request
	start     time.Time
	intended  bool
	noted     bool
	noteTok   audit.IntentToken
	note      []byte
	noteErr   error
	arm       *armReq // the management-plane request being served, if it is one
	intent    audit.IntentToken
	intentErr error
}

// headerValue sets h[key] to the one value v, kept in slot i of the request's own backing array.
func (ri *reqInfo) headerValue(h http.Header, key string, i int, v string) {
	ri.headerValues[i] = v
	h[key] = ri.headerValues[i : i+1 : i+1]
}

// RecordIntent implements service.Intent: before the first change the request causes commits,
// its would-be record is made durable in the audit intent journal. Later batches of the same
// request reuse the answer.
func (ri *reqInfo) RecordIntent(ctx context.Context) error {
	if !ri.intended {
		ri.intended = true
		ri.intent, ri.intentErr = ri.srv.audit.Intend(ctx, ri.intentEvent())
	}
	return ri.intentErr
}

// IntentNote implements store.NotedIntent: the would-be record as a note the single-node store
// logs with the batch, so the intent costs no write or fdatasync of its own.
func (ri *reqInfo) IntentNote(context.Context) ([]byte, error) {
	if !ri.noted {
		ri.noted = true
		ri.noteTok, ri.note, ri.noteErr = ri.srv.audit.IntentNote(ri.intentEvent())
	}
	return ri.note, ri.noteErr
}

// intentEvent is the request's would-be record, with the facts found so far.
func (ri *reqInfo) intentEvent() audit.Event {
	if a := ri.arm; a != nil { // a data-plane request keeps its facts in ri as it goes
		ri.op, ri.resourceID, ri.objectID = a.op, a.resourceID, a.objectID
		if a.claims != nil {
			ri.setClaims(*a.claims)
		}
	}
	return ri.srv.event(ri.req, ri, 0, ri.start)
}

// setClaims records the authenticated caller.
func (ri *reqInfo) setClaims(c identity.Claims) {
	ri.claimsVal = c
	ri.claims = &ri.claimsVal
}

func info(r *http.Request) *reqInfo { return r.Context().Value(ctxKey{}).(*reqInfo) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" && r.Method == http.MethodGet && s.vaultFromHost(r.Host) == "" {
		s.serveHealth(w)
		return
	}
	if s.cfg.Portal != nil && (r.URL.Path == "/portal" || strings.HasPrefix(r.URL.Path, "/portal/")) && s.vaultFromHost(r.Host) == "" {
		s.cfg.Portal.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	// One allocation holds the audit facts, the buffered response and the header values.
	ri := &reqInfo{id: uuid.NewString(), apiVersion: queryValue(r.URL.RawQuery, "api-version"), srv: s, start: start}
	ctx := service.WithIntent(service.WithDecisionSlot(context.WithValue(r.Context(), ctxKey{}, ri)), ri)
	r = r.WithContext(ctx)
	ri.req = r
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	h := w.Header()
	// Canonical keys assigned directly: Header.Set canonicalizes and allocates on every call,
	// which shows on the read path. The constant values are shared, never appended to.
	ri.headerValue(h, "X-Ms-Request-Id", 0, ri.id)
	if c := r.Header["X-Ms-Client-Request-Id"]; len(c) > 0 && c[0] != "" {
		h["X-Ms-Client-Request-Id"] = c[:1:1]
	}
	for _, c := range constantHeaders {
		h[c.key] = c.value
	}

	if !s.audit.Healthy() {
		// Nothing runs while no record can be written; this refusal itself cannot be audited.
		s.log.Error("audit log unavailable; refusing request", "request_id", ri.id)
		writeError(w, &service.Error{Kind: service.ErrUnavailable, Code: "ServiceUnavailable", Message: "The audit log is unavailable; requests are refused until it is restored."})
		s.observeRefusal(r, http.StatusServiceUnavailable, start)
		return
	}
	bw := &ri.held
	bp := bodyPool.Get().(*[]byte)
	bw.Reset(h, *bp)
	vault := s.vaultFromHost(r.Host)
	switch {
	case s.cfg.Ready != nil && !s.cfg.Ready():
		writeError(bw, &service.Error{Kind: service.ErrUnavailable, Code: "ServiceUnavailable", Message: "The server is not ready."})
	case vault != "":
		s.serveData(bw, r, ri, vault)
	default:
		ri.op = issuerOperation(r.Method, r.URL.Path) // the management routes name their own
		s.control.ServeHTTP(bw, r)
	}
	if err := s.audit.Record(ctx, s.event(r, ri, bw.Status(), start)); err != nil {
		s.log.Error("audit write failed; withholding response", "request_id", ri.id, "err", err)
		bw.Discard()
		writeError(bw, &service.Error{Kind: errInternal, Code: "InternalServerError", Message: "The request could not be audited and was not acknowledged."})
	} else {
		s.audit.Resolve(ri.intent) // the outcome is in the log; a crash before its fsync keeps the intent
		s.audit.Resolve(ri.noteTok)
	}
	s.observe(r, ri, vault, bw, start)
	bw.Send(w)
	*bp = bw.Body[:0] // net/http has copied it
	bw.Body = nil
	if cap(*bp) <= 64<<10 { // a large list stays out of the pool
		bodyPool.Put(bp)
	}
}

func (s *Server) serveHealth(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if s.cfg.Ready != nil && !s.cfg.Ready() || !s.audit.Healthy() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"unavailable"}`))
		return
	}
	if s.cfg.StoreFailure != nil && s.cfg.StoreFailure() != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"store-failed"}`))
		return
	}
	w.Write([]byte(`{"status":"ok"}`))
}

// vaultFromHost returns the vault name when host is "{vault}.{dns-suffix}[:port]".
func (s *Server) vaultFromHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	suffix := s.hostSuffix
	if !strings.HasSuffix(host, suffix) {
		return ""
	}
	name := strings.TrimSuffix(host, suffix)
	if name == "" || strings.Contains(name, ".") {
		return ""
	}
	return name
}

// event is the audit event of a request answered with status.
func (s *Server) event(r *http.Request, ri *reqInfo, status int, start time.Time) audit.Event {
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	if p := s.cfg.TrustedProxies; p != nil && p.Len() > 0 {
		// Behind a trusted proxy the caller is the client it vouches for, as the firewall sees it.
		if c := p.ClientIP(r.RemoteAddr, r.Header["X-Forwarded-For"]); c.IsValid() {
			ip = c.String()
		}
	}
	e := audit.Event{
		Start:           start,
		Operation:       ri.op,
		APIVersion:      ri.apiVersion,
		ResourceID:      ri.auditResourceID,
		ResourceIDUpper: ri.auditResourceID != "",
		ObjectID:        ri.objectID,
		Status:          status,
		CallerIP:        ip,
		URI:             audit.HTTPSURI(r.Host, requestTarget(r)),
		ClientInfo:      r.UserAgent(),
		CorrelationID:   correlationID(r.Header),
		RequestID:       ri.id,
	}
	if e.ResourceID == "" {
		e.ResourceID = ri.resourceID
	}
	if e.Operation == "" {
		e.Operation = r.Method + " " + r.URL.Path
	}
	if r.TLS != nil {
		e.TLSVersion = r.TLS.Version
	}
	if ri.claims != nil {
		p := ri.claims.Principal
		e.Caller = &audit.Claims{ObjectID: p.ObjectID, AppID: p.AppID, TenantID: p.TenantID, IdentityType: identityType(p.Type)}
	}
	if ri.authFailure != "" {
		e.Description = truncate(ri.authFailure, 256)
	}
	if ri.tokenClientID != "" && ri.claims == nil {
		e.Caller = &audit.Claims{AppID: ri.tokenClientID, ObjectID: ri.tokenObjectID, UPN: ri.tokenUPN}
		e.Description = ri.tokenFailure
	}
	if d := service.DecisionFrom(r.Context()); d != nil && ri.claims != nil {
		allowed := d.Allowed
		e.Authorized, e.AssignmentID = &allowed, d.AssignmentID
		if d.ByPolicy {
			e.Authorized, e.PolicyMatch = nil, &allowed
		}
		if len(d.Policies) > 0 {
			e.PolicyEvaluations, _ = json.Marshal(d.Policies) // ids, effects and rule text: no values
		}
	}
	return e
}

// truncate bounds s to n bytes (a token's claims can make a verification error long).
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// correlationID is the caller's own id for the request: x-ms-client-request-id, which the Azure
// SDKs send, or client-request-id, which MSAL sends to the token issuer.
func correlationID(h http.Header) string {
	if c := firstValue(h["X-Ms-Client-Request-Id"]); c != "" { // canonical keys: no Get canonicalization
		return c
	}
	return firstValue(h["Client-Request-Id"])
}

func firstValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// requestTarget is the request line's target as the client sent it (no allocation), or the
// URL's form for a request built in-process.
func requestTarget(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") { // origin form; an absolute-form target is rebuilt
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// identityType is the audit form of a principal type: lower case, without a copy for the
// common one.
func identityType(t string) string {
	if t == identity.TypeServicePrincipal {
		return lowerServicePrincipal
	}
	return strings.ToLower(t)
}

var lowerServicePrincipal = strings.ToLower(identity.TypeServicePrincipal)

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	w.Write(azkv.Marshal(v))
}

// writeBundle answers status with a secret bundle, the most common body, encoded without
// reflection into a pooled buffer.
func writeBundle(w http.ResponseWriter, status int, b *azkv.SecretBundle) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	bp := bodyPool.Get().(*[]byte)
	body := b.AppendJSON((*bp)[:0])
	w.Write(body)
	*bp = body
	bodyPool.Put(bp)
}

var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	bodyPool        = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
)
