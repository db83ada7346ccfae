package identity_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
)

const vaultScope = "https://vault.localhost:8443/.default"

// verifyTwice verifies tok twice (the second is a cache hit) and returns the second error,
// failing if the two disagree.
func verifyTwice(t *testing.T, s *identity.Service, tok string) error {
	t.Helper()
	c, err1 := s.Verify(context.Background(), tok, vaultAudiences)
	_, err2 := s.Verify(context.Background(), tok, vaultAudiences)
	if (err1 == nil) != (err2 == nil) {
		t.Fatalf("first and cached verification disagree: %v / %v", err1, err2)
	}
	if err1 == nil {
		verifiedClaims.Store(tok, c)
	}
	return err2
}

// verifiedClaims keeps the claims of every token verifyTwice accepted, as a connection's token
// memo keeps them (httpapi): Recheck of kept claims must agree with Verify after a revocation.
var verifiedClaims sync.Map

// recheckKept checks Recheck of tok's kept claims (if verifyTwice ever accepted it) against want.
func recheckKept(t *testing.T, s *identity.Service, tok string, wantOK bool) {
	t.Helper()
	c, ok := verifiedClaims.Load(tok)
	if !ok {
		return
	}
	if err := s.Recheck(c.(identity.Claims), vaultAudiences); (err == nil) != wantOK || err != nil && !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("Recheck of kept claims: err = %v, want ok = %v", err, wantOK)
	}
}

// Every revocation takes effect on the very next verification, cache hits included, and
// revokes exactly the tokens it names.
func TestService_Revocation(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// act revokes (or not) and returns the tokens that must still verify and those that
		// must not.
		act func(t *testing.T, s *identity.Service, p identity.Principal, secret string) (keep, revoked []string)
	}{
		{"disable", func(t *testing.T, s *identity.Service, p identity.Principal, secret string) ([]string, []string) {
			tok := mustToken(t, s, p, secret, vaultScope)
			mustOK(t, verifyTwice(t, s, tok))
			if _, err := s.SetDisabled(ctx, p.ObjectID, true); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ClientCredentials(ctx, "", p.AppID, secret, vaultScope); !errors.Is(err, identity.ErrPrincipalDisabled) {
				t.Fatalf("token for a disabled principal: err = %v, want ErrPrincipalDisabled", err)
			}
			return nil, []string{tok}
		}},
		{"disable then enable: old tokens stay revoked, new ones work", func(t *testing.T, s *identity.Service, p identity.Principal, secret string) ([]string, []string) {
			tok := mustToken(t, s, p, secret, vaultScope)
			mustOK(t, verifyTwice(t, s, tok))
			if _, err := s.SetDisabled(ctx, p.AppID, true); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SetDisabled(ctx, p.AppID, false); err != nil {
				t.Fatal(err)
			}
			return []string{mustToken(t, s, p, secret, vaultScope)}, []string{tok}
		}},
		{"delete", func(t *testing.T, s *identity.Service, p identity.Principal, secret string) ([]string, []string) {
			tok := mustToken(t, s, p, secret, vaultScope)
			mustOK(t, verifyTwice(t, s, tok))
			if err := s.DeletePrincipal(ctx, p.ObjectID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DescribePrincipal(ctx, p.ObjectID); !errors.Is(err, identity.ErrPrincipalNotFound) {
				t.Fatalf("describe after delete: %v", err)
			}
			return nil, []string{tok}
		}},
		{"remove one secret: only its tokens", func(t *testing.T, s *identity.Service, p identity.Principal, secret string) ([]string, []string) {
			in, sec2, secret2, err := s.AddSecret(ctx, p.ObjectID, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(in.Secrets) != 2 || strings.Contains(sec2.KeyID, secret2) {
				t.Fatalf("after rotate: %+v", in)
			}
			tok1 := mustToken(t, s, p, secret, vaultScope)
			tok2 := mustToken(t, s, p, secret2, vaultScope)
			mustOK(t, verifyTwice(t, s, tok1))
			mustOK(t, verifyTwice(t, s, tok2))
			if _, err := s.RemoveSecret(ctx, p.ObjectID, sec2.KeyID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ClientCredentials(ctx, "", p.AppID, secret2, vaultScope); !errors.Is(err, identity.ErrInvalidClient) {
				t.Fatalf("removed secret still signs in: %v", err)
			}
			return []string{tok1}, []string{tok2}
		}},
		{"rotate with replace", func(t *testing.T, s *identity.Service, p identity.Principal, secret string) ([]string, []string) {
			old := mustToken(t, s, p, secret, vaultScope)
			mustOK(t, verifyTwice(t, s, old))
			in, _, secret2, err := s.AddSecret(ctx, p.ObjectID, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(in.Secrets) != 1 {
				t.Fatalf("replace left %d secrets", len(in.Secrets))
			}
			return []string{mustToken(t, s, p, secret2, vaultScope)}, []string{old}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newEnv(t).service(t, identity.Options{}, false)
			p, secret := mustCreateSP(t, s, "revocable")
			bystander, bSecret := mustCreateSP(t, s, "bystander")
			bTok := mustToken(t, s, bystander, bSecret, vaultScope)
			keep, revoked := c.act(t, s, p, secret)
			for _, tok := range keep {
				mustOK(t, verifyTwice(t, s, tok))
				recheckKept(t, s, tok, true)
			}
			for _, tok := range revoked {
				if err := verifyTwice(t, s, tok); !errors.Is(err, identity.ErrInvalidToken) {
					t.Fatalf("revoked token: err = %v, want ErrInvalidToken", err)
				}
				recheckKept(t, s, tok, false)
			}
			mustOK(t, verifyTwice(t, s, bTok))
		})
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The bootstrap admin cannot be disabled, deleted or left without a secret; secrets are capped.
func TestService_ManageRefusals(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	boot, _, err := s.EnsureBootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := s.DescribePrincipal(ctx, boot.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := mustCreateSP(t, s, "capped")
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"disable admin", func() error { _, err := s.SetDisabled(ctx, boot.ObjectID, true); return err }, identity.ErrProtectedPrincipal},
		{"delete admin", func() error { return s.DeletePrincipal(ctx, boot.ClientID) }, identity.ErrProtectedPrincipal},
		{"remove admin's last secret", func() error { _, err := s.RemoveSecret(ctx, boot.ObjectID, adm.Secrets[0].KeyID); return err }, identity.ErrProtectedPrincipal},
		{"unknown principal", func() error { _, err := s.SetDisabled(ctx, "00000000-0000-0000-0000-000000000009", true); return err }, identity.ErrPrincipalNotFound},
		{"path in id", func() error { return s.DeletePrincipal(ctx, "../appid/"+p.AppID) }, identity.ErrPrincipalNotFound},
		{"unknown secret", func() error { _, err := s.RemoveSecret(ctx, p.ObjectID, "nope"); return err }, identity.ErrSecretNotFound},
		{"third secret", func() error {
			if _, _, _, err := s.AddSecret(ctx, p.ObjectID, false); err != nil {
				return err
			}
			_, _, _, err := s.AddSecret(ctx, p.ObjectID, false)
			return err
		}, identity.ErrTooManySecrets},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if in, err := s.DescribePrincipal(ctx, boot.ObjectID); err != nil || in.Disabled || len(in.Secrets) != 1 {
		t.Fatalf("admin after refusals: %+v, %v", in, err)
	}
}

// Two services on one store stand for two cluster nodes: a revocation written through one is
// refused by the other once it is told the keys were applied (the cluster's FSM callback), with
// no store read per verification.
func TestService_KeysApplied_RevokesOnOtherNode(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	writer := e.service(t, identity.Options{}, false)
	other := e.service(t, identity.Options{}, false)
	p, secret := mustCreateSP(t, writer, "replicated")
	if err := other.KeysApplied(ctx, []string{"id/principal/" + p.ObjectID, "id/appid/" + p.AppID}); err != nil {
		t.Fatal(err)
	}
	tok := mustToken(t, writer, p, secret, vaultScope)
	mustOK(t, verifyTwice(t, other, tok))

	if _, err := writer.SetDisabled(ctx, p.ObjectID, true); err != nil {
		t.Fatal(err)
	}
	if err := other.KeysApplied(ctx, []string{"id/principal/" + p.ObjectID}); err != nil {
		t.Fatal(err)
	}
	if err := verifyTwice(t, other, tok); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("other node after disable: %v", err)
	}

	// The "refresh everything" marker re-reads every principal (a deletion included).
	if _, err := writer.SetDisabled(ctx, p.ObjectID, false); err != nil {
		t.Fatal(err)
	}
	q, qSecret := mustCreateSP(t, writer, "second")
	if err := other.KeysApplied(ctx, []string{keyring.RingKey}); err != nil {
		t.Fatal(err)
	}
	qTok := mustToken(t, writer, q, qSecret, vaultScope)
	mustOK(t, verifyTwice(t, other, qTok))
	if err := writer.DeletePrincipal(ctx, q.ObjectID); err != nil {
		t.Fatal(err)
	}
	if err := other.KeysApplied(ctx, []string{keyring.RingKey}); err != nil {
		t.Fatal(err)
	}
	if err := verifyTwice(t, other, qTok); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("other node after delete: %v", err)
	}
}

// Tokens without the credential claim (minted before tokens carried it, or forged without it)
// do not verify.
func TestService_Verify_RequiresCredentialClaim(t *testing.T) {
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	p, _ := mustCreateSP(t, s, "legacy")
	now := clk.Now().Unix()
	raw, err := s.SignRaw(map[string]any{"aud": "https://vault.azure.net", "iss": s.Issuer(""), "iat": now, "nbf": now,
		"exp": now + 3600, "appid": p.AppID, "azp": p.AppID, "idtyp": "app", "oid": p.ObjectID, "sub": p.ObjectID,
		"tid": s.TenantID(), "ver": "2.0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(context.Background(), raw, vaultAudiences); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("token without sr_cred: err = %v, want ErrInvalidToken", err)
	}
}

// Rotating the signing key: new tokens use the new key, tokens of the old one keep verifying
// (on this node and, after KeysApplied, on another), JWKS publishes both until the old key's
// tokens have expired, and the next rotation after that drops it from the store.
func TestService_RotateSigningKey(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	e := newEnv(t)
	s := e.service(t, identity.Options{Now: clk.Now}, false)
	other := e.service(t, identity.Options{Now: clk.Now}, false)
	p, secret := mustCreateSP(t, s, "signer")
	if err := other.KeysApplied(ctx, []string{"id/principal/" + p.ObjectID}); err != nil {
		t.Fatal(err)
	}
	oldTok := mustToken(t, s, p, secret, vaultScope)
	oldKID := s.JWKS().Keys[0].KeyID

	rot, err := s.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rot.RetiredKeyID != oldKID || rot.ActiveKeyID == oldKID || len(rot.Dropped) != 0 {
		t.Fatalf("rotation = %+v, old kid %s", rot, oldKID)
	}
	if want := clk.Now().Add(time.Hour + 5*time.Minute); rot.VerifyUntil.Before(want) {
		t.Fatalf("old key verifies until %v, before its last token's expiry plus skew %v", rot.VerifyUntil, want)
	}
	if err := other.KeysApplied(ctx, []string{"id/deployment", "id/signkey/" + rot.ActiveKeyID}); err != nil {
		t.Fatal(err)
	}
	newTok := mustToken(t, s, p, secret, vaultScope)
	parts, _ := payloadOf(t, newTok)
	if hdr := parts[0]; !strings.Contains(decodeHeader(t, hdr), rot.ActiveKeyID) {
		t.Fatalf("new token's header does not name the new key")
	}
	for _, svc := range []*identity.Service{s, other} {
		mustOK(t, verifyTwice(t, svc, oldTok))
		mustOK(t, verifyTwice(t, svc, newTok))
		if n := len(svc.JWKS().Keys); n != 2 {
			t.Fatalf("JWKS has %d keys, want 2", n)
		}
		if svc.JWKS().Keys[0].KeyID != rot.ActiveKeyID {
			t.Fatalf("JWKS does not list the active key first")
		}
	}

	clk.Set(rot.VerifyUntil)
	if n := len(s.JWKS().Keys); n != 1 {
		t.Fatalf("JWKS has %d keys after the old key's tokens expired, want 1", n)
	}
	rot2, err := s.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rot2.Dropped) != 1 || rot2.Dropped[0] != oldKID {
		t.Fatalf("second rotation dropped %v, want [%s]", rot2.Dropped, oldKID)
	}
	// A restart loads what the store holds: two keys, the old one gone.
	again := e.service(t, identity.Options{Now: clk.Now}, false)
	if n := len(again.JWKS().Keys); n != 2 {
		t.Fatalf("after restart JWKS has %d keys, want 2", n)
	}
}

func decodeHeader(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
