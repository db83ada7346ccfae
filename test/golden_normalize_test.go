package test

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// wireNormalizer replaces what changes from run to run in a recorded exchange with named
// placeholders, and leaves everything a client parses as it came. A value that does not look
// as expected (a time that is not Unix seconds near now, a blob that is not base64url) is left
// alone, so the golden comparison reports it.
type wireNormalizer struct {
	fixed    *strings.Replacer // this run's host, port, tenant and principal ids
	versions map[string]string // version id → {vN}, numbered by first appearance
}

type strangerIDs struct{ objectID, appID string }

var (
	uuidRe      = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	versionRe   = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	skipTokenRe = regexp.MustCompile(`(\$skiptoken|%24skiptoken)=[^&"]+`)
	base64URLRe = regexp.MustCompile(`^[A-Za-z0-9_-]{200,}$`)
)

func newWireNormalizer(e *env, vault string, s strangerIDs) *wireNormalizer {
	port := strconv.Itoa(e.srv.Port)
	return &wireNormalizer{
		// strings.Replacer tries the pairs in order at each position: the vault URL before the
		// bare host and port.
		fixed: strings.NewReplacer(
			"https://"+vault+".vault.localhost:"+port, "https://{vault}",
			e.srv.URL, "https://{public}",
			"vault.localhost:"+port, "vault.localhost:{port}",
			e.srv.Admin.TenantID, "{tenantId}",
			e.srv.Admin.SubscriptionID, "{subscriptionId}",
			clientRequestID, "{clientRequestId}",
			e.srv.Admin.ClientID, "{adminAppId}",
			s.objectID, "{strangerObjectId}",
			s.appID, "{strangerAppId}",
		),
		versions: map[string]string{},
	}
}

// str normalizes one string.
func (n *wireNormalizer) str(s string) string {
	s = n.fixed.Replace(s)
	s = skipTokenRe.ReplaceAllString(s, "$1={skiptoken}")
	s = uuidRe.ReplaceAllString(s, "{uuid}")
	return versionRe.ReplaceAllStringFunc(s, func(v string) string {
		if strings.Trim(v, "0") == "" {
			return v // the all-zero version the not-found cases ask for
		}
		if l, ok := n.versions[v]; ok {
			return l
		}
		l := fmt.Sprintf("{version%d}", len(n.versions)+1)
		n.versions[v] = l
		return l
	})
}

// headers keeps every response header except Date and Content-Length (which varies with the
// digits of the port), normalized.
func (n *wireNormalizer) headers(h http.Header) map[string]string {
	out := map[string]string{}
	for k, vs := range h {
		if k == "Date" || k == "Content-Length" {
			continue
		}
		out[k] = n.str(strings.Join(vs, ", "))
	}
	return out
}

// body normalizes a decoded JSON value.
func (n *wireNormalizer) body(_ string, v any) any { return n.walk("", v, nil) }

func (n *wireNormalizer) walk(key string, v any, parent map[string]any) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // placeholders are numbered in a fixed order
		out := make(map[string]any, len(x))
		for _, k := range keys {
			out[k] = n.walk(k, x[k], x)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = n.walk(key, e, nil)
		}
		return out
	case string:
		if base64URLRe.MatchString(x) {
			return "{base64url backup blob}"
		}
		return n.str(x)
	case float64:
		return n.number(key, x, parent)
	}
	return v
}

// number replaces the server's clock readings (Unix seconds within a day of now) and states a
// purge date as its distance from the deletion date.
func (n *wireNormalizer) number(key string, x float64, parent map[string]any) any {
	switch key {
	case "created", "updated", "deletedDate":
		if math.Abs(x-float64(time.Now().Unix())) < 86400 && x == math.Trunc(x) {
			return "{now}"
		}
	case "scheduledPurgeDate":
		if d, ok := parent["deletedDate"].(float64); ok && math.Mod(x-d, 86400) == 0 {
			return fmt.Sprintf("{deletedDate + %d days}", int((x-d)/86400))
		}
	}
	return x
}

// lineDiff shows the lines of want and got that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  - %s\n  + %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}
