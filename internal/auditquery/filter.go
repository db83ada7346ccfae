package auditquery

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Filter selects records; every field set must match (zero fields match everything). Text
// matches are case-insensitive, as Key Vault's names are.
type Filter struct {
	// Vault is a vault name: the vault of the record's resourceId, or of its requestUri (an ARM
	// path naming the vault, or a data-plane host "{vault}.{VaultDNSSuffix}").
	Vault string
	// ResourceGroup, with Vault, leaves out records that name the vault in another resource
	// group (an earlier vault of the same name); records naming no group are kept.
	ResourceGroup string
	// Secret is a secret name: the secret of properties.id or of the requestUri path
	// (/secrets/{name} or /deletedsecrets/{name}).
	Secret string
	// Operations are operationName values (SecretGet, VaultPut, Authentication...); any matches.
	// Without it, the log's own records (AuditCheckpoint, AuditLogStart) are left out.
	Operations []string
	// Caller is a caller's object id (oid), application id (appid) or user principal name (upn).
	Caller string
	// Result is "success", "failure" or "unknown" (resultType; unknown is a change whose outcome
	// a crash lost), an HTTP status ("403"), or a resultSignature ("Forbidden").
	Result string
	// Since (inclusive) and Until (exclusive) bound the record time.
	Since, Until time.Time
	// VaultDNSSuffix is the server's dns_suffix (a port after it is ignored); "" recognises a
	// data-plane request's vault only by the record's resourceId.
	VaultDNSSuffix string
}

// Validate checks the filter's values.
func (f *Filter) Validate() error {
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("since (%s) must be before until (%s)", f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339))
	}
	if r := f.Result; r != "" && strings.ContainsAny(r, " \t/") {
		return fmt.Errorf("result %q: use success, failure, an HTTP status or a result signature", r)
	}
	return nil
}

// ParseTime reads a --since/--until value: RFC 3339 (with or without fractional seconds), a
// date (midnight UTC), or a duration before now ("15m", "24h", "7d").
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time, a date nor a duration such as 15m, 24h or 7d", s)
}

// view is the part of a record the filters read.
type view struct {
	Time            string `json:"time"`
	ResourceID      string `json:"resourceId"`
	OperationName   string `json:"operationName"`
	ResultType      string `json:"resultType"`
	ResultSignature string `json:"resultSignature"`
	CallerIPAddress string `json:"callerIpAddress"`
	Identity        *struct {
		Claim struct {
			AppID    string `json:"appid"`
			ObjectID string `json:"oid"`
			UPN      string `json:"upn"`
		} `json:"claim"`
	} `json:"identity"`
	Properties struct {
		ID             string `json:"id"`
		HTTPStatusCode int    `json:"httpStatusCode"`
		RequestURI     string `json:"requestUri"`
	} `json:"properties"`
}

// logOwnOperations are the bookkeeping records the log writes about itself (signed
// checkpoints, the start of a file after a rotation); a query returns them only when
// Operations names them. AuditLogResumed (the sink failed and recovered) is an incident, kept.
var logOwnOperations = []string{"AuditCheckpoint", "AuditLogStart"}

// matchRest applies every filter but time, which the scan checks before decoding.
func (f *Filter) matchRest(v *view) bool {
	if len(f.Operations) == 0 && anyFold(logOwnOperations, v.OperationName) {
		return false
	}
	if len(f.Operations) > 0 && !anyFold(f.Operations, v.OperationName) {
		return false
	}
	if f.Vault != "" && !strings.EqualFold(vaultOf(v, f.VaultDNSSuffix), f.Vault) {
		return false
	}
	if f.ResourceGroup != "" && !inGroup(v, f.ResourceGroup) {
		return false
	}
	if f.Secret != "" && !strings.EqualFold(secretOf(v), f.Secret) {
		return false
	}
	if f.Caller != "" && !callerIs(v, f.Caller) {
		return false
	}
	if f.Result != "" && !resultIs(v, f.Result) {
		return false
	}
	return true
}

func anyFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func callerIs(v *view, who string) bool {
	if v.Identity == nil {
		return false
	}
	c := &v.Identity.Claim
	return (c.ObjectID != "" && strings.EqualFold(c.ObjectID, who)) ||
		(c.AppID != "" && strings.EqualFold(c.AppID, who)) ||
		(c.UPN != "" && strings.EqualFold(c.UPN, who))
}

func resultIs(v *view, want string) bool {
	switch {
	case strings.EqualFold(want, "success"), strings.EqualFold(want, "failure"), strings.EqualFold(want, "unknown"):
		return strings.EqualFold(v.ResultType, want)
	}
	if code, err := strconv.Atoi(want); err == nil {
		return v.Properties.HTTPStatusCode == code
	}
	return strings.EqualFold(strings.ReplaceAll(v.ResultSignature, " ", ""), strings.ReplaceAll(want, " ", ""))
}

// nameAfter returns the path segment after the first segment equal (case-insensitively) to
// one of keys.
func nameAfter(path string, keys ...string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+1 < len(segs); i++ {
		if anyFold(keys, segs[i]) && segs[i+1] != "" {
			return segs[i+1]
		}
	}
	return ""
}

// uriParts splits a record URI into its host (without port) and path; the URI has no query
// values left, but may be malformed.
func uriParts(raw string) (host, path string) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", ""
	}
	return u.Hostname(), u.Path
}

// vaultOf is the vault a record is about, or "".
func vaultOf(v *view, suffix string) string {
	if n := nameAfter(v.ResourceID, "vaults", "deletedvaults"); n != "" {
		return n
	}
	host, path := uriParts(v.Properties.RequestURI)
	if n := nameAfter(path, "vaults", "deletedvaults"); n != "" {
		return n
	}
	suffix = strings.TrimPrefix(suffix, ".")
	if i := strings.IndexByte(suffix, ':'); i >= 0 { // a profile's suffix may carry the port
		suffix = suffix[:i]
	}
	if suffix != "" {
		if label, ok := strings.CutSuffix(strings.ToLower(host), "."+strings.ToLower(suffix)); ok && label != "" && !strings.Contains(label, ".") {
			return label
		}
	}
	return ""
}

// inGroup reports whether the record's resourceId (or ARM request path) names resource group
// rg, or names none.
func inGroup(v *view, rg string) bool {
	g := nameAfter(v.ResourceID, "resourcegroups")
	if g == "" && v.ResourceID == "" {
		_, path := uriParts(v.Properties.RequestURI)
		g = nameAfter(path, "resourcegroups")
	}
	return g == "" || strings.EqualFold(g, rg)
}

// secretOf is the secret a record is about, or "".
func secretOf(v *view) string {
	for _, raw := range []string{v.Properties.ID, v.Properties.RequestURI} {
		if raw == "" {
			continue
		}
		_, path := uriParts(raw)
		if n := nameAfter(path, "secrets", "deletedsecrets"); n != "" {
			return n
		}
	}
	return ""
}
