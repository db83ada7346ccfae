// Writing and reading live secrets: set, get and update of a version, and the sealed
// records they write.

package service

import (
	"context"
	"strings"

	"github.com/strongroom/strongroom/internal/store"
)

func (s *Service) secret(v *Vault, name string, sv SecretVersion, withValue bool, del *Deletion) Secret {
	if !withValue {
		sv.Value = ""
	}
	return Secret{Name: name, SecretVersion: sv, HasValue: withValue, RecoveryLevel: v.RecoveryLevel(), RecoverableDays: v.RetentionDays(), Deleted: del}
}

func headGuard(key string, raw []byte, found bool) store.Op {
	if found {
		return store.RequireEqual(key, raw)
	}
	return store.RequireAbsent(key)
}

// SetSecret stores a new version of name and makes it the latest.
func (r VaultRef) SetSecret(ctx context.Context, name string, in SecretInput) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "setSecret/action", name)
	if err != nil {
		return Secret{}, err
	}
	if err := validateInput(in); err != nil {
		return Secret{}, err
	}
	var out Secret
	err = retry(func() error {
		h, raw, found, err := s.head(ctx, v, name)
		if err != nil {
			return err
		}
		if found && h.Deleted != nil {
			return newErr(ErrConflict, "Conflict", "ObjectIsDeletedButRecoverable", "Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", name)
		}
		now := s.now().Unix()
		sv := SecretVersion{Version: newVersion(s.now()), Value: *in.Value, Tags: in.Tags, Enabled: true,
			NotBefore: in.NotBefore, Expires: in.Expires, Created: now, Updated: now}
		if in.ContentType != nil {
			sv.ContentType = *in.ContentType
		}
		if in.Enabled != nil {
			sv.Enabled = *in.Enabled
		}
		if err := s.enforceSecret(ctx, v, name, &sv); err != nil { // policy Deny: nothing is written
			return err
		}
		keep, ops, err := s.newVersionOps(ctx, v, name, &h, raw, found, &sv)
		if err != nil {
			return err
		}
		if err := s.apply(ctx, ops); err != nil {
			return err
		}
		out = s.secret(v, keep, sv, true, nil)
		return nil
	})
	return out, err
}

// newVersionOps is the batch that makes sv (its value included) the latest version of name,
// guarded by the head read before (h as raw; found false when there is none): the version, the
// head and its tip, the version's events and, in a vault with rotation policies, a nudge for
// the rotation worker. keep is the name as first spelled, which the secret keeps.
func (s *Service) newVersionOps(ctx context.Context, v *Vault, name string, h *secretHead, raw []byte, found bool, sv *SecretVersion) (keep string, ops []store.Op, err error) {
	keep = name
	nh := secretHead{Name: keep}
	if found {
		keep = h.Name // the first spelling of a name is kept, as in Key Vault
		nh = secretHead{Name: keep, Seq: h.Seq, Origin: h.Origin, PinFloor: h.PinFloor, Pins: h.Pins}
		if h.Item.seq != h.Item.born { // the outgoing latest was updated: pin its record
			if err := nh.setPin(h.Latest, h.Item.seq); err != nil {
				return "", nil, err
			}
		}
	}
	nh.advance(s.now(), found)
	sv.seq, sv.born = nh.Seq, nh.Seq
	nh.withLatest(*sv)
	ops, err = s.sealOps(ctx, v, []sealed{{versionKey(v, name, sv.Version), *sv}, {headKey(v, name), nh}})
	if err != nil {
		return "", nil, err
	}
	ops = append([]store.Op{headGuard(headKey(v, name), raw, found)}, append(ops, nh.tipOp(v, name))...)
	evOps, err := s.newVersionEventOps(ctx, v, keep, sv) // committed with the version or not at all
	if err != nil {
		return "", nil, err
	}
	return keep, append(append(ops, evOps...), s.rotationNudgeOps(ctx, v, keep)...), nil
}

type sealed struct {
	key string
	v   any
}

func (s *Service) sealOps(ctx context.Context, v *Vault, recs []sealed) ([]store.Op, error) {
	ops := make([]store.Op, 0, len(recs))
	for _, r := range recs {
		b, err := s.seal(ctx, vaultKeyID(v), r.key, r.v)
		if err != nil {
			return nil, err
		}
		ops = append(ops, store.Put(r.key, b))
	}
	return ops, nil
}

// liveHead returns the head of a live (not deleted) secret or SecretNotFound.
func (s *Service) liveHead(ctx context.Context, v *Vault, name, shown string) (secretHead, []byte, error) {
	h, raw, found, err := s.head(ctx, v, name)
	if err != nil {
		return h, nil, err
	}
	if !found || h.Deleted != nil {
		return h, nil, secretNotFound(shown)
	}
	return h, raw, nil
}

// version reads a version record and checks it against h, the head read (as hraw) before it.
func (s *Service) version(ctx context.Context, v *Vault, name, version, shown string, h *secretHead, hraw []byte) (SecretVersion, []byte, error) {
	var sv SecretVersion
	if !validVersion(version) {
		return sv, nil, secretNotFound(shown)
	}
	raw, found, err := s.get(ctx, vaultKeyID(v), versionKey(v, name, version), &sv)
	if err != nil {
		return sv, nil, err
	}
	if !found {
		return sv, nil, secretNotFound(shown)
	}
	if problem := h.versionProblem(&sv); problem != "" {
		return SecretVersion{}, nil, s.rolledBack(ctx, v, name, hraw, problem)
	}
	return sv, raw, nil
}

// GetSecret returns a version (the latest when version is "") with its value.
func (r VaultRef) GetSecret(ctx context.Context, name, version string) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "getSecret/action", name)
	if err != nil {
		return Secret{}, err
	}
	shown := name
	if version != "" {
		shown = name + "/" + version
	}
	var h secretHead
	var sv SecretVersion
	err = retry(func() error {
		h0, hraw, err := s.liveHead(ctx, v, name, shown)
		if err != nil {
			return err
		}
		h = h0
		if (version == "" || strings.EqualFold(version, h.Latest)) && h.LatestValue != nil {
			sv = h.Item
			sv.Value = *h.LatestValue
			return nil
		}
		ver := version
		if ver == "" {
			ver = h.Latest
		}
		sv, _, err = s.version(ctx, v, name, ver, shown, &h, hraw)
		return err
	})
	if err != nil {
		return Secret{}, err
	}
	if !sv.Enabled {
		return Secret{}, newErr(ErrForbidden, "Forbidden", "SecretDisabled", "Operation get is not allowed on a disabled secret.")
	}
	return s.secret(v, h.Name, sv, true, nil), nil
}

// UpdateSecret changes the attributes, tags or content type of a version (latest when "").
func (r VaultRef) UpdateSecret(ctx context.Context, name, version string, up SecretUpdate) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "update/action", name)
	if err != nil {
		return Secret{}, err
	}
	if up.ContentType != nil && len(*up.ContentType) > MaxContentTypeLen {
		return Secret{}, badParameter("The content type exceeds the maximum length of %d characters.", MaxContentTypeLen)
	}
	if up.Tags != nil {
		if err := validateTags(*up.Tags); err != nil {
			return Secret{}, err
		}
	}
	var out Secret
	err = retry(func() error {
		shown := name
		if version != "" {
			shown = name + "/" + version
		}
		h, hraw, err := s.liveHead(ctx, v, name, shown)
		if err != nil {
			return err
		}
		ver := version
		if ver == "" {
			ver = h.Latest
		}
		sv, vraw, err := s.version(ctx, v, name, ver, shown, &h, hraw)
		if err != nil {
			return err
		}
		if up.ContentType != nil {
			sv.ContentType = *up.ContentType
		}
		if up.Tags != nil {
			sv.Tags = *up.Tags
		}
		if up.Enabled != nil {
			sv.Enabled = *up.Enabled
		}
		if up.NotBefore != nil {
			sv.NotBefore = up.NotBefore
		}
		expBefore := sv.Expires
		if up.Expires != nil {
			sv.Expires = up.Expires
		}
		sv.Updated = s.now().Unix()
		if err := s.enforceSecret(ctx, v, h.Name, &sv); err != nil { // policy Deny: nothing is written
			return err
		}
		vk, hk := versionKey(v, name, ver), headKey(v, name)
		// The head is written too, so its counter and tip move with every version write and
		// it knows the exact record of each updated version (integrity.go).
		h.advance(s.now(), true)
		sv.seq = h.Seq
		if strings.EqualFold(ver, h.Latest) {
			h.withLatest(sv)
		} else if err := h.setPin(ver, h.Seq); err != nil {
			return err
		}
		ops, err := s.sealOps(ctx, v, []sealed{{vk, sv}, {hk, h}})
		if err != nil {
			return err
		}
		ops = append([]store.Op{store.RequireEqual(hk, hraw), store.RequireEqual(vk, vraw)}, append(ops, h.tipOp(v, name))...)
		if strings.EqualFold(ver, h.Latest) { // a changed exp of the latest version is indexed for its events
			ops = append(ops, s.updateEventOps(v, h.Name, expBefore, &sv)...)
			ops = append(ops, s.rotationNudgeOps(ctx, v, h.Name)...) // exp may move a rotation or notice
		}
		if err := s.apply(ctx, ops); err != nil {
			return err
		}
		out = s.secret(v, h.Name, sv, false, nil)
		return nil
	})
	return out, err
}
