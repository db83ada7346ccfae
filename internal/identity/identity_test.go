package identity_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

const testPublicURL = "https://localhost:8443"

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 500e6, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// env is a store and keyring with the system data key, as the app sets them up at init.
type env struct {
	st store.Store
	kr *keyring.Keyring
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{7}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, kr: kr}
}

// service opens an identity service over e; opts.PublicURL defaults to testPublicURL and the
// cheap test KDF is used unless realKDF.
func (e *env) service(t *testing.T, opts identity.Options, realKDF bool) *identity.Service {
	t.Helper()
	if opts.PublicURL == "" {
		opts.PublicURL = testPublicURL
	}
	if !realKDF {
		opts = identity.FastKDF(opts)
	}
	s, err := identity.New(context.Background(), e.st, e.kr, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// lastCharChanged returns secret with its last character replaced by a different one (a fixed
// replacement would equal the original once in 64 secrets).
func lastCharChanged(secret string) string {
	last := secret[len(secret)-1]
	repl := byte('x')
	if last == repl {
		repl = 'y'
	}
	return secret[:len(secret)-1] + string(repl)
}

func mustCreateSP(t *testing.T, s *identity.Service, name string) (identity.Principal, string) {
	t.Helper()
	p, secret, err := s.CreateServicePrincipal(context.Background(), name)
	if err != nil {
		t.Fatalf("CreateServicePrincipal: %v", err)
	}
	return p, secret
}

func TestService_EnsureBootstrap_Idempotent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.service(t, identity.Options{}, true) // the real argon2id cost, once

	if got := s.AdminObjectID(); got != "" {
		t.Fatalf("AdminObjectID before bootstrap = %q, want empty", got)
	}
	b, created, err := s.EnsureBootstrap(ctx)
	if err != nil || !created {
		t.Fatalf("first EnsureBootstrap = created %v, %v; want created", created, err)
	}
	for name, v := range map[string]string{"TenantID": b.TenantID, "SubscriptionID": b.SubscriptionID, "ClientID": b.ClientID, "ObjectID": b.ObjectID} {
		if !guidRE.MatchString(v) {
			t.Errorf("Bootstrap.%s = %q, want a lowercase GUID", name, v)
		}
	}
	if len(b.ClientSecret) < 40 {
		t.Errorf("ClientSecret has %d characters, want at least 40", len(b.ClientSecret))
	}
	if b.TenantID != s.TenantID() || b.SubscriptionID != s.SubscriptionID() || b.ObjectID != s.AdminObjectID() {
		t.Errorf("Bootstrap %+v disagrees with TenantID %q, SubscriptionID %q, AdminObjectID %q",
			b, s.TenantID(), s.SubscriptionID(), s.AdminObjectID())
	}
	if alg, tm, m, p := identity.KDFOf(s, b.ClientID); alg != "argon2id" || tm != 2 || m != 19*1024 || p != 1 {
		t.Errorf("stored KDF = %s t=%d m=%d p=%d, want argon2id t=2 m=19456 p=1", alg, tm, m, p)
	}

	want := b
	want.ClientSecret = ""
	b2, created, err := s.EnsureBootstrap(ctx)
	if err != nil || created || b2 != want {
		t.Fatalf("second EnsureBootstrap = %+v, created %v, %v; want %+v, not created", b2, created, err, want)
	}
	// After a restart too.
	s2 := e.service(t, identity.Options{}, true)
	b3, created, err := s2.EnsureBootstrap(ctx)
	if err != nil || created || b3 != want {
		t.Fatalf("EnsureBootstrap after restart = %+v, created %v, %v; want %+v, not created", b3, created, err, want)
	}
	if s2.AdminObjectID() != b.ObjectID {
		t.Errorf("AdminObjectID after restart = %q, want %q", s2.AdminObjectID(), b.ObjectID)
	}
	p, err := s2.LookupPrincipal(ctx, b.ClientID)
	if err != nil || p.DisplayName != "strongroom-admin" || p.Type != identity.TypeServicePrincipal {
		t.Fatalf("LookupPrincipal(admin) = %+v, %v", p, err)
	}
	// The bootstrap secret logs in.
	if _, err := s2.ClientCredentials(ctx, "", b.ClientID, b.ClientSecret, "https://management.core.windows.net//.default"); err != nil {
		t.Fatalf("ClientCredentials with the bootstrap secret: %v", err)
	}
}

func TestService_EnsureBootstrap_ConcurrentServersAgree(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const n = 4
	svcs := make([]*identity.Service, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svcs[i], errs[i] = identity.New(ctx, e.st, e.kr, identity.FastKDF(identity.Options{PublicURL: testPublicURL}))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("New #%d: %v", i, err)
		}
	}
	created := make([]bool, n)
	objs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b identity.Bootstrap
			b, created[i], errs[i] = svcs[i].EnsureBootstrap(ctx)
			objs[i] = b.ObjectID
		}()
	}
	wg.Wait()
	nCreated := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("EnsureBootstrap #%d: %v", i, errs[i])
		}
		if svcs[i].TenantID() != svcs[0].TenantID() || objs[i] != objs[0] {
			t.Errorf("server %d: tenant %q admin %q; server 0: tenant %q admin %q", i, svcs[i].TenantID(), objs[i], svcs[0].TenantID(), objs[0])
		}
		if created[i] {
			nCreated++
		}
	}
	if nCreated != 1 {
		t.Errorf("%d servers report creating the admin, want exactly 1", nCreated)
	}
}

func TestService_ClientCredentials(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	p, secret := mustCreateSP(t, s, "app one")
	_, otherSecret := mustCreateSP(t, s, "app two")
	const scope = "https://vault.localhost:8443/.default openid offline_access profile"

	cases := []struct {
		name                   string
		tenant, client, secret string
		scope                  string
		wantErr                error
		notErr                 error // must not match, to tell the client errors apart
		wantAud                string
	}{
		{name: "default tenant", client: p.AppID, secret: secret, scope: scope, wantAud: "https://vault.localhost:8443"},
		{name: "tenant id", tenant: s.TenantID(), client: p.AppID, secret: secret, scope: scope, wantAud: "https://vault.localhost:8443"},
		{name: "upper-case tenant and client", tenant: strings.ToUpper(s.TenantID()), client: strings.ToUpper(p.AppID), secret: secret, scope: scope, wantAud: "https://vault.localhost:8443"},
		{name: "organizations", tenant: "organizations", client: p.AppID, secret: secret, scope: scope, wantAud: "https://vault.localhost:8443"},
		{name: "common", tenant: "common", client: p.AppID, secret: secret, scope: scope, wantAud: "https://vault.localhost:8443"},
		{name: "az double slash", client: p.AppID, secret: secret, scope: "https://management.core.windows.net//.default", wantAud: "https://management.core.windows.net/"},
		{name: "wrong secret", client: p.AppID, secret: lastCharChanged(secret), scope: scope, wantErr: identity.ErrInvalidClient, notErr: identity.ErrUnknownClient},
		{name: "another app's secret", client: p.AppID, secret: otherSecret, scope: scope, wantErr: identity.ErrInvalidClient, notErr: identity.ErrUnknownClient},
		{name: "empty secret", client: p.AppID, secret: "", scope: scope, wantErr: identity.ErrInvalidClient, notErr: identity.ErrUnknownClient},
		{name: "secret plus suffix", client: p.AppID, secret: secret + strings.Repeat("a", 2000), scope: scope, wantErr: identity.ErrInvalidClient},
		{name: "unknown client", client: "00000000-0000-0000-0000-000000000001", secret: secret, scope: scope, wantErr: identity.ErrUnknownClient},
		{name: "object id is not a client id", client: p.ObjectID, secret: secret, scope: scope, wantErr: identity.ErrUnknownClient},
		{name: "path in client id", client: "../principal/" + p.ObjectID, secret: secret, scope: scope, wantErr: identity.ErrUnknownClient},
		{name: "empty client id", client: "", secret: secret, scope: scope, wantErr: identity.ErrUnknownClient},
		{name: "unknown tenant", tenant: "11111111-1111-1111-1111-111111111111", client: p.AppID, secret: secret, scope: scope, wantErr: identity.ErrUnknownTenant},
		{name: "consumers tenant", tenant: "consumers", client: p.AppID, secret: secret, scope: scope, wantErr: identity.ErrUnknownTenant},
		{name: "scope without .default", client: p.AppID, secret: secret, scope: "https://vault.azure.net/secrets.read", wantErr: identity.ErrInvalidScope},
		{name: "only oidc scopes", client: p.AppID, secret: secret, scope: "openid profile", wantErr: identity.ErrInvalidScope},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := s.ClientCredentials(ctx, c.tenant, c.client, c.secret, c.scope)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				if c.notErr != nil && errors.Is(err, c.notErr) {
					t.Fatalf("err = %v, must not be %v", err, c.notErr)
				}
				if err != nil && (strings.Contains(err.Error(), secret) || (c.secret != "" && strings.Contains(err.Error(), c.secret))) {
					t.Fatalf("error text contains the secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("ClientCredentials: %v", err)
			}
			if tok.Resource != c.wantAud || tok.ExpiresIn != 3599 || !tok.ExpiresOn.Equal(clk.Now().Add(time.Hour).Truncate(time.Second)) {
				t.Errorf("token = resource %q, expires in %d, on %v; want %q, 3599, %v",
					tok.Resource, tok.ExpiresIn, tok.ExpiresOn, c.wantAud, clk.Now().Add(time.Hour).Truncate(time.Second))
			}
			claims, err := s.Verify(ctx, tok.AccessToken, []string{c.wantAud})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if claims.Principal != p {
				t.Errorf("claims principal = %+v, want %+v", claims.Principal, p)
			}
		})
	}
}

func TestAudienceFromScope(t *testing.T) {
	cases := []struct {
		scope, want string
		ok          bool
	}{
		{"https://vault.azure.net/.default", "https://vault.azure.net", true},
		{"https://vault.azure.net/.default openid offline_access profile", "https://vault.azure.net", true},
		{"openid  https://vault.localhost:8443/.default\tprofile", "https://vault.localhost:8443", true},
		{"https://management.core.windows.net//.default", "https://management.core.windows.net/", true},
		{"https://localhost:8443//.default", "https://localhost:8443/", true},
		{"00000000-0000-0000-0000-0000000000aa/.default", "00000000-0000-0000-0000-0000000000aa", true},
		{"", "", false},
		{"openid profile offline_access email", "", false},
		{"/.default", "", false},
		{"https://vault.azure.net/user_impersonation", "", false},
		{"https://vault.azure.net/.default https://management.azure.com/.default", "", false},
		{"https://" + strings.Repeat("a", 600) + "/.default", "", false},
	}
	for _, c := range cases {
		got, err := identity.AudienceFromScope(c.scope)
		if c.ok && (err != nil || got != c.want) {
			t.Errorf("AudienceFromScope(%q) = %q, %v; want %q", c.scope, got, err, c.want)
		}
		if !c.ok && !errors.Is(err, identity.ErrInvalidScope) {
			t.Errorf("AudienceFromScope(%q) = %q, %v; want ErrInvalidScope", c.scope, got, err)
		}
	}
}

func TestService_LookupPrincipal(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	p, _ := mustCreateSP(t, s, "lookup me")
	if p.TenantID != s.TenantID() || p.Type != identity.TypeServicePrincipal || p.DisplayName != "lookup me" {
		t.Fatalf("created principal = %+v", p)
	}
	for _, id := range []string{p.ObjectID, p.AppID, strings.ToUpper(p.ObjectID), strings.ToUpper(p.AppID)} {
		got, err := s.LookupPrincipal(ctx, id)
		if err != nil || got != p {
			t.Errorf("LookupPrincipal(%q) = %+v, %v; want %+v", id, got, err, p)
		}
	}
	for _, id := range []string{"", "00000000-0000-0000-0000-000000000000", "../deployment", "x/y", strings.Repeat("a", 200)} {
		if _, err := s.LookupPrincipal(ctx, id); !errors.Is(err, identity.ErrPrincipalNotFound) {
			t.Errorf("LookupPrincipal(%q) err = %v, want ErrPrincipalNotFound", id, err)
		}
	}
}

func TestService_CreateServicePrincipal_RejectsBadNames(t *testing.T) {
	s := newEnv(t).service(t, identity.Options{}, false)
	for _, name := range []string{"", "   ", "bad\nname", strings.Repeat("n", 257)} {
		if _, _, err := s.CreateServicePrincipal(context.Background(), name); err == nil || !strings.Contains(err.Error(), "validating display name") {
			t.Errorf("CreateServicePrincipal(%q) err = %v, want a display-name error", name, err)
		}
	}
}

func TestService_CreateServicePrincipal_SecretsAreUniqueAndEntraShaped(t *testing.T) {
	s := newEnv(t).service(t, identity.Options{}, false)
	seen := map[string]bool{}
	shape := regexp.MustCompile(`^[A-Za-z0-9_-]{3}8Q~[A-Za-z0-9_-]{34}$`)
	for range 5 {
		p, secret := mustCreateSP(t, s, "n")
		if !shape.MatchString(secret) {
			t.Errorf("secret %q does not look like an Entra secret", secret)
		}
		if seen[secret] || seen[p.AppID] || seen[p.ObjectID] {
			t.Fatalf("duplicate id or secret")
		}
		seen[secret], seen[p.AppID], seen[p.ObjectID] = true, true, true
	}
}

func TestNew_RejectsBadPublicURL(t *testing.T) {
	e := newEnv(t)
	for _, u := range []string{"", "localhost:8443", "ftp://localhost", "https://", "https://localhost:8443/base", "https://localhost?x=1", "https://u:p@localhost"} {
		_, err := identity.New(context.Background(), e.st, e.kr, identity.Options{PublicURL: u})
		if err == nil || !strings.Contains(err.Error(), "public url") {
			t.Errorf("New(PublicURL %q) err = %v, want a public url error", u, err)
		}
	}
}

func TestNew_NormalizesPublicURLAndIssuer(t *testing.T) {
	s := newEnv(t).service(t, identity.Options{PublicURL: "https://localhost:8443/"}, false)
	want := "https://localhost:8443/" + s.TenantID() + "/v2.0"
	for _, tenant := range []string{"", "organizations", "common", s.TenantID(), strings.ToUpper(s.TenantID())} {
		if got := s.Issuer(tenant); got != want {
			t.Errorf("Issuer(%q) = %q, want %q", tenant, got, want)
		}
	}
	if _, err := s.ResolveTenant("nope"); !errors.Is(err, identity.ErrUnknownTenant) {
		t.Errorf("ResolveTenant(nope) err = %v, want ErrUnknownTenant", err)
	}
}

func TestNew_RejectsUnknownRecordVersion(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	sealed, err := e.kr.Seal(ctx, keyring.SystemKeyID, "id/deployment", []byte(`{"v":2,"tenantId":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Apply(ctx, []store.Op{store.Put("id/deployment", sealed)}); err != nil {
		t.Fatal(err)
	}
	_, err = identity.New(ctx, e.st, e.kr, identity.Options{PublicURL: testPublicURL})
	if err == nil || !strings.Contains(err.Error(), "unsupported record version 2") {
		t.Fatalf("New over a v2 record err = %v, want an unsupported record version error", err)
	}
}

// TestService_NoPlaintextAtRest scans every stored value (and key) for the client secrets and
// the signing key's private exponent.
func TestService_NoPlaintextAtRest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.service(t, identity.Options{}, false)
	b, _, err := s.EnsureBootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, secret := mustCreateSP(t, s, "another")
	d := s.SigningKeyD()
	if len(d) < 200 {
		t.Fatalf("private exponent is %d bytes, want ~256", len(d))
	}
	needles := map[string][]byte{
		"bootstrap secret":    []byte(b.ClientSecret),
		"service secret":      []byte(secret),
		"signing key D":       d,
		"signing key D (mid)": d[64:96],
	}
	n := 0
	err = e.st.Scan(ctx, "", "", func(key string, value []byte) bool {
		n++
		for name, needle := range needles {
			if bytes.Contains(value, needle) || strings.Contains(key, string(needle)) {
				t.Errorf("stored %q contains the %s", key, name)
			}
		}
		if strings.HasPrefix(key, "id/") && (bytes.Contains(value, []byte(`"v"`)) || bytes.Contains(value, []byte("strongroom-admin"))) {
			t.Errorf("stored %q looks like plaintext JSON", key)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 6 {
		t.Fatalf("scanned %d records, want the deployment, admin, key and two principals with indexes", n)
	}
}
