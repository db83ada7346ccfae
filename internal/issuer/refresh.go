package issuer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/strongroom/strongroom/internal/identity"
)

// grant_type=refresh_token (identity/refresh.go): client_id, refresh_token and scope (or the v1
// resource), plus client_secret for a confidential client. The answer is a new access token
// for the scope's resource and the family's next refresh token; the presented one is used up,
// and presenting it again revokes the whole sign-in session.

// serveRefreshGrant redeems a refresh token.
func (i *Issuer) serveRefreshGrant(w http.ResponseWriter, r *http.Request, tenant string) {
	form := r.PostForm
	clientID, rt := form.Get("client_id"), form.Get("refresh_token")
	for _, p := range []struct{ name, v string }{{"client_id", clientID}, {"refresh_token", rt}} {
		if p.v == "" {
			i.writeError(w, r, http.StatusBadRequest, "invalid_request", 900144, missingParam(p.name))
			return
		}
	}
	scope := form.Get("scope")
	if !hasResource(scope) && form.Get("resource") != "" {
		scope += " " + form.Get("resource") + "/.default"
	}
	tok, err := i.id.RedeemRefreshToken(r.Context(), identity.RefreshRequest{Tenant: tenant, ClientID: clientID,
		RefreshToken: rt, Scope: scope, ClientSecret: form.Get("client_secret"), RemoteIP: remoteIP(r)})
	if err != nil {
		i.note(r, clientID, "", refreshFailure(err))
		i.writeRefreshError(w, r, err, tenant, clientID, scope)
		return
	}
	i.noteUser(r, clientID, tok.UPN, tok.ObjectID, "")
	writeJSON(w, http.StatusOK, "no-store", i.userResponse(r, tok))
}

// hasResource reports whether scope names a resource, not only OIDC scopes.
func hasResource(scope string) bool {
	for _, f := range strings.Fields(scope) {
		switch strings.ToLower(f) {
		case "openid", "profile", "offline_access", "email":
		default:
			return true
		}
	}
	return false
}

// writeRefreshError maps refresh token errors to Entra's (invalid_grant with the AADSTS code
// Entra uses for each case), then falls back to the user sign-in mapping.
func (i *Issuer) writeRefreshError(w http.ResponseWriter, r *http.Request, err error, tenant, clientID, scope string) {
	const again = " Send a new interactive authorization request for this user and resource."
	switch {
	case errors.Is(err, identity.ErrMalformedRefreshToken):
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: the refresh token is not one this server issued.")
	case errors.Is(err, identity.ErrRefreshTokenReused):
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 70008, "The provided refresh token has already been redeemed. Every refresh token of its sign-in session is now revoked."+again)
	case errors.Is(err, identity.ErrRefreshTokenExpired):
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 700082, "The refresh token has expired due to inactivity."+again)
	case errors.Is(err, identity.ErrRefreshTokenRevoked):
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password, or their sign-in sessions were revoked."+again)
	case errors.Is(err, identity.ErrRefreshTokenClient):
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 70000, "Provided grant is invalid or malformed: the refresh token was issued to another client.")
	case errors.Is(err, identity.ErrInvalidRefreshToken):
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity."+again)
	default:
		i.writePasswordError(w, r, err, tenant, clientID, scope)
	}
}

func refreshFailure(err error) string {
	switch {
	case errors.Is(err, identity.ErrRefreshTokenReused):
		return "token refused: refresh token reused, session revoked"
	case errors.Is(err, identity.ErrRefreshTokenExpired):
		return "token refused: refresh token expired"
	case errors.Is(err, identity.ErrRefreshTokenRevoked):
		return "token refused: refresh token revoked"
	case errors.Is(err, identity.ErrInvalidRefreshToken):
		return "token refused: invalid refresh token"
	}
	return failureReason(err)
}

// userResponse is the success body of a user grant: the access token, and the refresh token,
// ID token and client_info (base64url JSON {uid: object id, utid: tenant id}, what MSAL keys
// its account on) as the request asked.
func (i *Issuer) userResponse(r *http.Request, tok identity.Token) tokenResponse {
	resp := tokenResponse{TokenType: "Bearer", ExpiresIn: tok.ExpiresIn, ExtExpiresIn: tok.ExpiresIn, AccessToken: tok.AccessToken,
		RefreshToken: tok.RefreshToken, IDToken: tok.IDToken}
	if r.PostForm.Get("client_info") == "1" {
		ci, _ := json.Marshal(map[string]string{"uid": tok.ObjectID, "utid": i.id.TenantID()})
		resp.ClientInfo = base64.RawURLEncoding.EncodeToString(ci)
	}
	return resp
}
