package arm

import "time"

// Bodies of Strongroom's operator routes under /sys on the management origin. They are not
// ARM's, but share its origin, token and envelope.

// ActiveTerm answers POST /sys/keyring/rotate.
type ActiveTerm struct {
	ActiveTerm uint32 `json:"activeTerm"`
}

// RetiredTerms answers POST /sys/keyring/retire; null when nothing was retired.
type RetiredTerms struct {
	RetiredTerms []uint32 `json:"retiredTerms"`
}

// ActiveBackupKey answers POST /sys/backup-keys/rotate.
type ActiveBackupKey struct {
	ActiveBackupKey uint32 `json:"activeBackupKey"`
}

// Compacted answers POST /sys/compact.
type Compacted struct {
	Compacted bool `json:"compacted"`
}

// Sealed answers POST /sys/seal.
type Sealed struct {
	Sealed bool `json:"sealed"`
}

// RewrapRequest is the optional body of POST /sys/keyring/rewrap.
type RewrapRequest struct {
	Limit      int  `json:"limit"`
	Background bool `json:"background"`
}

// RekeyRequest is the optional body of POST /sys/rekey.
type RekeyRequest struct {
	Shares    int `json:"secret_shares"`
	Threshold int `json:"secret_threshold"`
}

// SealMigrateRequest is the body of POST /sys/seal/migrate.
type SealMigrateRequest struct {
	To        string `json:"to"`
	Shares    int    `json:"secret_shares"`
	Threshold int    `json:"secret_threshold"`
}

// PrincipalCreateRequest is the body of POST /sys/principals.
type PrincipalCreateRequest struct {
	DisplayName string `json:"displayName"`
}

// PrincipalCreated answers it: the new principal and its client secret, shown this once.
type PrincipalCreated struct {
	ObjectID     string `json:"objectId"`
	AppID        string `json:"appId"`
	TenantID     string `json:"tenantId"`
	DisplayName  string `json:"displayName"`
	ClientSecret string `json:"clientSecret"`
}

// SecretAddRequest is the optional body of POST /sys/principals/{id}/secrets.
type SecretAddRequest struct {
	Replace bool `json:"replace"`
}

// SecretAdded answers it: the principal as operators see it (P), and the new client secret,
// shown this once.
type SecretAdded[P any] struct {
	Principal    P         `json:"principal"`
	KeyID        string    `json:"keyId"`
	CreatedAt    time.Time `json:"createdAt"`
	ClientSecret string    `json:"clientSecret"`
}
