package portal

import (
	"cmp"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/azkv"
)

// The Secrets blade: the list (server-side filter and paging), Generate/Import and New
// Version, the secret's versions, a version with Show secret value and Copy, delete, and
// Manage deleted secrets (recover, purge). Values are read only by the reveal route, a POST,
// whose answer is never cached; each read is the API's SecretGet, audited with clientInfo
// "strongroom-portal (reveal)" or "(copy)".

const pageSize = 25

var secretNameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

// secretRow is a list row.
type secretRow struct {
	Name, ContentType, Status, Expires, Version, Updated string
	Created                                              int64
	Enabled                                              bool
	ScheduledPurge, Deleted                              string
}

// nameOf is the secret name in an id (https://v.host/secrets/{name}[/{version}]).
func nameOf(id string) (name, version string) {
	u, err := url.Parse(id)
	if err != nil {
		return "", ""
	}
	seg := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(seg) >= 2 {
		name = seg[1]
	}
	if len(seg) >= 3 {
		version = seg[2]
	}
	return name, version
}

func rowOf(b azkv.SecretBundle) secretRow {
	name, ver := nameOf(b.ID)
	if name == "" {
		name, ver = nameOf(b.RecoveryID)
	}
	row := secretRow{Name: name, Version: ver, ContentType: b.ContentType, Enabled: b.Attributes.Enabled == nil || *b.Attributes.Enabled,
		Created: b.Attributes.Created, Updated: funcs["unixv"].(func(int64) string)(b.Attributes.Updated)}
	row.Status = "Enabled"
	if !row.Enabled {
		row.Status = "Disabled"
	}
	if b.Attributes.Expires != nil {
		row.Expires = time.Unix(*b.Attributes.Expires, 0).UTC().Format("2006-01-02 15:04 UTC")
		if time.Unix(*b.Attributes.Expires, 0).Before(time.Now()) {
			row.Status = "Expired"
		}
	}
	if b.ScheduledPurgeDate != 0 {
		row.ScheduledPurge = time.Unix(b.ScheduledPurgeDate, 0).UTC().Format("2006-01-02 15:04 UTC")
		row.Deleted = time.Unix(b.DeletedDate, 0).UTC().Format("2006-01-02 15:04 UTC")
	}
	return row
}

// skipOf is the $skiptoken of a next link.
func skipOf(next *string) string {
	if next == nil || *next == "" {
		return ""
	}
	u, err := url.Parse(*next)
	if err != nil {
		return ""
	}
	return u.Query().Get("$skiptoken")
}

// listPage reads the list at path from skip on, keeping the rows whose name contains filter
// (case-blind), until a page of rows is full or 40 API pages were read; next continues it.
func (p *Portal) listPage(r *http.Request, vault, path, filter, skip string) (rows []secretRow, next string, err error) {
	filter = strings.ToLower(filter)
	for range 40 {
		q := url.Values{"maxresults": {"25"}}
		if skip != "" {
			q.Set("$skiptoken", skip)
		}
		var res azkv.ListResult
		if err := p.data(r, vault, http.MethodGet, path, q, nil, &res, ""); err != nil {
			return nil, "", err
		}
		for _, b := range res.Value {
			row := rowOf(b)
			if filter == "" || strings.Contains(strings.ToLower(row.Name), filter) {
				rows = append(rows, row)
			}
		}
		skip = skipOf(res.NextLink)
		if skip == "" || len(rows) >= pageSize {
			break
		}
	}
	return rows, skip, nil
}

func (p *Portal) serveSecrets(w http.ResponseWriter, r *http.Request) {
	vault := r.PathValue("vault")
	filter := strings.TrimSpace(r.URL.Query().Get("filter"))
	if len(filter) > 127 {
		filter = filter[:127]
	}
	rows, next, err := p.listPage(r, vault, "/secrets", filter, r.URL.Query().Get("skip"))
	if err != nil {
		p.dataFailure(w, r, vault, err)
		return
	}
	nextURL := ""
	if next != "" {
		nextURL = "/portal/vaults/" + pathEscape(vault) + "/secrets?" + url.Values{"filter": {filter}, "skip": {next}}.Encode()
	}
	p.render(w, r, http.StatusOK, "secrets", pageData{Title: "Secrets · " + vault, Vault: vault, Blade: "secrets", Flash: flashOf(r),
		Can: p.vaultCan(r, vault), Data: map[string]any{"Rows": rows, "Filter": filter, "Next": nextURL, "First": r.URL.Query().Get("skip") != ""}})
}

// dataFailure explains a data-plane refusal: an ARM role without a data role is the common
// surprise (the Azure portal's most asked-about message).
func (p *Portal) dataFailure(w http.ResponseWriter, r *http.Request, vault string, err error) {
	if ae, ok := err.(*apiError); ok && ae.Status == http.StatusForbidden {
		msg := "You may not read the secrets of this vault. Managing a vault (Owner, Contributor) does not give access to its secrets: ask for a Key Vault data role (such as Key Vault Secrets User) or an access policy. " + firstLine(ae.Message)
		if strings.Contains(ae.Code, "Forbidden") && strings.Contains(ae.Message, "IP address") {
			msg = "The vault's firewall does not admit your address. " + firstLine(ae.Message)
		}
		p.render(w, r, http.StatusForbidden, "error", pageData{Title: "No access", Vault: vault, Blade: "secrets", Error: msg, Can: p.vaultCan(r, vault)})
		return
	}
	p.apiFailure(w, r, err)
}

// secretForm is the create / new-version form.
type secretForm struct {
	Name, Value, ContentType     string
	SetActivation, SetExpiration bool
	Activation, Expiration       string // datetime-local, UTC
	Enabled                      bool
	Tags                         string
	NewVersion                   bool
}

const dateForm = "2006-01-02T15:04"

func (p *Portal) serveSecretNew(w http.ResponseWriter, r *http.Request) {
	f := secretForm{Name: r.PathValue("name"), Enabled: true, NewVersion: r.PathValue("name") != ""}
	p.renderSecretForm(w, r, http.StatusOK, f, nil, "")
}

func (p *Portal) renderSecretForm(w http.ResponseWriter, r *http.Request, status int, f secretForm, fields map[string]string, msg string) {
	vault := r.PathValue("vault")
	title := "Create a secret"
	if f.NewVersion {
		title = "New version of " + f.Name
	}
	p.render(w, r, status, "secretnew", pageData{Title: title, Vault: vault, Blade: "secrets", Can: p.vaultCan(r, vault),
		Fields: fields, Error: msg, Data: f})
}

// serveSecretCreate sets a secret (a new secret, or a new version of one).
func (p *Portal) serveSecretCreate(w http.ResponseWriter, r *http.Request) {
	vault := r.PathValue("vault")
	f := secretForm{Name: strings.TrimSpace(r.PostFormValue("name")), Value: r.PostFormValue("value"),
		ContentType: strings.TrimSpace(r.PostFormValue("content_type")), SetActivation: r.PostFormValue("set_activation") == "on",
		SetExpiration: r.PostFormValue("set_expiration") == "on", Activation: r.PostFormValue("activation"),
		Expiration: r.PostFormValue("expiration"), Enabled: r.PostFormValue("enabled") != "no", Tags: r.PostFormValue("tags")}
	if n := r.PathValue("name"); n != "" {
		f.Name, f.NewVersion = n, true
	}
	fields := map[string]string{}
	if !secretNameRE.MatchString(f.Name) {
		fields["name"] = "A secret name is 1 to 127 letters, digits and hyphens."
	}
	if f.Value == "" {
		fields["value"] = "Enter the secret value."
	}
	attrs := &azkv.SecretAttributes{Enabled: &f.Enabled}
	var nbf, exp time.Time
	var err error
	if f.SetActivation {
		if nbf, err = time.Parse(dateForm, f.Activation); err != nil {
			fields["activation"] = "Enter the activation date and time (UTC)."
		} else {
			attrs.NotBefore = ptr(nbf.Unix())
		}
	}
	if f.SetExpiration {
		if exp, err = time.Parse(dateForm, f.Expiration); err != nil {
			fields["expiration"] = "Enter the expiration date and time (UTC)."
		} else {
			attrs.Expires = ptr(exp.Unix())
		}
	}
	if attrs.NotBefore != nil && attrs.Expires != nil && !exp.After(nbf) {
		fields["expiration"] = "The expiration date must be after the activation date."
	}
	tags, bad := parseTags(f.Tags)
	if bad != "" {
		fields["tags"] = bad
	}
	if len(fields) > 0 {
		f.Value = "" // not echoed back into the page
		p.renderSecretForm(w, r, http.StatusBadRequest, f, fields, "Some fields need attention.")
		return
	}
	in := azkv.SetParameters{Value: &f.Value, Attributes: attrs, Tags: tags}
	if f.ContentType != "" {
		in.ContentType = &f.ContentType
	}
	err = p.data(r, vault, http.MethodPut, "/secrets/"+pathEscape(f.Name), nil, in, nil, "")
	f.Value = ""
	if err != nil {
		ae, ok := err.(*apiError)
		if !ok || ae.Status == http.StatusForbidden || ae.Status == http.StatusUnauthorized {
			p.dataFailure(w, r, vault, err)
			return
		}
		field := "value"
		switch low := strings.ToLower(ae.Message); {
		case strings.Contains(low, "name"):
			field = "name"
		case strings.Contains(low, "expir"), strings.Contains(low, "policy"):
			field = "expiration"
		case strings.Contains(low, "tag"):
			field = "tags"
		case strings.Contains(low, "content"):
			field = "content_type"
		}
		p.renderSecretForm(w, r, ae.Status, f, map[string]string{field: friendly(ae)}, friendly(ae))
		return
	}
	flash := "created"
	if f.NewVersion {
		flash = "version"
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(vault)+"/secrets/"+pathEscape(f.Name), flash)
}

func ptr[T any](v T) *T { return &v }

// versions lists a secret's versions (metadata only: no value is read), newest first.
func (p *Portal) versions(r *http.Request, vault, name string) ([]azkv.SecretBundle, error) {
	var out []azkv.SecretBundle
	skip := ""
	for range 40 {
		q := url.Values{"maxresults": {"25"}}
		if skip != "" {
			q.Set("$skiptoken", skip)
		}
		var res azkv.ListResult
		if err := p.data(r, vault, http.MethodGet, "/secrets/"+pathEscape(name)+"/versions", q, nil, &res, ""); err != nil {
			return nil, err
		}
		out = append(out, res.Value...)
		if skip = skipOf(res.NextLink); skip == "" {
			break
		}
	}
	// Newest first: by creation second, then by version id, whose leading digits are the
	// creation millisecond.
	slices.SortStableFunc(out, func(a, b azkv.SecretBundle) int {
		if c := cmp.Compare(b.Attributes.Created, a.Attributes.Created); c != 0 {
			return c
		}
		_, va := nameOf(a.ID)
		_, vb := nameOf(b.ID)
		return strings.Compare(vb, va)
	})
	return out, nil
}

func (p *Portal) serveSecret(w http.ResponseWriter, r *http.Request) {
	vault, name := r.PathValue("vault"), r.PathValue("name")
	vs, err := p.versions(r, vault, name)
	if err == nil && len(vs) == 0 {
		err = &apiError{Status: http.StatusNotFound, Message: "The secret '" + name + "' has no versions."}
	}
	if err != nil {
		p.dataFailure(w, r, vault, err)
		return
	}
	rows := make([]secretRow, 0, len(vs))
	for _, b := range vs {
		rows = append(rows, rowOf(b))
	}
	p.render(w, r, http.StatusOK, "secret", pageData{Title: name + " · " + vault, Vault: vault, Blade: "secrets", Flash: flashOf(r),
		Can: p.vaultCan(r, vault), Data: map[string]any{"Name": name, "Current": rows[0], "Older": rows[1:]}})
}

func (p *Portal) serveVersion(w http.ResponseWriter, r *http.Request) {
	p.renderVersion(w, r, http.StatusOK, "")
}

// renderVersion shows a version's settings from the versions list (no value read); value,
// when not "", is a value the person asked to see without the script.
func (p *Portal) renderVersion(w http.ResponseWriter, r *http.Request, status int, value string) {
	vault, name, version := r.PathValue("vault"), r.PathValue("name"), r.PathValue("version")
	vs, err := p.versions(r, vault, name)
	if err != nil {
		p.dataFailure(w, r, vault, err)
		return
	}
	var b *azkv.SecretBundle
	for i := range vs {
		if _, v := nameOf(vs[i].ID); strings.EqualFold(v, version) {
			b = &vs[i]
		}
	}
	if b == nil {
		p.renderError(w, r, http.StatusNotFound, "The secret '"+name+"' has no version '"+version+"'.")
		return
	}
	p.render(w, r, status, "version", pageData{Title: name + " · " + vault, Vault: vault, Blade: "secrets", Can: p.vaultCan(r, vault),
		Data: map[string]any{"Name": name, "Version": version, "B": b, "Row": rowOf(*b), "Value": value, "Shown": value != ""}})
}

// serveReveal reads a version's value for the person: as JSON for the page's script (shown
// for RevealFor, or copied without being shown), or as the version page when the script is
// off. The answer is no-store like every portal answer; the value is in no URL and no log.
func (p *Portal) serveReveal(w http.ResponseWriter, r *http.Request) {
	vault, name, version := r.PathValue("vault"), r.PathValue("name"), r.PathValue("version")
	purpose := "reveal"
	if r.PostFormValue("purpose") == "copy" {
		purpose = "copy"
	}
	var b azkv.SecretBundle
	err := p.data(r, vault, http.MethodGet, "/secrets/"+pathEscape(name)+"/"+pathEscape(version), nil, nil, &b, ClientInfo+" ("+purpose+")")
	if err != nil {
		p.dataFailure(w, r, vault, err)
		return
	}
	value := ""
	if b.Value != nil {
		value = *b.Value
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"value": value, "seconds": int(p.opts.Config.RevealFor.Seconds())})
		return
	}
	p.renderVersion(w, r, http.StatusOK, value)
}

func (p *Portal) serveSecretDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	vault, name := r.PathValue("vault"), r.PathValue("name")
	p.render(w, r, http.StatusOK, "confirm", pageData{Title: "Delete " + name, Vault: vault, Blade: "secrets", Can: p.vaultCan(r, vault),
		Data: map[string]any{"Kind": "delete", "Name": name, "Action": "/portal/vaults/" + pathEscape(vault) + "/secrets/" + pathEscape(name) + "/delete",
			"Back": "/portal/vaults/" + pathEscape(vault) + "/secrets/" + pathEscape(name)}})
}

func (p *Portal) serveSecretDelete(w http.ResponseWriter, r *http.Request) {
	vault, name := r.PathValue("vault"), r.PathValue("name")
	if err := p.data(r, vault, http.MethodDelete, "/secrets/"+pathEscape(name), nil, nil, nil, ""); err != nil {
		p.dataFailure(w, r, vault, err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(vault)+"/secrets", "deleted")
}

func (p *Portal) serveDeleted(w http.ResponseWriter, r *http.Request) {
	vault := r.PathValue("vault")
	rows, next, err := p.listPage(r, vault, "/deletedsecrets", "", r.URL.Query().Get("skip"))
	if err != nil {
		p.dataFailure(w, r, vault, err)
		return
	}
	nextURL := ""
	if next != "" {
		nextURL = "/portal/vaults/" + pathEscape(vault) + "/deleted-secrets?" + url.Values{"skip": {next}}.Encode()
	}
	p.render(w, r, http.StatusOK, "deleted", pageData{Title: "Deleted secrets · " + vault, Vault: vault, Blade: "secrets", Flash: flashOf(r),
		Can: p.vaultCan(r, vault), Data: map[string]any{"Rows": rows, "Next": nextURL}})
}

func (p *Portal) serveRecover(w http.ResponseWriter, r *http.Request) {
	vault, name := r.PathValue("vault"), r.PathValue("name")
	if err := p.data(r, vault, http.MethodPost, "/deletedsecrets/"+pathEscape(name)+"/recover", nil, nil, nil, ""); err != nil {
		p.dataFailure(w, r, vault, err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(vault)+"/deleted-secrets", "recovered")
}

// recentSignIn reports whether the session's sign-in is recent enough for a destructive action.
func (p *Portal) recentSignIn(r *http.Request) bool {
	return p.opts.Now().Sub(sessionFrom(r).Created) < p.opts.Config.RecentSignIn
}

func purgeConfirm(vault, name string) typedConfirm {
	return typedConfirm{Heading: "Purge " + name + "?", Explain: []string{"Purging destroys the secret and every version for good: it cannot be recovered."},
		Label: "Type the secret's name, " + name + ", to confirm", Button: "Purge", What: "Purging", Name: name,
		Action: "/portal/vaults/" + pathEscape(vault) + "/deleted-secrets/" + pathEscape(name) + "/purge",
		Back:   "/portal/vaults/" + pathEscape(vault) + "/deleted-secrets"}
}

func (p *Portal) servePurgeConfirm(w http.ResponseWriter, r *http.Request) {
	vault, name := r.PathValue("vault"), r.PathValue("name")
	p.renderTyped(w, r, http.StatusOK, vault, "secrets", purgeConfirm(vault, name), "")
}

// servePurge purges a deleted secret once the person typed its name and signed in recently.
func (p *Portal) servePurge(w http.ResponseWriter, r *http.Request) {
	vault, name := r.PathValue("vault"), r.PathValue("name")
	if !p.confirmed(w, r, vault, "secrets", purgeConfirm(vault, name), "Type the secret's name, "+name+", exactly to purge it.") {
		return
	}
	if err := p.data(r, vault, http.MethodDelete, "/deletedsecrets/"+pathEscape(name), nil, nil, nil, ""); err != nil {
		p.dataFailure(w, r, vault, err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(vault)+"/deleted-secrets", "purged")
}
