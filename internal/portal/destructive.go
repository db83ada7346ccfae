package portal

import (
	"net/http"
	"strconv"

	"github.com/strongroom/strongroom/internal/azkv/arm"
)

// Destructive actions (purge a secret, delete a vault, switch a vault's permission model) ask
// for the object's name typed and a recent sign-in, on a confirmation page of their own. The
// checks here are the portal's, for people's sake; whether the action is allowed is still the
// API's decision, and its refusal is shown next to the name field.

const (
	actVaultDelete = "Microsoft.KeyVault/vaults/delete"
)

// typedConfirm is a confirmation page that asks for a name.
type typedConfirm struct {
	Kind    string // "typed" (the template's other kind is the secret delete's plain confirm)
	Heading string
	Explain []string
	Label   string // the name field's label
	Button  string
	What    string // "Purging", "Deleting a vault": what needs the recent sign-in
	Name    string // what must be typed
	Action  string // the page's own path: GET shows it, POST does the action
	Back    string
	SignIn  string
	Recent  bool
}

// renderTyped shows c; fieldErr, when not "", is shown next to the name field.
func (p *Portal) renderTyped(w http.ResponseWriter, r *http.Request, status int, vault, blade string, c typedConfirm, fieldErr string) {
	c.Kind, c.Recent = "typed", p.recentSignIn(r)
	c.SignIn = "/portal/login?next=" + urlQueryEscape(c.Action)
	fields := map[string]string{}
	if fieldErr != "" {
		fields["confirm_name"] = fieldErr
	}
	p.render(w, r, status, "confirm", pageData{Title: c.Heading, Vault: vault, Blade: blade, Can: p.vaultCan(r, vault), Fields: fields, Data: c})
}

// confirmed checks a typed confirmation's post: the name exactly, then the recent sign-in.
// When it answers false it has rendered the page again with what is missing.
func (p *Portal) confirmed(w http.ResponseWriter, r *http.Request, vault, blade string, c typedConfirm, typeMsg string) bool {
	if r.PostFormValue("confirm_name") != c.Name {
		p.renderTyped(w, r, http.StatusBadRequest, vault, blade, c, typeMsg)
		return false
	}
	if !p.recentSignIn(r) {
		p.renderTyped(w, r, http.StatusForbidden, vault, blade, c, c.What+" needs a recent sign-in: sign in again, then try again.")
		return false
	}
	return true
}

// typedFailure shows an API refusal of a confirmed action next to the name field.
func (p *Portal) typedFailure(w http.ResponseWriter, r *http.Request, vault, blade string, c typedConfirm, err error) {
	ae, ok := err.(*apiError)
	if !ok {
		p.apiFailure(w, r, err)
		return
	}
	p.renderTyped(w, r, ae.Status, vault, blade, c, friendly(ae))
}

func vaultDeleteConfirm(v *arm.Vault) typedConfirm {
	explain := []string{"The vault and every secret in it are deleted: applications using them stop working."}
	days := 90
	if v.Properties.SoftDeleteRetentionInDays != nil {
		days = *v.Properties.SoftDeleteRetentionInDays
	}
	if v.Properties.EnablePurgeProtection != nil && *v.Properties.EnablePurgeProtection {
		explain = append(explain, "Purge protection is on: the deleted vault can be recovered, and cannot be purged, for "+strconv.Itoa(days)+" days.")
	} else {
		explain = append(explain, "The deleted vault can be recovered from Manage deleted vaults, the CLI or the API for "+strconv.Itoa(days)+" days, unless someone purges it.")
	}
	return typedConfirm{Heading: "Delete " + v.Name + "?", Explain: explain, Label: "Type the vault's name, " + v.Name + ", to confirm",
		Button: "Delete vault", What: "Deleting a vault", Name: v.Name, Action: "/portal/vaults/" + pathEscape(v.Name) + "/delete",
		Back: "/portal/vaults/" + pathEscape(v.Name)}
}

func (p *Portal) serveVaultDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	v, err := p.findVault(r, r.PathValue("vault"))
	if err != nil {
		p.apiFailure(w, r, err)
		return
	}
	p.renderTyped(w, r, http.StatusOK, v.Name, "overview", vaultDeleteConfirm(v), "")
}

// serveVaultDelete deletes the vault through ARM (soft delete) once confirmed.
func (p *Portal) serveVaultDelete(w http.ResponseWriter, r *http.Request) {
	v, err := p.findVault(r, r.PathValue("vault"))
	if err != nil {
		p.apiFailure(w, r, err)
		return
	}
	c := vaultDeleteConfirm(v)
	if !p.confirmed(w, r, v.Name, "overview", c, "Type the vault's name, "+v.Name+", exactly to delete it.") {
		return
	}
	if err := p.arm(r, http.MethodDelete, v.ID, armAPIVersion, nil, nil, nil); err != nil {
		p.typedFailure(w, r, v.Name, "overview", c, err)
		return
	}
	seeOther(w, r, "/portal/vaults", "vaultdeleted")
}

// usesRBAC reports the vault's permission model (RBAC unless it says otherwise).
func usesRBAC(v *arm.Vault) bool {
	return v.Properties.EnableRbacAuthorization == nil || *v.Properties.EnableRbacAuthorization
}

func modelSwitchConfirm(v *arm.Vault) typedConfirm {
	c := typedConfirm{Label: "Type the vault's name, " + v.Name + ", to confirm", Button: "Switch", What: "Switching the permission model",
		Name: v.Name, Action: "/portal/vaults/" + pathEscape(v.Name) + "/access/permission-model", Back: "/portal/vaults/" + pathEscape(v.Name) + "/access"}
	if usesRBAC(v) {
		c.Heading = "Switch " + v.Name + " to vault access policy?"
		n := len(v.Properties.AccessPolicies)
		c.Explain = []string{"The vault's access policies (it has " + strconv.Itoa(n) + ") will decide who may use its secrets; Key Vault data roles such as Key Vault Secrets User will no longer give access.",
			"Role assignments still decide who may manage the vault."}
	} else {
		c.Heading = "Switch " + v.Name + " to Azure role-based access control?"
		c.Explain = []string{"Role assignments will decide who may use the vault's secrets; its access policies are kept but no longer apply.",
			"Assign Key Vault data roles (such as Key Vault Secrets User) first, or people and applications lose access to the secrets."}
	}
	return c
}

func (p *Portal) serveModelSwitchConfirm(w http.ResponseWriter, r *http.Request) {
	v, err := p.findVault(r, r.PathValue("vault"))
	if err != nil {
		p.apiFailure(w, r, err)
		return
	}
	p.renderTyped(w, r, http.StatusOK, v.Name, "access", modelSwitchConfirm(v), "")
}

// serveModelSwitch flips properties.enableRbacAuthorization through ARM once confirmed (the API
// asks for the right to assign roles at the vault as well as to write it).
func (p *Portal) serveModelSwitch(w http.ResponseWriter, r *http.Request) {
	v, err := p.findVault(r, r.PathValue("vault"))
	if err != nil {
		p.apiFailure(w, r, err)
		return
	}
	c := modelSwitchConfirm(v)
	if !p.confirmed(w, r, v.Name, "access", c, "Type the vault's name, "+v.Name+", exactly to switch its permission model.") {
		return
	}
	patch := map[string]any{"properties": map[string]any{"enableRbacAuthorization": !usesRBAC(v)}}
	if err := p.arm(r, http.MethodPatch, v.ID, armAPIVersion, nil, patch, nil); err != nil {
		p.typedFailure(w, r, v.Name, "access", c, err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(v.Name)+"/access", "switched")
}
