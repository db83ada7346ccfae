package httpapi

import (
	"net/http"
	"strings"
)

// issuerOperation names a request to the token issuer's routes for its audit record and
// metrics: every token request, granted or refused, is an "Authentication" (Key Vault's name
// for sign-in events); the discovery documents and sign-in pages get names of their own.
// "" means the path is not one of the issuer's.
func issuerOperation(method, path string) string {
	switch {
	case method == http.MethodPost && (strings.HasSuffix(path, "/oauth2/v2.0/token") || path == "/adfs/oauth2/token"):
		return "Authentication"
	case strings.HasSuffix(path, "/oauth2/v2.0/devicecode") || path == "/adfs/oauth2/devicecode":
		return "DeviceCodeRequest"
	case strings.HasSuffix(path, "/oauth2/v2.0/authorize"):
		if method == http.MethodPost {
			return "SignIn"
		}
		return "SignInPage"
	case strings.HasSuffix(path, "/devicelogin"):
		return "DeviceSignIn"
	case strings.HasSuffix(path, "/.well-known/openid-configuration"):
		return "OpenIdConfigurationGet"
	case strings.HasSuffix(path, "/discovery/v2.0/keys") || path == "/adfs/discovery/keys":
		return "SigningKeysGet"
	case path == "/common/discovery/instance":
		return "InstanceDiscovery"
	case strings.HasPrefix(strings.ToLower(path), "/common/userrealm/"):
		return "UserRealmGet"
	}
	return ""
}

// issuerOperations are the names issuerOperation gives (for the metrics' operation labels).
var issuerOperations = []string{"Authentication", "DeviceCodeRequest", "SignIn", "SignInPage", "DeviceSignIn",
	"OpenIdConfigurationGet", "SigningKeysGet", "InstanceDiscovery", "UserRealmGet"}
