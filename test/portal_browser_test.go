package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/testenv"
)

// The portal in a real headless Chromium (Debian's chromium package) against a real server
// process: the whole flow, read-only enforcement from inside the page, the canary
// check, axe-core on every page, and the screenshots in docs/portal/ (rewritten with
// STRONGROOM_PORTAL_SCREENSHOTS=1).

// requireAll reports whether the run must fail rather than skip on a missing component.
func requireAll() bool { return os.Getenv("STRONGROOM_REQUIRE_ALL") == "1" }

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if requireAll() {
		t.Fatal("chromium is not installed (required: STRONGROOM_REQUIRE_ALL=1); install Debian's chromium: apt-get install --no-install-recommends chromium")
	}
	t.Skip("chromium is not installed (install Debian's chromium; STRONGROOM_REQUIRE_ALL=1 makes this a failure)")
	return ""
}

// axeSource returns axe-core's script from test/portal-a11y's lock file, installed with npm ci
// into the user cache once per lock hash; "" (after t.Log) when npm is missing and the run
// does not require every component.
func axeSource(t *testing.T) string {
	t.Helper()
	lack := func(format string, args ...any) string {
		if requireAll() {
			t.Fatalf(format+" (required: STRONGROOM_REQUIRE_ALL=1; install Debian's nodejs and npm)", args...)
		}
		t.Logf("accessibility check skipped: "+format, args...)
		return ""
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return lack("npm is not installed")
	}
	lock, err := os.ReadFile(filepath.Join("portal-a11y", "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	root := filepath.Join(cache, "strongroom-test-a11y")
	installed := filepath.Join(root, "lock-"+hex.EncodeToString(sum[:8]))
	script := filepath.Join(installed, "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(script); err != nil {
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		tmp, err := os.MkdirTemp(root, "install-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		for _, f := range []string{"package.json", "package-lock.json"} {
			b, err := os.ReadFile(filepath.Join("portal-a11y", f))
			if err == nil {
				err = os.WriteFile(filepath.Join(tmp, f), b, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			return lack("npm ci of test/portal-a11y failed: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, installed); err != nil {
			if _, serr := os.Stat(script); serr != nil {
				t.Fatalf("moving the install into place: %v", err)
			}
		}
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// spkiHash is the base64 SHA-256 of the server certificate's public key: Chromium trusts
// exactly that key (--ignore-certificate-errors-spki-list), not any certificate.
func spkiHash(t *testing.T, srv *testenv.Server) string {
	t.Helper()
	pem, err := os.ReadFile(srv.APICAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// chrome is one headless browser tab.
type chrome struct {
	t      *testing.T
	ctx    context.Context
	origin string
	axe    string
	shots  bool
	// checked are the pages axe has looked at.
	checked []string
}

func newChrome(t *testing.T, srv *testenv.Server, axe string) *chrome {
	t.Helper()
	exe := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // root in CI containers; the page is our own
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("ignore-certificate-errors-spki-list", spkiHash(t, srv)),
		chromedp.Flag("host-resolver-rules", "MAP * 127.0.0.1"), // loopback only
		chromedp.Flag("disable-features", "HttpsUpgrades"),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() }) // ends the browser process we started
	c := &chrome{t: t, ctx: ctx, origin: srv.URL, axe: axe, shots: os.Getenv("STRONGROOM_PORTAL_SCREENSHOTS") == "1"}
	// The first call starts the browser: on the tab's own context, never one with a timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted, Origin: c.origin}); err != nil {
			t.Fatalf("granting %s: %v", name, err)
		}
	}
	return c
}

func (c *chrome) fail(err error) {
	c.t.Helper()
	loc, _ := chromedp.Run(c.ctx, chromedp.Location())
	c.t.Fatalf("browser at %s: %v", loc, err)
}

// do runs steps in order.
func (c *chrome) do(steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second) // one step, not the browser
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c.fail(err)
	}
}

func (c *chrome) open(path string) { c.t.Helper(); c.do(chromedp.Navigate(c.origin + path)) }

func (c *chrome) text(sel string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		c.fail(err)
	}
	return s
}

func (c *chrome) html() string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		c.fail(err)
	}
	return s
}

func (c *chrome) location() string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Location())
	if err != nil {
		c.fail(err)
	}
	return s
}

// evalString evaluates a script whose value (a promise awaited) is a string.
func (c *chrome) evalString(script string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
	if err != nil {
		c.fail(err)
	}
	return s
}

// check runs axe-core on the current page and fails on serious or critical violations.
func (c *chrome) check(name string) {
	c.t.Helper()
	if c.axe == "" {
		return
	}
	c.evalString(c.axe + ";\n'loaded'")
	res := c.evalString(`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
		.then(r => JSON.stringify(r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))))`)
	if res != "[]" {
		c.t.Errorf("axe: %s has serious or critical violations: %s", name, res)
	}
	c.checked = append(c.checked, name)
}

// shot saves a 1280x800 screenshot to docs/portal/<name>.png when asked to.
func (c *chrome) shot(name string) {
	c.t.Helper()
	if !c.shots {
		return
	}
	buf, err := chromedp.Run(c.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		c.fail(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "portal", name+".png"), buf, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// history is the URLs of the tab's navigation history.
func (c *chrome) history() []string {
	c.t.Helper()
	res, err := chromedp.Call(c.ctx, page.GetNavigationHistory, cdp.Empty{})
	if err != nil {
		c.fail(err)
	}
	var out []string
	for _, e := range res.Entries {
		out = append(out, e.URL)
	}
	return out
}

// signIn signs in through the portal's landing page and the issuer's form.
func (c *chrome) signIn(upn, password string, check bool) {
	c.t.Helper()
	c.open("/portal/vaults")
	c.do(chromedp.WaitVisible(chromedp.CSS(`a.button[href^="/portal/login"]`)))
	if check {
		c.check("sign-in")
		c.shot("sign-in")
	}
	c.submit(`a.button[href^="/portal/login"]`)
	c.do(
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), upn),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
	)
	c.evalString(`window.__srOld = true; "ok"`)
	c.do(chromedp.Submit(chromedp.CSS(`input[name=password]`)))
	c.waitNewPage()
	if !strings.Contains(c.location(), "/portal/vaults") {
		c.t.Fatalf("after sign-in the browser is at %s: %s", c.location(), snippet(c.html()))
	}
}

// submit clicks sel and waits until the next document has loaded (a marker set on the
// current one is gone), since a re-rendered form can come back at the same URL.
func (c *chrome) submit(sel string) {
	c.t.Helper()
	c.evalString(`window.__srOld = true; "ok"`)
	c.do(chromedp.Click(chromedp.CSS(sel)))
	c.waitNewPage()
}

func (c *chrome) waitNewPage() {
	c.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](`window.__srOld ? "old" : document.readyState`))
		if err == nil && s == "complete" {
			return
		}
	}
	c.t.Fatalf("no new page loaded at %s", c.location())
}

func (c *chrome) wantText(sel, want string) {
	c.t.Helper()
	got := ""
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = c.text(sel); strings.Contains(got, want) {
			return
		}
	}
	c.t.Fatalf("at %s, %s says %q, want %q", c.location(), sel, got, want)
}

// TestPortal_Browser is the flow in Chromium: sign in as a user, create a resource
// group and a vault through the wizard, create a secret, add a version, reveal it and see it
// hidden again after the timeout, copy it without showing it, delete and recover it, purge
// it, add a role assignment; then a read-only user sees no write controls and a post forged
// from inside the page gets 403. Afterwards the canary value is in no URL of the history, no
// server log line, no audit record and no file of the data folder; axe-core found no serious
// or critical violation on any page.
func TestPortal_Browser(t *testing.T) {
	chromiumPath(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("portal:\n  reveal_for: 3s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pe := newPortalEnv(t, &testenv.Options{Extra: []string{"--config", cfg}})
	alice := pe.user(t, "alice@contoso.com", "Passw0rd!!")
	pe.user(t, "bob@contoso.com", "Passw0rd!!")
	bob := pe.g.must(pe.graphTok, "GET", "/v1.0/users/bob@contoso.com", "", 200)["id"].(string)
	for _, role := range []string{roleContributor, roleSecretsOfficr, roleUserAccess} {
		pe.assign(t, pe.sub(), role, alice)
	}
	pe.assign(t, pe.sub(), roleReader, bob)
	canary := "canary-" + uuid.NewString()
	canary2 := "canary2-" + uuid.NewString()

	c := newChrome(t, pe.srv, axeSource(t))
	c.signIn("alice@contoso.com", "Passw0rd!!", true)
	c.check("key vaults (empty)")

	// The wizard: a new resource group and a vault.
	c.submit(`a[href="/portal/vaults/new"]`)
	c.check("create a key vault")
	c.shot("create-vault")
	c.do(chromedp.SendKeys(chromedp.CSS("#name"), "webvault"), chromedp.SendKeys(chromedp.CSS("#new_group"), "web-rg"),
		chromedp.SetValue(chromedp.CSS("#retention"), "30"), chromedp.SendKeys(chromedp.CSS("#tags"), "env=test"))
	c.submit(`button[value=review]`)
	c.wantText("h1", "Review + create")
	c.check("review + create")
	c.submit(`button[value=create]`)
	c.wantText("h1", "webvault")
	c.wantText(`[role=status]`, "The key vault was created.")
	c.check("overview")
	c.shot("overview")

	// Create a secret (the canary), then a new version.
	c.open("/portal/vaults/webvault/secrets")
	c.check("secrets (empty)")
	c.submit(`a[href="/portal/vaults/webvault/secrets/new"]`)
	c.check("create a secret")
	c.do(chromedp.SendKeys(chromedp.CSS("#name"), "canary"), chromedp.SendKeys(chromedp.CSS("#value"), canary),
		chromedp.SendKeys(chromedp.CSS("#content_type"), "text/plain"))
	c.shot("create-secret")
	c.submit(`form.form button[type=submit]`)
	c.wantText(`[role=status]`, "The secret was created.")
	c.submit(`a[href$="/new-version"]`)
	c.do(chromedp.SendKeys(chromedp.CSS("#value"), canary2))
	c.submit(`form.form button[type=submit]`)
	c.wantText(`[role=status]`, "A new version")
	c.check("secret versions")
	if n := strings.Count(c.html(), "/versions/"); n != 2 {
		t.Fatalf("the secret page links %d versions, want 2", n)
	}
	c.open("/portal/vaults/webvault/secrets")
	c.check("secrets")
	c.shot("secrets")

	// Reveal the current version: shown, announced, hidden again after reveal_for (3 s).
	c.open("/portal/vaults/webvault/secrets/canary")
	c.submit(`table a[href*="/versions/"]`)
	c.check("secret version")
	c.shot("secret-version")
	c.do(chromedp.Click(chromedp.CSS("#show-value")), chromedp.WaitVisible(chromedp.CSS("#secret-value")))
	if got := c.text("#secret-value"); got != canary2 {
		t.Fatalf("the revealed value is %q, want the current version's", got)
	}
	c.do(chromedp.Sleep(200 * time.Millisecond))
	c.wantText("#live", "Secret value shown")
	c.check("secret version, value shown")
	c.do(chromedp.WaitVisible(chromedp.CSS("#secret-mask"))) // the countdown ran out
	c.wantText("#live", "hidden again")
	if strings.Contains(c.html(), canary2) {
		t.Fatal("the value is still in the page after it was hidden")
	}
	// Keep visible stops the countdown; hide now hides at once.
	c.do(chromedp.Click(chromedp.CSS("#show-value")), chromedp.WaitVisible(chromedp.CSS("#keep-visible")),
		chromedp.Click(chromedp.CSS("#keep-visible")), chromedp.Sleep(3500*time.Millisecond))
	if got := c.text("#secret-value"); got != canary2 {
		t.Fatal("Keep visible did not keep the value visible")
	}
	c.do(chromedp.Click(chromedp.CSS("#hide-value")), chromedp.WaitVisible(chromedp.CSS("#secret-mask")))

	// Copy without showing it.
	c.do(chromedp.Click(chromedp.CSS("#copy-value")), chromedp.Sleep(500*time.Millisecond))
	c.wantText("#live", "Copied the secret value")
	clip := c.evalString(`navigator.clipboard.readText()`)
	if clip != canary2 {
		t.Fatalf("the clipboard holds %d characters, not the value", len(clip))
	}
	if strings.Contains(c.html(), canary2) {
		t.Fatal("copying showed the value in the page")
	}

	// Delete, recover, delete again, purge.
	c.open("/portal/vaults/webvault/secrets/canary")
	c.submit(`a[href$="/delete"]`)
	c.check("delete a secret")
	c.submit(`button.danger`)
	c.wantText(`[role=status]`, "The secret was deleted.")
	c.open("/portal/vaults/webvault/deleted-secrets")
	c.check("deleted secrets")
	c.shot("deleted-secrets")
	c.submit(`button[aria-label="Recover canary"]`)
	c.wantText(`[role=status]`, "The secret was recovered.")
	time.Sleep(300 * time.Millisecond)
	c.open("/portal/vaults/webvault/secrets/canary")
	c.submit(`a[href$="/delete"]`)
	c.submit(`button.danger`)
	c.open("/portal/vaults/webvault/deleted-secrets")
	c.submit(`a[aria-label="Purge canary"]`)
	c.check("purge a secret")
	c.do(chromedp.SendKeys(chromedp.CSS("#confirm_name"), "canar"))
	c.submit(`button.danger`)
	c.wantText(`.field-error`, "Type the secret's name")
	c.do(chromedp.SendKeys(chromedp.CSS("#confirm_name"), "canary"))
	c.submit(`button.danger`)
	c.wantText(`[role=status]`, "The secret was purged")

	// A role assignment: Key Vault Secrets User for bob on the vault.
	c.open("/portal/vaults/webvault/access")
	c.check("access configuration")
	c.do(chromedp.SendKeys(chromedp.CSS("#principal"), "bob@contoso.com"))
	c.submit(`form.form button[type=submit]`)
	c.wantText(`[role=status]`, "The role assignment was added.")
	if page := c.html(); !strings.Contains(page, "bob@contoso.com") || !strings.Contains(page, "Key Vault Secrets User") {
		t.Fatal("the access page does not list bob's new assignment")
	}
	c.shot("access")
	c.open("/portal/vaults/webvault/networking")
	c.check("networking")

	// The read-only blades, with something to show, and the destructive confirmations (not
	// confirmed: the vault is used below).
	vaultID := pe.sub() + "/resourceGroups/web-rg/providers/Microsoft.KeyVault/vaults/webvault"
	pe.env.assign(t, vaultID, "need-exp", "98728c90-32c7-4049-8429-847dc0f4fe37", "Audit", "", nil)
	pe.assign(t, vaultID, "3c1f7a52-9e84-4d0b-8a6e-2b5d9c0e7f41", alice) // Strongroom Audit Reader
	rot := pe.srv.Secrets("webvault", pe.cred, pe.hc)
	if _, err := rot.SetSecret(context.Background(), "rotating", secretParams("plain"), nil); err != nil {
		t.Fatal(err)
	}
	if st, m := pe.dataCall(t, pe.cred, "PUT", "webvault", "/secrets/rotating/rotationpolicy",
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P90D"},"rotator":{"kind":"generate"}}`); st != 200 {
		t.Fatalf("setting a rotation policy: %d %v", st, m)
	}
	for _, pg := range []struct{ path, name, shot string }{
		{"/portal/vaults/webvault/secrets/rotating/rotation", "rotation", "rotation"},
		{"/portal/vaults/webvault/events", "events", ""},
		{"/portal/vaults/webvault/policy", "policies", "policy"},
		{"/portal/vaults/webvault/audit?since=all", "audit records", "audit"},
		{"/portal/vaults/webvault/delete", "delete a vault", ""},
		{"/portal/vaults/webvault/access/permission-model", "switch the permission model", ""},
	} {
		c.open(pg.path)
		c.wantText("h1", strings.Fields(c.text("h1"))[0]) // the page rendered
		if strings.Contains(c.html(), `class="banner err"`) {
			t.Errorf("%s shows an error: %s", pg.path, c.text("main"))
		}
		c.check(pg.name)
		if pg.shot != "" {
			c.shot(pg.shot)
		}
	}
	// A vault on the access-policy model: its policies listed, the add form and the edit form.
	pe.createVault(t, "web-rg", "webpolicies", &armkeyvault.VaultProperties{EnableRbacAuthorization: to.Ptr(false),
		AccessPolicies: []*armkeyvault.AccessPolicyEntry{{TenantID: to.Ptr(pe.srv.Admin.TenantID), ObjectID: to.Ptr(bob),
			Permissions: &armkeyvault.Permissions{Secrets: []*armkeyvault.SecretPermissions{to.Ptr(armkeyvault.SecretPermissionsGet)}}}}})
	for _, path := range []string{"/portal/vaults/webpolicies/access", "/portal/vaults/webpolicies/access?policy=" + bob} {
		c.open(path)
		if !strings.Contains(c.html(), "bob@contoso.com") || !strings.Contains(c.html(), `name="policy_perm"`) {
			t.Errorf("%s: no access policies with their form: %s", path, c.text("main"))
		}
		c.check("access policies")
	}
	if _, err := pe.vaults.Delete(context.Background(), "web-rg", "webpolicies", nil); err != nil {
		t.Fatal(err)
	}
	c.open("/portal/deleted-vaults")
	if !strings.Contains(c.html(), "webpolicies") || !strings.Contains(c.html(), ">Recover<") {
		t.Errorf("the deleted vaults page: %s", c.text("main"))
	}
	c.check("deleted vaults")
	c.open("/portal/vaults")
	c.check("key vaults")
	c.shot("vaults")
	c.open("/portal/nothing")
	c.check("not found")
	c.submit(`header form button`) // sign out
	c.check("signed out")

	// The read-only person: a secret to read, no write controls, a forged post refused.
	ref := pe.srv.Secrets("webvault", pe.cred, pe.hc)
	if _, err := ref.SetSecret(context.Background(), "readable", secretParams("plain"), nil); err != nil {
		t.Fatal(err)
	}
	c.signIn("bob@contoso.com", "Passw0rd!!", false)
	c.open("/portal/vaults/webvault/secrets")
	page := c.html()
	if !strings.Contains(page, "readable") {
		t.Fatalf("bob does not see the secrets: %s", snippet(page))
	}
	for _, control := range []string{"Generate/Import", "+ Create"} {
		if strings.Contains(page, control) {
			t.Errorf("bob sees %q", control)
		}
	}
	c.open("/portal/vaults/webvault/access")
	if strings.Contains(c.html(), "Add role assignment") {
		t.Error("bob sees Add role assignment")
	}
	status := c.evalString(`fetch("/portal/vaults/webvault/secrets/new", {method: "POST", body: new URLSearchParams({name: "forged", value: "x", enabled: "yes"})}).then(r => String(r.status))`)
	if status != "403" {
		t.Errorf("bob's forged post from the page = %s, want 403", status)
	}
	if _, err := ref.GetSecret(context.Background(), "forged", "", nil); err == nil {
		t.Fatal("bob's forged post created a secret")
	}

	// The canary: in no URL of the history, no log line, no audit record, no file.
	hist := c.history()
	for _, u := range hist {
		if strings.Contains(u, canary) || strings.Contains(u, canary2) {
			t.Errorf("a visited URL holds the canary: %s", u)
		}
	}
	logs := pe.srv.Stdout.String() + pe.srv.Stderr.String()
	if strings.Contains(logs, canary) || strings.Contains(logs, canary2) {
		t.Error("the server log holds the canary")
	}
	audit := readAudit(t, pe.srv)
	if strings.Contains(audit, canary) || strings.Contains(audit, canary2) {
		t.Error("the audit log holds the canary")
	}
	for _, want := range []string{`"clientInfo":"strongroom-portal (reveal)"`, `"clientInfo":"strongroom-portal (copy)"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("no audit record with %s", want)
		}
	}
	wantPortalSecretGets(t, audit)
	err := filepath.WalkDir(pe.srv.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() { // folders, the operator socket
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(canary)) || bytes.Contains(b, []byte(canary2)) {
			t.Errorf("%s holds the canary in plaintext", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("axe checked %d pages: %s", len(c.checked), strings.Join(c.checked, ", "))
}

// wantPortalSecretGets checks that every reveal and copy was a SecretGet record.
func wantPortalSecretGets(t *testing.T, audit string) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(audit, "\n") {
		if !strings.Contains(line, `strongroom-portal (`) {
			continue
		}
		var rec struct {
			OperationName string `json:"operationName"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.OperationName != "SecretGet" {
			t.Errorf("a portal reveal or copy was audited as %q, want SecretGet", rec.OperationName)
		}
		n++
	}
	if n < 3 {
		t.Errorf("%d reveal and copy records, want at least 3", n)
	}
}
