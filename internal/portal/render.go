package portal

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// pageData is what every template gets.
type pageData struct {
	Title   string
	User    string // the signed-in person's name, "" on the sign-in pages
	Vault   string // the vault a blade belongs to
	Blade   string // the active blade in the vault's menu
	Flash   string // a status message ("Secret created"), announced by a live region
	Error   string // an error for the whole page
	Fields  map[string]string
	Can     map[string]bool
	Data    any
	Session sessionInfo
}

// sessionInfo tells the script when to warn about the idle timeout.
type sessionInfo struct {
	IdleSeconds   int
	RevealSeconds int
}

var funcs = template.FuncMap{
	"unix": func(v *int64) string {
		if v == nil || *v == 0 {
			return ""
		}
		return time.Unix(*v, 0).UTC().Format("2006-01-02 15:04 UTC")
	},
	"unixv": func(v int64) string {
		if v == 0 {
			return ""
		}
		return time.Unix(v, 0).UTC().Format("2006-01-02 15:04 UTC")
	},
	"enabled": func(v *bool) bool { return v == nil || *v },
	"deref":   func(v *bool) bool { return v != nil && *v },
	"derefInt": func(v *int) int {
		if v == nil {
			return 0
		}
		return *v
	},
	"path":      pathEscape,
	"lower":     strings.ToLower,
	"field":     func(m map[string]string, k string) string { return m[k] },
	"groupOf":   groupOf,
	"dateWords": dateWords,
}

// render writes page name with d (status, headers already set by ServeHTTP).
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	if s := sessionFrom(r); s != nil {
		d.User = s.Name
		if d.User == "" {
			d.User = s.UPN
		}
	}
	d.Session = sessionInfo{IdleSeconds: int(p.opts.Config.IdleTimeout.Seconds()), RevealSeconds: int(p.opts.Config.RevealFor.Seconds())}
	t, ok := p.pages[name]
	if !ok {
		http.Error(w, "missing page", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		p.opts.Log.Error("rendering portal page", "page", name, "err", err)
		http.Error(w, "The page could not be shown.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows msg on an error page (JSON for the script's requests).
func (p *Portal) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if wantsJSON(r) {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	p.render(w, r, status, "error", pageData{Title: http.StatusText(status), Error: msg})
}

// apiFailure shows an API error in a person's words, with the status the API gave.
func (p *Portal) apiFailure(w http.ResponseWriter, r *http.Request, err error) {
	if err == errSignInAgain {
		if r.Method == http.MethodGet && !wantsJSON(r) {
			http.Redirect(w, r, "/portal/signin?again=1&next="+urlQueryEscape(r.URL.RequestURI()), http.StatusFound)
			return
		}
		p.renderError(w, r, http.StatusUnauthorized, "Your sign-in has expired. Sign in again.")
		return
	}
	if ae, ok := err.(*apiError); ok {
		p.renderError(w, r, ae.Status, friendly(ae))
		return
	}
	p.opts.Log.Error("portal API call", "err", err)
	p.renderError(w, r, http.StatusInternalServerError, "Something went wrong on the server. The server log says what.")
}

// friendly is an API error in words a person understands (the API's own message is kept: it
// names the action and scope a refusal was about).
func friendly(e *apiError) string {
	switch {
	case e.Status == http.StatusForbidden:
		return "You do not have permission to do this. " + firstLine(e.Message)
	case e.Status == http.StatusNotFound:
		return "Not found. " + firstLine(e.Message)
	case e.Status == http.StatusConflict:
		return "This conflicts with what exists: " + firstLine(e.Message)
	case e.Status == http.StatusTooManyRequests:
		return "Too many requests to this vault; wait a few seconds and try again."
	}
	return firstLine(e.Message)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\r\n")
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// seeOther answers a successful form post with a redirect (post/redirect/get), carrying a
// fixed status message key, never anything the person typed.
func seeOther(w http.ResponseWriter, r *http.Request, to, flash string) {
	if flash != "" {
		if strings.Contains(to, "?") {
			to += "&done=" + flash
		} else {
			to += "?done=" + flash
		}
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// flashes are the status messages a redirect may name.
var flashes = map[string]string{
	"created":        "The secret was created.",
	"version":        "A new version of the secret was created.",
	"deleted":        "The secret was deleted. It can be recovered from Manage deleted secrets until it is purged.",
	"recovered":      "The secret was recovered.",
	"purged":         "The secret was purged for good.",
	"vault":          "The key vault was created.",
	"assigned":       "The role assignment was added.",
	"unassigned":     "The role assignment was removed.",
	"policysaved":    "The access policy was saved.",
	"policyremoved":  "The access policy was removed.",
	"networking":     "The networking settings were saved.",
	"vaultdeleted":   "The key vault was deleted. Until its retention period ends it can be recovered from Manage deleted vaults.",
	"switched":       "The permission model was switched.",
	"vaultrecovered": "The key vault was recovered, with its secrets, access policies and role assignments.",
	"vaultpurged":    "The deleted key vault was purged for good.",
	"signedinback":   "You signed in again.",
}

func flashOf(r *http.Request) string { return flashes[r.URL.Query().Get("done")] }
