package identity

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// servedResources are the public cloud's resource ids whose audiences some plane of Strongroom
// accepts; the token endpoint refuses any other (AADSTS500011), as Entra refuses a resource
// with no service principal in the tenant, instead of signing whatever audience is asked for.
var servedResources = []string{
	"https://vault.azure.net",             // data plane
	"https://management.core.windows.net", // ARM (az, the SDKs' public-cloud audience)
	"https://management.azure.com",        // ARM
	"https://graph.microsoft.com",         // directory (Microsoft Graph)
}

// ServesResource reports whether a token for resource (an audience, compared after removing
// one trailing "/", case-insensitively) is accepted by one of Strongroom's planes: the data
// plane's https://vault.azure.net and https://<dns-suffix>[:port] (any port: each node of a
// cluster names its own), ARM's two audiences, Graph's, and the server's own origin.
func (s *Service) ServesResource(resource string) bool {
	r := strings.ToLower(strings.TrimSuffix(resource, "/"))
	if r == strings.ToLower(s.publicURL) {
		return true
	}
	for _, w := range servedResources {
		if r == w {
			return true
		}
	}
	u, err := url.Parse(r)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	for _, suffix := range s.dnsSuffix {
		if u.Hostname() == suffix {
			return true
		}
	}
	return false
}

// servedAudience is the audience an application's scope asks for, when this server issues
// tokens for it (ErrInvalidScope, or ErrUnknownResource: AADSTS500011).
func (s *Service) servedAudience(scope string) (string, error) {
	aud, err := AudienceFromScope(scope)
	if err != nil {
		return "", err
	}
	if !s.ServesResource(aud) {
		return "", fmt.Errorf("%w: %s", ErrUnknownResource, aud)
	}
	return aud, nil
}

// servedUserAudience is servedAudience for a user's delegated scope: the audience and the
// delegated scopes.
func (s *Service) servedUserAudience(scope string) (aud, scp string, err error) {
	if aud, scp, err = userAudience(scope); err != nil {
		return "", "", err
	}
	if !s.ServesResource(aud) {
		return "", "", fmt.Errorf("%w: %s", ErrUnknownResource, aud)
	}
	return aud, scp, nil
}
