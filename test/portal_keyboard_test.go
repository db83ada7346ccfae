package test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/testenv"
)

// The portal with the keyboard alone, and at a phone's width, in headless Chromium.

// key presses one key (kb.Tab, kb.Enter, " ") with optional modifiers.
func (c *chrome) key(k string, mods ...chromedp.Modifier) {
	c.t.Helper()
	c.do(chromedp.KeyEvent(k, chromedp.KeyModifiers(mods...)))
}

// keyAndWait presses k and waits for the next document (a link followed, a form posted).
func (c *chrome) keyAndWait(k string) {
	c.t.Helper()
	c.evalString(`window.__srOld = true; "ok"`)
	c.key(k)
	c.waitNewPage()
}

// typeKeys types s into the focused element, a key event per character.
func (c *chrome) typeKeys(s string) { c.t.Helper(); c.do(chromedp.KeyEvent(s)) }

// focusedMatches reports whether the focused element matches the CSS selector sel.
func (c *chrome) focusedMatches(sel string) bool {
	c.t.Helper()
	q, _ := json.Marshal(sel)
	return c.evalString(`String(!!document.activeElement && document.activeElement.matches(`+string(q)+`))`) == "true"
}

// tabTo presses Tab until the element matching sel has the focus.
func (c *chrome) tabTo(sel string) {
	c.t.Helper()
	for range 80 {
		c.key(kb.Tab)
		if c.focusedMatches(sel) {
			return
		}
	}
	c.t.Fatalf("at %s, Tab never reached %s", c.location(), sel)
}

// markControls numbers the page's visible controls in document order (a group of radio buttons
// counts once: Tab enters it at one button) and returns how many there are.
const markControls = `(() => {
  const sel = 'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])';
  let n = 0; const groups = {};
  for (const e of document.querySelectorAll(sel)) {
    if (e.disabled || e.getClientRects().length === 0 || getComputedStyle(e).visibility === "hidden") continue;
    if (e.type === "radio" && e.name) {
      if (!(e.name in groups)) groups[e.name] = n++;
      e.dataset.kb = groups[e.name];
      continue;
    }
    e.dataset.kb = n++;
  }
  return String(n);
})()`

// focusState is the focused control's number and whether its focus is visible (an outline of
// at least 2 px).
const focusState = `(() => {
  const e = document.activeElement;
  if (!e || e === document.body || e.dataset.kb === undefined) return JSON.stringify({kb: -1, tag: e ? e.tagName : ""});
  const s = getComputedStyle(e);
  return JSON.stringify({kb: Number(e.dataset.kb), tag: e.tagName + (e.id ? "#" + e.id : ""),
    visible: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2});
})()`

// walkFocus tabs through the whole page from its top and fails unless Tab reaches every
// control, in document order, each with a visible focus indicator.
func (c *chrome) walkFocus(name string) {
	c.t.Helper()
	c.evalString(`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); "ok"`)
	total, _ := strconv.Atoi(c.evalString(markControls))
	if total == 0 {
		c.t.Fatalf("%s: no controls", name)
	}
	seen, last, wrapped := map[int]bool{}, -1, false
	for i := 0; i < 3*total+20 && len(seen) < total; i++ {
		c.key(kb.Tab)
		var st struct {
			KB      int    `json:"kb"`
			Tag     string `json:"tag"`
			Visible bool   `json:"visible"`
		}
		if err := json.Unmarshal([]byte(c.evalString(focusState)), &st); err != nil {
			c.t.Fatal(err)
		}
		if st.KB < 0 || seen[st.KB] {
			continue // a date field's parts, or past the end
		}
		// The walk starts where the focus last was (blur keeps Chromium's starting point), so
		// it may wrap once, to the first control; any other step back is out of reading order.
		if st.KB < last && (st.KB != 0 || wrapped) {
			c.t.Errorf("%s: Tab went back from control %d to %d (%s): the focus order is not the reading order", name, last, st.KB, st.Tag)
		}
		wrapped = wrapped || st.KB < last
		if !st.Visible {
			c.t.Errorf("%s: control %d (%s) has no visible focus indicator", name, st.KB, st.Tag)
		}
		seen[st.KB], last = true, st.KB
	}
	c.t.Logf("%s: Tab reached %d of %d controls", name, len(seen), total)
	if len(seen) != total {
		var missed []string
		for i := range total {
			if !seen[i] {
				missed = append(missed, c.evalString(`(() => { const e = document.querySelector('[data-kb="`+strconv.Itoa(i)+`"]'); return e.outerHTML.slice(0, 120); })()`))
			}
		}
		c.t.Errorf("%s: Tab reached %d of %d controls; not: %s", name, len(seen), total, strings.Join(missed, " | "))
	}
}

// TestPortal_KeyboardAndPhone: the main flow (sign in, create a secret, show its value and
// hide it) with key events only (Tab, Shift+Tab, Enter, Space and typing), Tab reaching every
// control of every page on the way in reading order with a visible focus outline; then the main
// pages at a phone's width (390x844) without horizontal scrolling, and the secrets blade's
// screenshot docs/portal/phone-secrets.png (with STRONGROOM_PORTAL_SCREENSHOTS=1).
func TestPortal_KeyboardAndPhone(t *testing.T) {
	chromiumPath(t)
	pe := newPortalEnv(t, &testenv.Options{Extra: portalConfig(t, "portal:\n  reveal_for: 2m\nevents:\n  allowed_destinations: ['127.0.0.0/8']\n  allow_http: true\n"),
		Env: []string{"STRONGROOM_DEV=1"}})
	alice := pe.user(t, "alice@contoso.com", "Passw0rd!!")
	for _, role := range []string{roleContributor, roleSecretsOfficr, roleUserAccess} {
		pe.assign(t, pe.sub(), role, alice)
	}
	kv := pe.createVault(t, "kb-rg", "kbvault", nil)
	// An audit blade with rows, and a policy blade with an assignment, for the phone pass.
	vaultID := pe.sub() + "/resourceGroups/kb-rg/providers/Microsoft.KeyVault/vaults/kbvault"
	pe.assign(t, vaultID, "3c1f7a52-9e84-4d0b-8a6e-2b5d9c0e7f41", alice) // Strongroom Audit Reader
	pe.env.assign(t, vaultID, "need-exp", "98728c90-32c7-4049-8429-847dc0f4fe37", "Audit", "", nil)
	pe.subscribe(t, "kb-rg", "kbvault", "ops", evSubBody(newEvHook(t).srv.URL+"/hook", "EventGridSchema", 5))
	value := "kb-" + uuid.NewString()
	c := newChrome(t, pe.srv, axeSource(t))

	t.Run("keyboard", func(t *testing.T) {
		c.t = t
		c.open("/portal/vaults")
		css := c.evalString(`fetch("/portal/static/portal.css").then(r => r.text())`)
		if !strings.Contains(css, ":focus-visible { outline: 3px solid") {
			t.Error("the stylesheet has no :focus-visible outline")
		}
		c.do(chromedp.WaitVisible(chromedp.CSS(`a.button[href^="/portal/login"]`)))
		c.walkFocus("sign-in")
		c.tabTo(`a.button[href^="/portal/login"]`)
		c.keyAndWait(kb.Enter)
		c.tabTo(`input[name=username]`)
		c.typeKeys("alice@contoso.com")
		c.key(kb.Tab)
		if !c.focusedMatches(`input[name=password]`) {
			t.Fatal("Tab from the user name does not reach the password")
		}
		c.typeKeys("Passw0rd!!")
		c.keyAndWait(kb.Enter)
		if !strings.HasSuffix(c.location(), "/portal/vaults") {
			t.Fatalf("after signing in with the keyboard the browser is at %s", c.location())
		}

		c.walkFocus("key vaults")
		c.tabTo(`a[href="/portal/vaults/kbvault"]`)
		c.keyAndWait(kb.Enter)
		c.walkFocus("overview")
		c.tabTo(`nav.blades a[href="/portal/vaults/kbvault/secrets"]`)
		c.keyAndWait(kb.Enter)
		c.walkFocus("secrets")
		c.tabTo(`a[href="/portal/vaults/kbvault/secrets/new"]`)
		c.keyAndWait(kb.Enter)

		c.walkFocus("create a secret")
		c.tabTo(`#name`)
		c.typeKeys("kbsecret")
		c.key(kb.Tab)
		if !c.focusedMatches(`#value`) {
			t.Fatal("Tab from the name does not reach the value")
		}
		c.typeKeys(value)
		c.key(kb.Tab, chromedp.ModifierShift)
		if !c.focusedMatches(`#name`) {
			t.Fatal("Shift+Tab from the value does not go back to the name")
		}
		c.tabTo(`#toggle-mask`)
		c.key(" ")
		if c.evalString(`document.getElementById("toggle-mask").getAttribute("aria-pressed")`) != "true" {
			t.Error("Space on Show value while typing did not press it")
		}
		c.key(" ")
		c.tabTo(`form.form button[type=submit]`)
		c.keyAndWait(kb.Enter)
		c.wantText(`[role=status]`, "The secret was created.")

		c.walkFocus("secret")
		c.tabTo(`table a[href*="/versions/"]`)
		c.keyAndWait(kb.Enter)
		c.walkFocus("version")
		c.tabTo(`#show-value`)
		c.key(kb.Enter)
		c.do(chromedp.WaitVisible(chromedp.CSS("#secret-value")))
		if got := c.text("#secret-value"); got != value {
			t.Fatalf("the value shown has %d characters, not the value typed", len(got))
		}
		if !c.focusedMatches(`#hide-value`) {
			t.Error("after Show secret value the focus is not on Hide now")
		}
		c.walkFocus("version, value shown")
		c.tabTo(`#hide-value`)
		c.key(" ")
		c.do(chromedp.WaitVisible(chromedp.CSS("#secret-mask")))
		if !c.focusedMatches(`#show-value`) {
			t.Error("after Hide now the focus is not on Show secret value")
		}
		if strings.Contains(c.html(), value) {
			t.Error("the value is still in the page after Hide now")
		}
		c.check("version, after the keyboard flow")
	})

	t.Run("phone", func(t *testing.T) {
		c.t = t
		if _, err := kv.SetSecret(context.Background(), "a-secret-with-a-rather-long-name-for-a-phone-screen", secretParams("x"), nil); err != nil {
			t.Fatal(err)
		}
		c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		version := c.evalString(`fetch("/portal/vaults/kbvault/secrets/kbsecret").then(r => r.text()).then(t => (t.match(/\/versions\/([0-9a-f]+)/) || ["", ""])[1])`)
		if version == "" {
			t.Fatal("no version of kbsecret")
		}
		for _, page := range []string{"/portal/vaults", "/portal/vaults/new", "/portal/vaults/kbvault", "/portal/vaults/kbvault/secrets",
			"/portal/vaults/kbvault/secrets/new", "/portal/vaults/kbvault/secrets/kbsecret", "/portal/vaults/kbvault/secrets/kbsecret/versions/" + version,
			"/portal/vaults/kbvault/secrets/kbsecret/rotation", "/portal/vaults/kbvault/deleted-secrets", "/portal/vaults/kbvault/access",
			"/portal/vaults/kbvault/networking", "/portal/vaults/kbvault/events", "/portal/vaults/kbvault/policy",
			"/portal/vaults/kbvault/audit?since=all", "/portal/vaults/kbvault/delete"} {
			c.open(page)
			c.do(chromedp.WaitVisible(chromedp.CSS("main h1")))
			res := c.evalString(`(() => { const d = document.documentElement;
				if (d.scrollWidth <= d.clientWidth) return "ok";
				// What sticks out: elements, and text that overflows its element.
				const wide = [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > d.clientWidth + 1)
					.slice(-3).map(e => e.tagName + (e.className ? "." + e.className : ""));
				const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
				for (let n; (n = w.nextNode()) && wide.length < 6; ) {
					const r = document.createRange(); r.selectNodeContents(n);
					if (r.getBoundingClientRect().right > d.clientWidth + 1) wide.push("text '" + n.textContent.trim().slice(0, 40) + "' in " + n.parentElement.tagName);
				}
				return d.scrollWidth + " > " + d.clientWidth + " (" + wide.join(", ") + ")"; })()`)
			if res != "ok" {
				t.Errorf("at 390 px %s scrolls sideways: %s", page, res)
			}
			if page == "/portal/vaults/kbvault/secrets" && c.shots {
				buf, err := chromedp.Run(c.ctx, chromedp.CaptureScreenshot())
				if err != nil {
					c.fail(err)
				}
				if err := os.WriteFile(filepath.Join("..", "docs", "portal", "phone-secrets.png"), buf, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
