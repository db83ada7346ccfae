package portal

import (
	"net/http"
	"regexp"
	"time"

	"github.com/strongroom/strongroom/internal/azkv/arm"
)

// Manage deleted vaults: the subscription's soft-deleted vaults, with Recover (the API's
// create-or-update with createMode "recover") and Purge (typed name and a recent sign-in, like
// the other destructive actions). Each is the same ARM call the CLI makes, so it is authorized
// and audited as one (VaultRecover, VaultPurge).

const actVaultPurge = "Microsoft.KeyVault/locations/deletedVaults/purge/action"

var locationRE = regexp.MustCompile(`^[a-z0-9]{1,40}$`)

func (p *Portal) deletedVaultPath(location, name string) string {
	return p.subscriptionPath() + "/providers/Microsoft.KeyVault/locations/" + location + "/deletedVaults/" + name
}

func (p *Portal) serveDeletedVaults(w http.ResponseWriter, r *http.Request) {
	var page struct {
		Value []arm.DeletedVault `json:"value"`
	}
	if err := p.arm(r, http.MethodGet, p.subscriptionPath()+"/providers/Microsoft.KeyVault/deletedVaults", armAPIVersion, nil, nil, &page); err != nil {
		p.apiFailure(w, r, err)
		return
	}
	s := sessionFrom(r)
	can := map[string]bool{
		"recover": p.opts.Permits(s.UserID, "", p.subscriptionPath(), actVaultWrite, false),
		"purge":   p.opts.Permits(s.UserID, "", p.subscriptionPath(), actVaultPurge, false),
	}
	p.render(w, r, http.StatusOK, "deletedvaults", pageData{Title: "Manage deleted vaults", Flash: flashOf(r), Can: can, Data: page.Value})
}

// deletedVault reads the deleted vault the path names (its location and name checked first).
func (p *Portal) deletedVault(w http.ResponseWriter, r *http.Request) (*arm.DeletedVault, bool) {
	location, name := r.PathValue("location"), r.PathValue("vault")
	if !locationRE.MatchString(location) {
		p.renderError(w, r, http.StatusNotFound, "There is no deleted vault at this address.")
		return nil, false
	}
	var dv arm.DeletedVault
	if err := p.arm(r, http.MethodGet, p.deletedVaultPath(location, name), armAPIVersion, nil, nil, &dv); err != nil {
		p.apiFailure(w, r, err)
		return nil, false
	}
	return &dv, true
}

// serveVaultRecover recovers a deleted vault into the resource group it was deleted from.
func (p *Portal) serveVaultRecover(w http.ResponseWriter, r *http.Request) {
	dv, ok := p.deletedVault(w, r)
	if !ok {
		return
	}
	group := groupOf(dv.Properties.VaultID)
	if group == "" {
		p.renderError(w, r, http.StatusConflict, "The deleted vault does not name the resource group it was in; recover it with the CLI.")
		return
	}
	body := map[string]any{"location": dv.Properties.Location, "properties": map[string]any{
		"tenantId": p.opts.TenantID, "sku": map[string]string{"family": "A", "name": "standard"}, "createMode": "recover"}}
	path := p.subscriptionPath() + "/resourceGroups/" + pathEscape(group) + "/providers/Microsoft.KeyVault/vaults/" + dv.Name
	if err := p.arm(r, http.MethodPut, path, armAPIVersion, nil, body, nil); err != nil {
		p.apiFailure(w, r, err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(dv.Name), "vaultrecovered")
}

func vaultPurgeConfirm(dv *arm.DeletedVault) typedConfirm {
	at := dv.Properties.Location + "/" + dv.Name
	return typedConfirm{Heading: "Purge " + dv.Name + "?", Explain: []string{
		"The deleted vault and every secret in it are destroyed for good: they cannot be recovered afterwards.",
		"Its name becomes free for a new vault."},
		Label: "Type the vault's name, " + dv.Name + ", to confirm", Button: "Purge", What: "Purging a vault", Name: dv.Name,
		Action: "/portal/deleted-vaults/" + at + "/purge", Back: "/portal/deleted-vaults"}
}

func (p *Portal) serveVaultPurgeConfirm(w http.ResponseWriter, r *http.Request) {
	dv, ok := p.deletedVault(w, r)
	if !ok {
		return
	}
	if dv.Properties.PurgeProtectionEnabled {
		p.renderError(w, r, http.StatusConflict, "Purge protection is on for "+dv.Name+": it cannot be purged before "+dateWords(dv.Properties.ScheduledPurgeDate)+".")
		return
	}
	p.renderTyped(w, r, http.StatusOK, "", "", vaultPurgeConfirm(dv), "")
}

// serveVaultPurge purges a deleted vault once confirmed; the API refuses one under purge
// protection, and that refusal is shown next to the name field.
func (p *Portal) serveVaultPurge(w http.ResponseWriter, r *http.Request) {
	dv, ok := p.deletedVault(w, r)
	if !ok {
		return
	}
	c := vaultPurgeConfirm(dv)
	if !p.confirmed(w, r, "", "", c, "Type the vault's name, "+dv.Name+", exactly to purge it.") {
		return
	}
	if err := p.arm(r, http.MethodPost, p.deletedVaultPath(r.PathValue("location"), dv.Name)+"/purge", armAPIVersion, nil, nil, nil); err != nil {
		p.typedFailure(w, r, "", "", c, err)
		return
	}
	seeOther(w, r, "/portal/deleted-vaults", "vaultpurged")
}

// dateWords shows an ARM or audit timestamp (RFC 3339) as its UTC date and time, or the text
// itself when it is not one.
func dateWords(ts string) string {
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		return t.UTC().Format("2006-01-02 15:04 UTC")
	}
	return ts
}
