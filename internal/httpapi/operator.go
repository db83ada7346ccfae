package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/strongroom/strongroom/internal/service"
)

// Operator routes under /sys on the management origin. They take an ARM token and are
// authorized by the service's choke point (action "Strongroom/operator/...", scope "/").

func (a *armReq) keyringStatus(_ []string) {
	st, err := a.s.svc.KeyringStatus(a.r.Context())
	a.ok(http.StatusOK, st, err)
}

func (a *armReq) keyringRotate(_ []string) {
	term, err := a.s.svc.RotateKeyring(a.r.Context())
	a.ok(http.StatusOK, map[string]any{"activeTerm": term}, err)
}

func (a *armReq) keyringRewrap(_ []string) {
	var body struct {
		Limit      int  `json:"limit"`
		Background bool `json:"background"`
	}
	if b, _ := io.ReadAll(a.r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil || body.Limit < 0 {
			a.fail(badParam("The body must be JSON {\"limit\": <non-negative integer>, \"background\": <bool>}."))
			return
		}
	}
	if body.Background {
		p, err := a.s.svc.StartRewrap(a.r.Context())
		a.ok(http.StatusAccepted, p, err)
		return
	}
	p, err := a.s.svc.Rewrap(a.r.Context(), body.Limit)
	a.ok(http.StatusOK, p, err)
}

func (a *armReq) keyringRewrapStatus(_ []string) {
	job, err := a.s.svc.RewrapStatus(a.r.Context())
	a.ok(http.StatusOK, job, err)
}

func (a *armReq) keyringRetire(_ []string) {
	gone, err := a.s.svc.RetireOldTerms(a.r.Context())
	a.ok(http.StatusOK, map[string]any{"retiredTerms": gone}, err)
}

func (a *armReq) backupKeyRotate(_ []string) {
	id, err := a.s.svc.RotateBackupKey(a.r.Context())
	a.ok(http.StatusOK, map[string]any{"activeBackupKey": id}, err)
}

func (a *armReq) backupKeyRevoke(p []string) {
	id, err := strconv.ParseUint(p[0], 10, 32)
	if err != nil {
		a.fail(badParam("The backup key id must be a number."))
		return
	}
	if err := a.s.svc.RevokeBackupKey(a.r.Context(), uint32(id)); err != nil {
		a.fail(err)
		return
	}
	a.w.WriteHeader(http.StatusNoContent)
}

func (a *armReq) compact(_ []string) {
	if err := a.s.svc.Compact(a.r.Context()); err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, http.StatusOK, map[string]any{"compacted": true})
}

func (a *armReq) seal(_ []string) {
	if a.s.cfg.Seal == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "NotSupported", Message: "Sealing is not available on this server."})
		return
	}
	if err := a.s.svc.AuthorizeSeal(a.r.Context()); err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, http.StatusOK, map[string]any{"sealed": true})
	// Seal after this response has been audited and sent.
	go a.s.cfg.Seal()
}

func (a *armReq) rekey(_ []string) {
	var body struct {
		Shares    int `json:"secret_shares"`
		Threshold int `json:"secret_threshold"`
	}
	if b, _ := io.ReadAll(a.r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			a.fail(badParam("The body must be JSON {\"secret_shares\": n, \"secret_threshold\": k}."))
			return
		}
	}
	if a.s.cfg.Rekey == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "NotSupported", Message: "Rekeying is not available on this server."})
		return
	}
	if err := a.s.svc.AuthorizeRekey(a.r.Context()); err != nil {
		a.fail(err)
		return
	}
	out, err := a.s.cfg.Rekey(a.r.Context(), body.Shares, body.Threshold)
	if err != nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "RekeyFailed", Message: err.Error()})
		return
	}
	writeJSON(a.w, http.StatusOK, out)
}

func (a *armReq) migrateSeal(_ []string) {
	var body struct {
		To        string `json:"to"`
		Shares    int    `json:"secret_shares"`
		Threshold int    `json:"secret_threshold"`
	}
	if !a.decode(&body) {
		return
	}
	if a.s.cfg.MigrateSeal == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "NotSupported", Message: "Seal migration is not available on this server."})
		return
	}
	if err := a.s.svc.AuthorizeRekey(a.r.Context()); err != nil {
		a.fail(err)
		return
	}
	out, err := a.s.cfg.MigrateSeal(a.r.Context(), body.To, body.Shares, body.Threshold)
	if err != nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "SealMigrationFailed", Message: err.Error()})
		return
	}
	writeJSON(a.w, http.StatusOK, out)
}
