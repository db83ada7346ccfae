package identity

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"
)

// idClaims is an Entra v2 ID token's payload. MSAL reads the account from it (oid, tid,
// preferred_username) to find its cached refresh token later; without one a public client
// signs the user in again instead of redeeming it. It is not an access token: its audience is
// the client id, which no plane accepts, and it carries no sr_cred, so Verify refuses it.
type idClaims struct {
	Aud               string `json:"aud"`
	Iss               string `json:"iss"`
	Iat               int64  `json:"iat"`
	Nbf               int64  `json:"nbf"`
	Exp               int64  `json:"exp"`
	Name              string `json:"name,omitempty"`
	Oid               string `json:"oid"`
	PreferredUsername string `json:"preferred_username"`
	Sub               string `json:"sub"`
	Tid               string `json:"tid"`
	Uti               string `json:"uti"`
	Ver               string `json:"ver"`
}

// mintIDToken signs an ID token for the user and client, valid as long as an access token.
func (s *Service) mintIDToken(rec *userRecord, clientID string) (string, error) {
	now := s.now()
	uti := make([]byte, 16)
	if _, err := rand.Read(uti); err != nil {
		return "", fmt.Errorf("generating token id: %w", err)
	}
	raw, err := s.sign(idClaims{
		Aud: clientID, Iss: s.Issuer(s.tenantID), Iat: now.Unix(), Nbf: now.Unix(),
		Exp: now.Add(s.lifetime).Truncate(time.Second).Unix(), Name: rec.DisplayName, Oid: rec.ObjectID,
		PreferredUsername: rec.UPN, Sub: rec.ObjectID, Tid: s.tenantID,
		Uti: base64.RawURLEncoding.EncodeToString(uti), Ver: "2.0",
	})
	if err != nil {
		return "", fmt.Errorf("minting id token: %w", err)
	}
	return raw, nil
}
