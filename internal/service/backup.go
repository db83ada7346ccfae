package service

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Backup blob format, version 1: the ASCII magic "SRSB1" followed by a sealed backup (see
// keyring.SealBackup) under the deployment's active backup key, purpose "secret/v1". Its
// plaintext is the JSON of backupPayload. The blob is returned base64url-encoded without
// padding. Any vault of the same deployment can restore it; a blob altered in any byte, made by
// another deployment, or made under a revoked backup key is refused.
const (
	backupMagic   = "SRSB1"
	backupPurpose = "secret/v1"
)

type backupPayload struct {
	Name     string          `json:"name"`
	Latest   string          `json:"latest"`
	Versions []SecretVersion `json:"versions"`
}

// BackupSecret returns an encrypted, integrity-protected blob holding every version of name.
func (r VaultRef) BackupSecret(ctx context.Context, name string) (string, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "backup/action", name)
	if err != nil {
		return "", err
	}
	var p backupPayload
	err = retry(func() error {
		h, hraw, err := s.liveHead(ctx, v, name, name)
		if err != nil {
			return err
		}
		p = backupPayload{Name: h.Name, Latest: h.Latest}
		return s.eachVersion(ctx, v, name, "", &h, hraw, func(_ string, sv SecretVersion) bool {
			p.Versions = append(p.Versions, sv)
			return true
		})
	})
	if err != nil {
		return "", err
	}
	pt, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encoding backup: %w", err)
	}
	b, err := s.kr.SealBackup(backupPurpose, pt)
	clear(pt)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(append([]byte(backupMagic), b...)), nil
}

// RestoreSecret restores a backup blob into the vault under the secret's original name.
func (r VaultRef) RestoreSecret(ctx context.Context, blob string) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "restore/action", "")
	if err != nil {
		return Secret{}, err
	}
	corrupt := badParameter("Backup blob contains invalid or corrupt version.")
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(blob, "="))
	if err != nil || !strings.HasPrefix(string(raw), backupMagic) {
		return Secret{}, corrupt
	}
	pt, err := s.kr.OpenBackup(backupPurpose, raw[len(backupMagic):])
	if errors.Is(err, keyring.ErrBackupKeyRevoked) {
		return Secret{}, badParameter("Backup blob was made under a backup key that has been revoked; it can no longer be restored.")
	}
	if err != nil {
		return Secret{}, corrupt
	}
	var p backupPayload
	err = json.Unmarshal(pt, &p)
	clear(pt)
	if err != nil || !validSecretName(p.Name) || len(p.Versions) == 0 {
		return Secret{}, corrupt
	}
	// Restoring writes a secret: the caller must be allowed to set it in this vault too.
	if err := s.guardData(ctx, v, secretActionPrefix+"restore/action", s.ResourceID(v)+"/secrets/"+p.Name); err != nil {
		return Secret{}, err
	}
	// A restored secret is a new incarnation of its name: a new counter, every version born
	// in this batch (integrity.go).
	head := secretHead{Name: p.Name}
	head.advance(s.now(), false)
	var latest *SecretVersion
	recs := []sealed{}
	for i := range p.Versions {
		p.Versions[i].seq, p.Versions[i].born = head.Seq, head.Seq
		sv := p.Versions[i]
		if !validVersion(sv.Version) {
			return Secret{}, corrupt
		}
		if sv.Version == p.Latest {
			latest = &p.Versions[i]
		}
		recs = append(recs, sealed{versionKey(v, p.Name, sv.Version), sv})
	}
	if latest == nil {
		return Secret{}, corrupt
	}
	if err := s.enforceSecret(ctx, v, p.Name, latest); err != nil { // the restored latest, as a new version
		return Secret{}, err
	}
	meta := *latest
	hk := headKey(v, p.Name)
	head.withLatest(meta)
	meta.Value = ""
	recs = append(recs, sealed{hk, head})
	ops, err := s.sealOps(ctx, v, recs)
	if err != nil {
		return Secret{}, err
	}
	ops = append(ops, head.tipOp(v, p.Name))
	ops = append(ops, s.expiryDueOps(v, p.Name, latest)...) // its near-expiry and expiry events (events_outbox.go)
	err = s.st.Apply(ctx, append([]store.Op{store.RequireAbsent(hk)}, ops...))
	if errors.Is(err, store.ErrConflict) {
		return Secret{}, newErr(ErrConflict, "Conflict", "", "Secret %s already exists in this vault (it may be in a deleted but recoverable state); delete and purge it before restoring.", p.Name)
	}
	if err != nil {
		return Secret{}, err
	}
	return s.secret(v, p.Name, meta, false, nil), nil
}
