package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/store"
)

// SigningKeyRotation reports a signing-key rotation.
type SigningKeyRotation struct {
	ActiveKeyID string `json:"activeKeyId"`
	// RetiredKeyID was active until now; tokens it signed verify until VerifyUntil (the token
	// lifetime plus the clock skew from now), then the key is ignored.
	RetiredKeyID string    `json:"retiredKeyId"`
	VerifyUntil  time.Time `json:"verifyUntil"`
	// Dropped are older keys whose tokens have all expired: deleted from the store now.
	Dropped []string `json:"droppedKeyIds"`
}

// RotateSigningKey makes a new RS256 key the one that signs tokens. The old key keeps verifying
// the tokens it signed until they have expired (lifetime + clock skew from now) and is published
// in JWKS until then; keys retired by earlier rotations whose time has passed are deleted. Every
// node of a cluster picks the change up through KeysApplied.
func (s *Service) RotateSigningKey(ctx context.Context) (SigningKeyRotation, error) {
	next, err := generateSigningKey()
	if err != nil {
		return SigningKeyRotation{}, err
	}
	for range 3 {
		out, err := s.rotateOnce(ctx, next)
		if errors.Is(err, store.ErrConflict) {
			continue // another rotation won: retire its key instead
		}
		if err != nil {
			return SigningKeyRotation{}, fmt.Errorf("rotating signing key: %w", err)
		}
		return out, nil
	}
	return SigningKeyRotation{}, fmt.Errorf("rotating signing key: %w", store.ErrConflict)
}

func (s *Service) rotateOnce(ctx context.Context, next *signingKey) (SigningKeyRotation, error) {
	depSealed, err := s.st.Get(ctx, keyDeployment)
	if err != nil {
		return SigningKeyRotation{}, err
	}
	var dep deploymentRecord
	if err := s.openRecord(ctx, keyDeployment, depSealed, &dep); err != nil {
		return SigningKeyRotation{}, err
	}
	now := s.now()
	out := SigningKeyRotation{ActiveKeyID: next.kid, RetiredKeyID: dep.SigningKeyID,
		VerifyUntil: now.Add(s.lifetime + clockSkew).Truncate(time.Second).Add(time.Second).UTC()}
	ops := []store.Op{store.RequireEqual(keyDeployment, depSealed)}

	type raw struct {
		key    string
		sealed []byte
	}
	var recs []raw
	if err := s.st.Scan(ctx, prefixSigningKey, "", func(k string, v []byte) bool {
		recs = append(recs, raw{k, v})
		return true
	}); err != nil {
		return SigningKeyRotation{}, err
	}
	for _, r := range recs {
		var rec signingKeyRecord
		if err := s.openRecord(ctx, r.key, r.sealed, &rec); err != nil {
			return SigningKeyRotation{}, err
		}
		switch {
		case rec.KeyID == dep.SigningKeyID:
			k, err := parseSigningKey(rec)
			if err != nil {
				return SigningKeyRotation{}, err
			}
			k.verifyUntil = out.VerifyUntil
			put, err := s.putSigningKey(ctx, k)
			if err != nil {
				return SigningKeyRotation{}, err
			}
			ops = append(ops, store.RequireEqual(r.key, r.sealed), put)
		case rec.VerifyUntil != 0 && !now.Before(time.Unix(rec.VerifyUntil, 0)):
			ops = append(ops, store.RequireEqual(r.key, r.sealed), store.Delete(r.key))
			out.Dropped = append(out.Dropped, strings.TrimPrefix(r.key, prefixSigningKey))
		}
		clear(rec.PKCS8)
	}
	dep.SigningKeyID = next.kid
	depOp, err := s.putRecord(ctx, keyDeployment, dep)
	if err != nil {
		return SigningKeyRotation{}, err
	}
	keyOp, err := s.putSigningKey(ctx, next)
	if err != nil {
		return SigningKeyRotation{}, err
	}
	ops = append(ops, store.RequireAbsent(prefixSigningKey+next.kid), depOp, keyOp)
	if err := s.st.Apply(ctx, ops); err != nil {
		return SigningKeyRotation{}, err
	}
	// The replaced key records (and any dropped private key) are in freed pages now.
	s.erase()
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if err := s.reloadSigningKeys(ctx); err != nil {
		return SigningKeyRotation{}, err
	}
	if out.Dropped == nil {
		out.Dropped = []string{}
	}
	return out, nil
}
