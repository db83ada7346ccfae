package audit

import (
	"net/url"
	"strings"
)

// Redacted replaces the value of every query parameter that is not on the allowlist.
const Redacted = "REDACTED"

// maxNameLen bounds a kept parameter name: a longer "name" is more likely a credential sent in
// the wrong place than a parameter, so it is replaced too.
const maxNameLen = 64

// allowedParams are the query parameters whose values Key Vault, ARM, Graph, the issuer and the
// MSAL libraries legitimately send and that carry no secret (compared case-insensitively, as
// Azure does). Every other parameter keeps its name and loses its value.
var allowedParams = []string{
	"api-version", "maxresults",
	"$skiptoken", "$top", "$filter", "$expand", "$select", "$orderby",
	"authorization_endpoint", // instance discovery (internal/issuer)
	"client-request-id", "x-client-sku", "x-client-ver", "x-client-os", "x-client-cpu",
}

func allowedParam(name string) bool {
	if strings.ContainsAny(name, "%+") {
		if u, err := url.QueryUnescape(name); err == nil {
			name = u
		}
	}
	for _, a := range allowedParams {
		if strings.EqualFold(name, a) {
			return true
		}
	}
	return false
}

// RedactURI returns uri with the value of every query parameter outside the allowlist replaced
// by Redacted (names are kept), so that a client secret or token sent in a query string never
// reaches an audit record. A parameter without '=' that is not allowlisted, a name longer than
// 64 bytes and any fragment are replaced whole. A pair holding ';' (which url.ParseQuery
// rejects, so no handler reads it) keeps no value either. uri is returned unchanged, without
// allocating, when nothing needs redacting (the common case: only api-version).
func RedactURI(uri string) string {
	base, query, hasQuery := strings.Cut(uri, "?")
	if !hasQuery {
		if b, _, hasFrag := strings.Cut(uri, "#"); hasFrag {
			return b + "#" + Redacted
		}
		return uri
	}
	query, frag, hasFrag := strings.Cut(query, "#")
	if !hasFrag && !needsRedaction(query) {
		return uri
	}
	var b strings.Builder
	b.Grow(len(uri))
	b.WriteString(base)
	b.WriteByte('?')
	for first := true; ; first = false {
		pair, rest, more := strings.Cut(query, "&")
		if !first {
			b.WriteByte('&')
		}
		b.WriteString(redactPair(pair))
		if !more {
			break
		}
		query = rest
	}
	if hasFrag && frag != "" {
		b.WriteString("#" + Redacted)
	}
	return b.String()
}

// needsRedaction reports whether some pair of query would change.
func needsRedaction(query string) bool {
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if redactPair(pair) != pair {
			return true
		}
	}
	return false
}

// redactPair is one "name=value" pair as it may be recorded.
func redactPair(pair string) string {
	if pair == "" {
		return pair
	}
	name, _, hasValue := strings.Cut(pair, "=")
	switch {
	case len(name) > maxNameLen:
		return Redacted
	case !hasValue:
		if allowedParam(name) {
			return pair
		}
		return Redacted
	case allowedParam(name) && !strings.Contains(pair, ";"):
		return pair
	case strings.Contains(name, ";"):
		return Redacted
	}
	return name + "=" + Redacted
}
