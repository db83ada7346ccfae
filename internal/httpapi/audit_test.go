package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// flakySink stands in for an audit device that fails on command (a full disk, a dead socket).
type flakySink struct {
	failWrites atomic.Bool // writes fail but the sink still claims to be healthy
	down       atomic.Bool // the sink knows it is broken
	n          atomic.Int64
	last       atomic.Pointer[audit.Record]
	// failIntents makes intents fail (a journal that cannot be synced); intents counts the
	// intents taken and resolved those whose outcome was recorded.
	failIntents       atomic.Bool
	intents, resolved atomic.Int64
}

func (f *flakySink) Intend(_ context.Context, e audit.Event) (audit.IntentToken, error) {
	if f.failIntents.Load() || f.down.Load() {
		return audit.IntentToken{}, errors.New("journal sync failed")
	}
	f.intents.Add(1)
	return audit.IntentToken{}, nil
}

func (f *flakySink) IntentNote(e audit.Event) (audit.IntentToken, []byte, error) {
	_, err := f.Intend(context.Background(), e)
	return audit.IntentToken{}, []byte("note"), err
}

func (f *flakySink) Resolve(audit.IntentToken) { f.resolved.Add(1) }

// Record builds the record as the real log does (audit.NewRecord) and keeps it.
func (f *flakySink) Record(_ context.Context, e audit.Event) error {
	if f.failWrites.Load() || f.down.Load() {
		return errors.New("disk full")
	}
	f.n.Add(1)
	f.last.Store(audit.NewRecord(e))
	return nil
}

func (f *flakySink) Healthy() bool { return !f.down.Load() }

// TestServer_AuditFailClosed: a request whose record cannot be written is not acknowledged, and
// while the sink is down nothing is executed.
func TestServer_AuditFailClosed(t *testing.T) {
	sink := &flakySink{}
	e := newTestAPI(t, sink)
	h, svc, tok, admin := e.h, e.svc, e.token, e.admin
	call := func(method, path, body string) (int, string) {
		req := httptest.NewRequest(method, "https://kv-audit.vault.localhost:9"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, _ := call("PUT", "/secrets/a?api-version=7.4", `{"value":"first"}`); code != 200 {
		t.Fatalf("healthy PUT: %d", code)
	}
	// A write fails: the request ran, but its answer is withheld (500) and no value leaks.
	sink.failWrites.Store(true)
	code, body := call("GET", "/secrets/a?api-version=7.4", "")
	if code != http.StatusInternalServerError || strings.Contains(body, "first") {
		t.Fatalf("GET whose record failed: %d %s", code, body)
	}
	// The sink is known to be down: nothing is executed at all.
	sink.failWrites.Store(false)
	sink.down.Store(true)
	code, _ = call("PUT", "/secrets/b?api-version=7.4", `{"value":"never"}`)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("PUT with the audit sink down: %d", code)
	}
	if _, err := svc.GetSecret(admin, "kv-audit", "b", ""); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("a request was executed while the audit sink was down: %v", err)
	}
	if sink.n.Load() != 1 {
		t.Fatalf("%d records written, want 1", sink.n.Load())
	}
}

// TestServer_NoChangeCommitsWithoutItsIntent: a write whose intent cannot be made durable is
// not applied at all (the store never sees its batch), and reads take no intent.
func TestServer_NoChangeCommitsWithoutItsIntent(t *testing.T) {
	sink := &flakySink{}
	e := newTestAPI(t, sink)
	call := func(method, path, body string) int {
		req := httptest.NewRequest(method, "https://kv-audit.vault.localhost:9"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.token)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := call("PUT", "/secrets/kept?api-version=7.4", `{"value":"v"}`); code != 200 || sink.intents.Load() != 1 {
		t.Fatalf("healthy PUT: %d with %d intents, want 200 with 1", code, sink.intents.Load())
	}
	if code := call("GET", "/secrets/kept?api-version=7.4", ""); code != 200 || sink.intents.Load() != 1 {
		t.Fatalf("GET: %d with %d intents, want 200 and no new intent", code, sink.intents.Load())
	}
	sink.failIntents.Store(true)
	if code := call("PUT", "/secrets/lost?api-version=7.4", `{"value":"v"}`); code < 500 {
		t.Fatalf("PUT whose intent failed: %d, want a 5xx", code)
	}
	if _, err := e.svc.GetSecret(e.admin, "kv-audit", "lost", ""); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("a change committed without a durable intent: %v", err)
	}
	if sink.resolved.Load() != 6 { // every answered request resolves its (possibly empty) journal and note tokens
		t.Fatalf("%d resolved, want 6", sink.resolved.Load())
	}
}

// The record of a data-plane read names the vault the way Key Vault's AuditEvent does.
func TestServer_AuditRecordOfARead(t *testing.T) {
	sink := &flakySink{}
	e := newTestAPI(t, sink)
	for i, method := range []string{"PUT", "GET"} {
		req := httptest.NewRequest(method, "https://KV-Audit.vault.localhost:9/secrets/s1?api-version=7.4", strings.NewReader(`{"value":"v"}`))
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("X-Ms-Client-Request-Id", "corr-1")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != 200 || sink.n.Load() != int64(i+1) {
			t.Fatalf("%s: %d, %d records", method, rec.Code, sink.n.Load())
		}
	}
	r := sink.last.Load()
	wantID := strings.ToUpper(e.svc.SubscriptionScope() + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-audit")
	if r.ResourceID != wantID || r.OperationName != "SecretGet" || r.CorrelationID != "corr-1" || r.ResultType != "Success" {
		t.Fatalf("record %+v, want resource %s, SecretGet, corr-1, Success", r, wantID)
	}
	if r.Identity == nil || r.Identity.Claim.IdentityType != strings.ToLower(identity.TypeServicePrincipal) {
		t.Fatalf("identity %+v", r.Identity)
	}
	if r.Properties.RequestURI != "https://KV-Audit.vault.localhost:9/secrets/s1?api-version=7.4" || r.Properties.IsRbacAuthorized == nil || !*r.Properties.IsRbacAuthorized {
		t.Fatalf("properties %+v", r.Properties)
	}
}

// testAPI is an httpapi.Server over a real store, keyring, identity service and service, with
// vault kv-audit and a data-plane token for the bootstrap admin.
type testAPI struct {
	h     *httpapi.Server
	svc   *service.Service
	token string
	admin context.Context
	// the bootstrap admin's credential and tenant, for token requests
	clientID, clientSecret, tenantID string
	armToken                         string // a management-plane token of the admin
	ids                              *identity.Service
}

func newTestAPI(t testing.TB, sink httpapi.AuditLog) *testAPI {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.OpenWithWAL(filepath.Join(t.TempDir(), "data.db"), bolt.WALOptions{}) // as the server opens it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{3}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	const public = "https://localhost:9"
	ids, err := identity.New(ctx, st, kr, identity.Options{PublicURL: public})
	if err != nil {
		t.Fatal(err)
	}
	boot, _, err := ids.EnsureBootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, st, kr, service.Options{
		SubscriptionID: ids.SubscriptionID(), TenantID: ids.TenantID(),
		VaultURI:           func(n string) string { return "https://" + n + ".vault.localhost:9" },
		Authorizer:         rbac.BootstrapDecider(ids.AdminObjectID()),
		DeleteIdentitiesIn: ids.DeleteManagedIdentitiesIn,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(httpapi.Config{PublicURL: public, DNSSuffix: "vault.localhost", TenantID: ids.TenantID(), SubscriptionID: ids.SubscriptionID(), Events: goldenEvents{}, Alerts: newGoldenAlerts(svc), AuditQuery: goldenAuditQuery{}},
		svc, ids, issuer.New(ids, public), sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
	admin := service.WithCaller(ctx, service.Caller{ObjectID: ids.AdminObjectID()})
	if _, _, err := svc.PutResourceGroup(admin, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutVault(admin, "rg", "kv-audit", service.VaultInput{Location: "eastus", Properties: service.VaultProperties{TenantID: ids.TenantID(), Sku: &service.Sku{Family: "A", Name: "standard"}}}); err != nil {
		t.Fatal(err)
	}
	tok, err := ids.ClientCredentials(ctx, ids.TenantID(), boot.ClientID, boot.ClientSecret, "https://vault.azure.net/.default")
	if err != nil {
		t.Fatal(err)
	}
	armTok, err := ids.ClientCredentials(ctx, ids.TenantID(), boot.ClientID, boot.ClientSecret, "https://management.azure.com/.default")
	if err != nil {
		t.Fatal(err)
	}
	return &testAPI{h: h, svc: svc, token: tok.AccessToken, admin: admin, armToken: armTok.AccessToken,
		clientID: boot.ClientID, clientSecret: boot.ClientSecret, tenantID: ids.TenantID(), ids: ids}
}

// /health says when the store has stopped accepting writes, and recovers with it.
func TestServer_HealthReportsStoreFailure(t *testing.T) {
	var failure atomic.Pointer[error]
	h := httpapi.New(httpapi.Config{PublicURL: "https://localhost:9", DNSSuffix: "vault.localhost",
		StoreFailure: func() error {
			if p := failure.Load(); p != nil {
				return *p
			}
			return nil
		}}, nil, nil, noRoutes{}, &flakySink{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	health := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "https://localhost:9/health", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := health(); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthy store: %d %s", code, body)
	}
	err := errors.New("syncing log segment 3: input/output error")
	failure.Store(&err)
	if code, body := health(); code != 503 || !strings.Contains(body, "store-failed") || strings.Contains(body, "input/output") {
		t.Fatalf("failed store: %d %s", code, body)
	}
}

// noRoutes registers no issuer routes.
type noRoutes struct{}

func (noRoutes) Register(*http.ServeMux) {}

// A challenged data-plane request says why in its record: a bare probe (no token, as every SDK
// sends first) is AKV10000, which the brute-force alert does not count; a bad token is AKV10032.
func TestServer_ChallengeReasonRecorded(t *testing.T) {
	sink := &flakySink{}
	e := newTestAPI(t, sink)
	for _, c := range []struct{ auth, want string }{{"", "AKV10000:"}, {"Bearer not-a-token", "AKV10032:"}} {
		req := httptest.NewRequest("GET", "https://kv-audit.vault.localhost:9/secrets/s?api-version=7.4", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		r := sink.last.Load()
		if rec.Code != 401 || r == nil || r.OperationName != "Authentication" || !strings.HasPrefix(r.ResultDescription, c.want) {
			t.Fatalf("auth %q: %d, record %+v; want 401 and a description starting %q", c.auth, rec.Code, r, c.want)
		}
	}
}
