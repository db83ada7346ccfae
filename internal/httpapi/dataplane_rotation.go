package httpapi

import (
	"net/http"

	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/rotation"
	"github.com/strongroom/strongroom/internal/service"
)

// The rotation routes of a secret (docs/rotation.md): its policy, a rotation now, its status.
// Key Vault has these for keys only; the shapes are the key rotation policy's.

func (d *dataReq) rotationPolicyID(name string) string {
	return azkv.SecretID(d.base, name, "") + "/rotationpolicy"
}

func (d *dataReq) writePolicy(name string, p rotation.Policy, err error) {
	if err != nil {
		writeError(d.w, err)
		return
	}
	if p.Attributes.Created != nil { // a stored policy; the default one has no id, as in Key Vault
		p.ID = d.rotationPolicyID(name)
	}
	d.objectID = d.rotationPolicyID(name)
	writeJSON(d.w, http.StatusOK, p)
}

func (d *dataReq) getRotationPolicy(name string) {
	p, err := d.vault.GetRotationPolicy(d.ctx, name)
	d.writePolicy(name, p, err)
}

func (d *dataReq) setRotationPolicy(name string) {
	var p rotation.Policy
	if !d.decode(&p) {
		return
	}
	p, err := d.vault.SetRotationPolicy(d.ctx, name, p)
	d.writePolicy(name, p, err)
}

func (d *dataReq) rotate(name string) {
	sec, err := d.vault.RotateSecret(d.ctx, name)
	d.reply(sec, err) // the bundle of the new version, without its value
}

// rotationStatusBody is the status with the id of what it describes.
type rotationStatusBody struct {
	ID string `json:"id"`
	service.RotationStatus
}

func (d *dataReq) rotationStatus(name string) {
	st, err := d.vault.RotationStatus(d.ctx, name)
	if err != nil {
		writeError(d.w, err)
		return
	}
	id := azkv.SecretID(d.base, name, "") + "/rotationstatus"
	d.objectID = id
	writeJSON(d.w, http.StatusOK, rotationStatusBody{ID: id, RotationStatus: st})
}

// rotationPending answers a webhook rotator's hook the pending value it is to apply.
func (d *dataReq) rotationPending(name string) {
	p, err := d.vault.RotationPendingValue(d.ctx, name)
	if err != nil {
		writeError(d.w, err)
		return
	}
	d.objectID = azkv.SecretID(d.base, name, "") + "/pending"
	writeJSON(d.w, http.StatusOK, p)
}
