package portal

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/strongroom/strongroom/internal/azkv/arm"
)

// The Key vaults blade, the create-vault wizard, the vault's Overview and Networking blades.

// Actions the pages ask Permits about to decide which controls to show.
const (
	actVaultWrite  = "Microsoft.KeyVault/vaults/write"
	actGroupWrite  = "Microsoft.Resources/subscriptions/resourceGroups/write"
	actRoleWrite   = "Microsoft.Authorization/roleAssignments/write"
	actRoleDelete  = "Microsoft.Authorization/roleAssignments/delete"
	actSetSecret   = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
	actGetSecret   = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
	actDelete      = "Microsoft.KeyVault/vaults/secrets/delete"
	actRecover     = "Microsoft.KeyVault/vaults/secrets/recover/action"
	actPurge       = "Microsoft.KeyVault/vaults/secrets/purge/action"
	actReadSecrets = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
)

// regions offered by the wizard (any string is a location to the server).
var regions = []string{"eastus", "eastus2", "westus", "westus2", "centralus", "northeurope", "westeurope", "uksouth", "southeastasia", "australiaeast", "japaneast"}

var (
	vaultNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)
	groupNameRE = regexp.MustCompile(`^[-\w._()]{1,90}$`)
)

// validVaultName is Key Vault's vault name rule (the server's own, service.ValidVaultName): 3-24
// letters, digits and hyphens, starting with a letter, ending with a letter or digit, no "--".
func validVaultName(name string) bool {
	return vaultNameRE.MatchString(name) && !strings.Contains(name, "--")
}

func (p *Portal) subscriptionPath() string { return "/subscriptions/" + p.opts.SubscriptionID }

// listVaults lists the vaults the person may read in the subscription.
func (p *Portal) listVaults(r *http.Request) ([]arm.Vault, error) {
	var out []arm.Vault
	next := p.subscriptionPath() + "/providers/Microsoft.KeyVault/vaults"
	q := url.Values{}
	for range 20 { // at most 20 pages
		var page struct {
			Value    []arm.Vault `json:"value"`
			NextLink string      `json:"nextLink"`
		}
		if err := p.arm(r, http.MethodGet, next, armAPIVersion, q, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Value...)
		if page.NextLink == "" {
			break
		}
		u, err := url.Parse(page.NextLink)
		if err != nil {
			break
		}
		next, q = u.Path, u.Query()
		q.Del("api-version")
	}
	slices.SortFunc(out, func(a, b arm.Vault) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, nil
}

// findVault finds a vault by name through ARM (what the person may read of it).
func (p *Portal) findVault(r *http.Request, name string) (*arm.Vault, error) {
	vaults, err := p.listVaults(r)
	if err != nil {
		return nil, err
	}
	for i := range vaults {
		if strings.EqualFold(vaults[i].Name, name) {
			return &vaults[i], nil
		}
	}
	return nil, &apiError{Status: http.StatusNotFound, Code: "VaultNotFound", Message: "There is no key vault named '" + name + "' that you may read."}
}

func (p *Portal) serveVaults(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r)
	vaults, err := p.listVaults(r)
	if err != nil {
		p.apiFailure(w, r, err)
		return
	}
	can := map[string]bool{"create": p.opts.Permits(s.UserID, "", p.subscriptionPath(), actVaultWrite, false)}
	p.render(w, r, http.StatusOK, "vaults", pageData{Title: "Key vaults", Flash: flashOf(r), Can: can, Data: vaults})
}

// vaultForm is the wizard's fields, as posted.
type vaultForm struct {
	Name, Group, NewGroup, Location string
	Retention                       int
	PurgeProtection                 bool
	RBAC                            bool
	PublicAccess                    string // all, selected, disabled
	IPRules                         string
	Bypass                          bool
	Tags                            string
}

func defaultVaultForm() vaultForm {
	return vaultForm{Location: "eastus", Retention: 90, RBAC: true, PublicAccess: "all", Bypass: true}
}

func readVaultForm(r *http.Request) vaultForm {
	f := vaultForm{Name: strings.TrimSpace(r.PostFormValue("name")), Group: r.PostFormValue("group"),
		NewGroup: strings.TrimSpace(r.PostFormValue("new_group")), Location: r.PostFormValue("location"),
		PurgeProtection: r.PostFormValue("purge_protection") == "on", RBAC: r.PostFormValue("permission_model") != "access_policies",
		PublicAccess: r.PostFormValue("public_access"), IPRules: r.PostFormValue("ip_rules"),
		Bypass: r.PostFormValue("bypass") == "on", Tags: r.PostFormValue("tags")}
	f.Retention, _ = strconv.Atoi(r.PostFormValue("retention"))
	return f
}

// check validates the wizard's fields, by field.
func (f *vaultForm) check() map[string]string {
	errs := map[string]string{}
	if !validVaultName(f.Name) {
		errs["name"] = "A vault name is 3 to 24 letters, digits and single hyphens, starting with a letter and ending with a letter or digit."
	}
	switch {
	case f.Group == "" && f.NewGroup == "":
		errs["group"] = "Choose a resource group, or name a new one."
	case f.NewGroup != "" && !groupNameRE.MatchString(f.NewGroup):
		errs["new_group"] = "A resource group name is up to 90 letters, digits, underscores, hyphens, periods and parentheses."
	}
	if !slices.Contains(regions, f.Location) {
		errs["location"] = "Choose a region from the list."
	}
	if f.Retention < 7 || f.Retention > 90 {
		errs["retention"] = "Days to retain deleted vaults must be between 7 and 90."
	}
	if f.PublicAccess != "all" && f.PublicAccess != "selected" && f.PublicAccess != "disabled" {
		errs["public_access"] = "Choose how the vault may be reached."
	}
	for _, ip := range splitLines(f.IPRules) {
		if !ipRuleRE.MatchString(ip) {
			errs["ip_rules"] = "'" + truncate(ip, 50) + "' is not an IPv4 address or CIDR range (such as 203.0.113.0/24)."
			break
		}
	}
	if _, bad := parseTags(f.Tags); bad != "" {
		errs["tags"] = bad
	}
	return errs
}

var ipRuleRE = regexp.MustCompile(`^\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?$`)

func splitLines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// parseTags reads "name=value" lines; bad says what is wrong.
func parseTags(s string) (map[string]string, string) {
	tags := map[string]string{}
	for _, l := range splitLines(s) {
		k, v, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || len(k) > 512 || len(v) > 256 {
			return nil, "Write each tag on its own line as name=value (names up to 512 characters, values up to 256)."
		}
		tags[k] = strings.TrimSpace(v)
	}
	if len(tags) > 15 {
		return nil, "A resource takes at most 15 tags."
	}
	return tags, ""
}

func (p *Portal) groups(r *http.Request) ([]arm.ResourceGroup, error) {
	var page struct {
		Value []arm.ResourceGroup `json:"value"`
	}
	err := p.arm(r, http.MethodGet, p.subscriptionPath()+"/resourcegroups", armAPIVersion, nil, nil, &page)
	return page.Value, err
}

func (p *Portal) serveVaultNew(w http.ResponseWriter, r *http.Request) {
	p.renderWizard(w, r, http.StatusOK, "vaultnew", defaultVaultForm(), nil, "")
}

func (p *Portal) renderWizard(w http.ResponseWriter, r *http.Request, status int, page string, f vaultForm, fields map[string]string, msg string) {
	groups, err := p.groups(r)
	if err != nil {
		p.apiFailure(w, r, err)
		return
	}
	s := sessionFrom(r)
	can := map[string]bool{"create": p.opts.Permits(s.UserID, "", p.subscriptionPath(), actVaultWrite, false),
		"group": p.opts.Permits(s.UserID, "", p.subscriptionPath(), actGroupWrite, false)}
	tags, _ := parseTags(f.Tags)
	p.render(w, r, status, page, pageData{Title: "Create a key vault", Error: msg, Fields: fields, Can: can,
		Data: map[string]any{"Form": f, "Groups": groups, "Regions": regions, "IPs": splitLines(f.IPRules), "TagMap": tags}})
}

// serveVaultCreate is the wizard's post: "review" checks and shows the summary, "edit" goes
// back to the form, "create" makes the resource group (when new) and the vault.
func (p *Portal) serveVaultCreate(w http.ResponseWriter, r *http.Request) {
	f := readVaultForm(r)
	step := r.PostFormValue("step")
	if step == "edit" {
		p.renderWizard(w, r, http.StatusOK, "vaultnew", f, nil, "")
		return
	}
	if errs := f.check(); len(errs) > 0 {
		p.renderWizard(w, r, http.StatusBadRequest, "vaultnew", f, errs, "Some fields need attention before the vault can be created.")
		return
	}
	if step != "create" {
		p.renderWizard(w, r, http.StatusOK, "vaultreview", f, nil, "")
		return
	}
	s := sessionFrom(r)
	group := f.Group
	if f.NewGroup != "" {
		group = f.NewGroup
		if err := p.arm(r, http.MethodPut, p.subscriptionPath()+"/resourcegroups/"+pathEscape(group), armAPIVersion, nil,
			map[string]any{"location": f.Location}, nil); err != nil {
			p.wizardError(w, r, f, "new_group", err)
			return
		}
	}
	tags, _ := parseTags(f.Tags)
	props := &arm.VaultProperties{TenantID: p.opts.TenantID, Sku: &arm.Sku{Family: "A", Name: "standard"},
		AccessPolicies: []arm.AccessPolicy{}, SoftDeleteRetentionInDays: &f.Retention, EnableRbacAuthorization: &f.RBAC}
	if f.PurgeProtection {
		props.EnablePurgeProtection = &f.PurgeProtection
	}
	if !f.RBAC { // as the Azure portal does: the creator may manage the secrets of the new vault
		props.AccessPolicies = []arm.AccessPolicy{{TenantID: p.opts.TenantID, ObjectID: s.UserID,
			Permissions: arm.Permissions{Secrets: []string{"all"}}}}
	}
	switch f.PublicAccess {
	case "disabled":
		props.PublicNetworkAccess = "Disabled"
	case "selected":
		acl := &arm.NetworkRuleSet{DefaultAction: "Deny", Bypass: "None"}
		if f.Bypass {
			acl.Bypass = "AzureServices"
		}
		for _, ip := range splitLines(f.IPRules) {
			acl.IPRules = append(acl.IPRules, arm.IPRule{Value: ip})
		}
		props.NetworkAcls = acl
	}
	path := p.subscriptionPath() + "/resourceGroups/" + pathEscape(group) + "/providers/Microsoft.KeyVault/vaults/" + pathEscape(f.Name)
	if err := p.arm(r, http.MethodPut, path, armAPIVersion, nil, arm.VaultInput{Location: f.Location, Tags: tags, Properties: props}, nil); err != nil {
		p.wizardError(w, r, f, "name", err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(f.Name), "vault")
}

// wizardError shows an API refusal next to the field it concerns.
func (p *Portal) wizardError(w http.ResponseWriter, r *http.Request, f vaultForm, field string, err error) {
	ae, ok := err.(*apiError)
	if !ok {
		p.apiFailure(w, r, err)
		return
	}
	if ae.Status == http.StatusForbidden {
		field = ""
	}
	msg := friendly(ae)
	fields := map[string]string{}
	if field != "" {
		fields[field] = msg
	}
	p.renderWizard(w, r, ae.Status, "vaultnew", f, fields, msg)
}

// vaultPage loads the vault for one of its blades and what the person may do there.
func (p *Portal) vaultPage(w http.ResponseWriter, r *http.Request) (*arm.Vault, map[string]bool, bool) {
	name := r.PathValue("vault")
	v, err := p.findVault(r, name)
	if err != nil {
		p.apiFailure(w, r, err)
		return nil, nil, false
	}
	return v, p.vaultCan(r, v.Name), true
}

func (p *Portal) vaultCan(r *http.Request, vault string) map[string]bool {
	oid := sessionFrom(r).UserID
	can := map[string]bool{
		"vaultWrite":  p.opts.Permits(oid, vault, "", actVaultWrite, false),
		"roleWrite":   p.opts.Permits(oid, vault, "", actRoleWrite, false),
		"roleDelete":  p.opts.Permits(oid, vault, "", actRoleDelete, false),
		"policyWrite": p.opts.Permits(oid, vault, "", actPolicyWrite, false),
		"vaultDelete": p.opts.Permits(oid, vault, "", actVaultDelete, false),
		"set":         p.opts.Permits(oid, vault, "/secrets", actSetSecret, true),
		"get":         p.opts.Permits(oid, vault, "/secrets", actGetSecret, true),
		"delete":      p.opts.Permits(oid, vault, "/secrets", actDelete, true),
		"recover":     p.opts.Permits(oid, vault, "/secrets", actRecover, true),
		"purge":       p.opts.Permits(oid, vault, "/secrets", actPurge, true),
		"list":        p.opts.Permits(oid, vault, "/secrets", actReadSecrets, true),
	}
	// Switching the permission model takes both rights at the vault (the API's rule).
	can["switchModel"] = can["vaultWrite"] && can["roleWrite"]
	return can
}

func (p *Portal) serveOverview(w http.ResponseWriter, r *http.Request) {
	v, can, ok := p.vaultPage(w, r)
	if !ok {
		return
	}
	p.render(w, r, http.StatusOK, "overview", pageData{Title: v.Name, Vault: v.Name, Blade: "overview", Flash: flashOf(r), Can: can,
		Data: map[string]any{"V": v, "Group": groupOf(v.ID)}})
}

// groupOf is the resource group named in a resource id.
func groupOf(id string) string {
	parts := strings.Split(id, "/")
	for i := 0; i+1 < len(parts); i++ {
		if strings.EqualFold(parts[i], "resourceGroups") {
			return parts[i+1]
		}
	}
	return ""
}

func (p *Portal) serveNetworking(w http.ResponseWriter, r *http.Request) {
	v, can, ok := p.vaultPage(w, r)
	if !ok {
		return
	}
	p.renderNetworking(w, r, http.StatusOK, v, can, nil, "")
}

func (p *Portal) renderNetworking(w http.ResponseWriter, r *http.Request, status int, v *arm.Vault, can map[string]bool, fields map[string]string, msg string) {
	access, ips, bypass := "all", []string{}, true
	if v.Properties.PublicNetworkAccess == "Disabled" {
		access = "disabled"
	} else if acl := v.Properties.NetworkAcls; acl != nil && strings.EqualFold(acl.DefaultAction, "Deny") {
		access = "selected"
	}
	if acl := v.Properties.NetworkAcls; acl != nil {
		for _, ip := range acl.IPRules {
			ips = append(ips, ip.Value)
		}
		bypass = !strings.EqualFold(acl.Bypass, "None")
	}
	p.render(w, r, status, "networking", pageData{Title: "Networking · " + v.Name, Vault: v.Name, Blade: "networking", Flash: flashOf(r),
		Can: can, Fields: fields, Error: msg, Data: map[string]any{"V": v, "Access": access, "IPs": strings.Join(ips, "\n"), "Bypass": bypass}})
}

// serveNetworkingSave patches the vault's public access and firewall rules.
func (p *Portal) serveNetworkingSave(w http.ResponseWriter, r *http.Request) {
	v, can, ok := p.vaultPage(w, r)
	if !ok {
		return
	}
	f := vaultForm{PublicAccess: r.PostFormValue("public_access"), IPRules: r.PostFormValue("ip_rules"), Bypass: r.PostFormValue("bypass") == "on"}
	fields := map[string]string{}
	for _, ip := range splitLines(f.IPRules) {
		if !ipRuleRE.MatchString(ip) {
			fields["ip_rules"] = "'" + truncate(ip, 50) + "' is not an IPv4 address or CIDR range (such as 203.0.113.0/24)."
		}
	}
	if f.PublicAccess != "all" && f.PublicAccess != "selected" && f.PublicAccess != "disabled" {
		fields["public_access"] = "Choose how the vault may be reached."
	}
	if len(fields) > 0 {
		p.renderNetworking(w, r, http.StatusBadRequest, v, can, fields, "Some fields need attention.")
		return
	}
	acl := &arm.NetworkRuleSet{DefaultAction: "Allow", Bypass: "AzureServices", IPRules: []arm.IPRule{}}
	if !f.Bypass {
		acl.Bypass = "None"
	}
	pna := "Enabled"
	switch f.PublicAccess {
	case "selected":
		acl.DefaultAction = "Deny"
		for _, ip := range splitLines(f.IPRules) {
			acl.IPRules = append(acl.IPRules, arm.IPRule{Value: ip})
		}
	case "disabled":
		pna = "Disabled"
	}
	// A map, not arm.VaultPatch: only the fields named here change.
	patch := map[string]any{"properties": map[string]any{"networkAcls": acl, "publicNetworkAccess": pna}}
	if err := p.arm(r, http.MethodPatch, v.ID, armAPIVersion, nil, patch, nil); err != nil {
		if ae, ok := err.(*apiError); ok && ae.Status != http.StatusForbidden {
			p.renderNetworking(w, r, ae.Status, v, can, map[string]string{"ip_rules": friendly(ae)}, friendly(ae))
			return
		}
		p.apiFailure(w, r, err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(v.Name)+"/networking", "networking")
}
