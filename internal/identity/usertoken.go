package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// maxGroupsClaim is how many groups a user token lists before it carries Entra's overage
// claim (_claim_names/_claim_sources) instead, as Entra does past 200 groups for JWTs.
const maxGroupsClaim = 200

// ErrUserDisabled means the user's password was right but the account is disabled.
var ErrUserDisabled = errors.New("user account disabled")

// PasswordRequest is one resource-owner password request (grant_type=password, what
// `az login -u -p` sends).
type PasswordRequest struct {
	Tenant, ClientID, Username, Password, Scope string
	// RemoteIP is the caller's address, for the per-source failure limit; "" skips that limit.
	RemoteIP string
}

// PasswordToken signs a user in by user principal name and password and mints a user access
// token (idtyp "user", upn, name, scp, groups) for the resource the scope names. ClientID is
// the public client acting for the user (az's, the SDK's); any GUID is accepted, as public
// clients hold no secret to check. The same failure limits as client credentials apply, keyed
// by the lower-cased UPN and the source, before any hash runs; an unknown UPN costs no hash
// (its answer, AADSTS50034, names it unknown anyway). Errors: ErrUnknownTenant,
// ErrInvalidScope, ErrUnknownResource, ErrInvalidClient (malformed client id), *LockoutError,
// ErrBusy, ErrUnknownUser, ErrInvalidGrant, ErrUserDisabled, or a context or storage error.
func (s *Service) PasswordToken(ctx context.Context, req PasswordRequest) (Token, error) {
	if _, err := s.ResolveTenant(req.Tenant); err != nil {
		return Token{}, err
	}
	aud, scp, err := s.servedUserAudience(req.Scope)
	if err != nil {
		return Token{}, err
	}
	clientID, ok := objectID(strings.ToLower(req.ClientID))
	if !ok {
		return Token{}, fmt.Errorf("authenticating user: %w", ErrUnknownClient)
	}
	upn := strings.ToLower(strings.TrimSpace(req.Username))
	if len(upn) > maxUPNLen || !strings.Contains(upn, "@") {
		return Token{}, fmt.Errorf("authenticating user: %w", ErrUnknownUser)
	}
	g, err := s.gate("upn:"+upn, req.RemoteIP)
	if err != nil {
		return Token{}, fmt.Errorf("authenticating user: %w", err)
	}
	_, rec, err := s.findUser(ctx, upn)
	if errors.Is(err, ErrObjectNotFound) {
		return Token{}, fmt.Errorf("authenticating user: %w", ErrUnknownUser)
	}
	if err != nil {
		return Token{}, fmt.Errorf("authenticating user: %w", err)
	}
	credID, err := s.checkSecret(ctx, req.Password, []secretRecord{rec.Password})
	if err != nil {
		return Token{}, fmt.Errorf("authenticating user: %w", err)
	}
	g.outcome(credID != "")
	switch {
	case credID == "":
		return Token{}, fmt.Errorf("authenticating user: %w", ErrInvalidGrant)
	case rec.Disabled:
		return Token{}, fmt.Errorf("authenticating user: %w", ErrUserDisabled)
	}
	return s.issueUser(ctx, rec, clientID, aud, scp, oidcOf(req.Scope))
}

// userAudience reads a delegated scope: "<resource>/.default" (scp user_impersonation, as az
// gets) or "<resource>/<permission>", plus any OIDC scopes; exactly one resource.
func userAudience(scope string) (aud, scp string, err error) {
	for _, sc := range strings.Fields(scope) {
		if oidcScopes[strings.ToLower(sc)] {
			continue
		}
		i := strings.LastIndex(sc, "/")
		if i <= 0 || i == len(sc)-1 {
			return "", "", fmt.Errorf("parsing scope: %q names no resource and permission: %w", sc, ErrInvalidScope)
		}
		r, p := sc[:i], sc[i+1:]
		if p == ".default" {
			p = "user_impersonation"
		}
		if aud != "" && !strings.EqualFold(aud, r) {
			return "", "", fmt.Errorf("parsing scope: more than one resource: %w", ErrInvalidScope)
		}
		aud = r
		if scp == "" {
			scp = p
		} else if !strings.Contains(" "+scp+" ", " "+p+" ") {
			scp += " " + p
		}
	}
	if aud == "" {
		return "", "", fmt.Errorf("parsing scope: no resource: %w", ErrInvalidScope)
	}
	if len(aud) > maxAudienceLen || len(scp) > maxAudienceLen || strings.IndexFunc(aud+scp, unicode.IsControl) >= 0 {
		return "", "", fmt.Errorf("parsing scope: malformed resource: %w", ErrInvalidScope)
	}
	return aud, scp, nil
}

// mintUser signs a user access token. The groups claim lists the user's transitive groups at
// minting (or the overage claim past maxGroupsClaim); it is informational only.
func (s *Service) mintUser(rec *userRecord, clientID, aud, scp string) (Token, error) {
	now := s.now()
	exp := now.Add(s.lifetime).Truncate(time.Second)
	uti := make([]byte, 16)
	if _, err := rand.Read(uti); err != nil {
		return Token{}, fmt.Errorf("generating token id: %w", err)
	}
	c := accessClaims{
		Aud: aud, Iss: s.Issuer(s.tenantID), Iat: now.Unix(), Nbf: now.Unix(), Exp: exp.Unix(),
		AppID: clientID, Azp: clientID, Azpacr: "0", Idtyp: "user",
		Oid: rec.ObjectID, Sub: rec.ObjectID, Tid: s.tenantID,
		Uti: base64.RawURLEncoding.EncodeToString(uti), Ver: "2.0",
		Cred: rec.Password.ID, Gen: rec.Generation,
		Name: rec.DisplayName, Upn: rec.UPN, Scp: scp,
	}
	if groups := s.GroupsOf(rec.ObjectID); len(groups) > maxGroupsClaim {
		c.ClaimNames = map[string]string{"groups": "src1"}
		c.ClaimSrcs = map[string]map[string]string{"src1": {"endpoint": s.publicURL + "/v1.0/users/" + rec.ObjectID + "/getMemberObjects"}}
	} else if len(groups) > 0 {
		c.Groups = groups
	}
	raw, err := s.sign(c)
	if err != nil {
		return Token{}, fmt.Errorf("minting token: %w", err)
	}
	return Token{AccessToken: raw, ExpiresIn: int(exp.Sub(now) / time.Second), ExpiresOn: exp, Resource: aud, ObjectID: rec.ObjectID, UPN: rec.UPN}, nil
}
