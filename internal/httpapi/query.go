package httpapi

import (
	"net/url"
	"strings"
)

// queryValue returns the first value of key in a raw query string, as url.Values.Get would,
// without building the whole map (api-version is read on every request).
func queryValue(rawQuery, key string) string {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if strings.Contains(pair, ";") {
			continue // url.ParseQuery rejects these pairs too
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				continue
			}
			return u
		}
		return v
	}
	return ""
}
