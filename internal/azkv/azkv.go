// Package azkv is Strongroom's wire package. It holds Key Vault's data-plane wire types and id
// formats, exactly as the official SDKs read them, and the error envelope every plane answers
// with, with its one writer (WriteError); the management plane's types are in azkv/arm. It
// knows nothing about storage, authorization or the domain: it imports the standard library
// and internal/jsonenc only.
package azkv

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// SecretAttributes is Key Vault's SecretAttributes. Times are Unix seconds (IntDate).
type SecretAttributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created,omitempty"`
	Updated         int64  `json:"updated,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
	RecoverableDays *int   `json:"recoverableDays,omitempty"`
}

// SecretBundle is the body of set, get, update, delete, recover and restore responses, and (with
// the deletion fields) of deleted-secret responses. Value is omitted where the service omits it.
type SecretBundle struct {
	Value       *string           `json:"value,omitempty"`
	ID          string            `json:"id"`
	ContentType string            `json:"contentType,omitempty"`
	Attributes  SecretAttributes  `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
	Managed     bool              `json:"managed,omitempty"`
	// Deleted-secret fields (DeletedSecretBundle / DeletedSecretItem).
	RecoveryID         string `json:"recoveryId,omitempty"`
	ScheduledPurgeDate int64  `json:"scheduledPurgeDate,omitempty"`
	DeletedDate        int64  `json:"deletedDate,omitempty"`
}

// ListResult is a page of SecretItems or DeletedSecretItems. NextLink is JSON null on the last
// page, as the service sends it.
type ListResult struct {
	Value    []SecretBundle `json:"value"`
	NextLink *string        `json:"nextLink"`
}

// SetParameters is the PUT /secrets/{name} body.
type SetParameters struct {
	Value       *string           `json:"value"`
	ContentType *string           `json:"contentType"`
	Tags        map[string]string `json:"tags"`
	Attributes  *SecretAttributes `json:"attributes"`
}

// UpdateParameters is the PATCH /secrets/{name}/{version} body; absent fields are unchanged.
type UpdateParameters struct {
	ContentType *string            `json:"contentType"`
	Tags        *map[string]string `json:"tags"`
	Attributes  *SecretAttributes  `json:"attributes"`
}

// BackupResult is the backup response and the restore request body.
type BackupResult struct {
	Value *string `json:"value"`
}

// SecretID is "{base}/secrets/{name}/{version}", or the base id when version is empty.
func SecretID(vaultBase, name, version string) string {
	if version == "" {
		return vaultBase + "/secrets/" + name
	}
	return vaultBase + "/secrets/" + name + "/" + version
}

// RecoveryID is "{base}/deletedsecrets/{name}".
func RecoveryID(vaultBase, name string) string { return vaultBase + "/deletedsecrets/" + name }

// EncodeSkipToken and DecodeSkipToken make the opaque $skiptoken of nextLinks.
func EncodeSkipToken(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(after))
}

// DecodeSkipToken reverses EncodeSkipToken; ok is false for a malformed token.
func DecodeSkipToken(tok string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(tok, "="))
	return string(b), err == nil
}

// Marshal encodes v without HTML escaping (ids and values are not HTML).
func Marshal(v any) []byte {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // wire types always encode
	return []byte(strings.TrimSuffix(sb.String(), "\n"))
}
