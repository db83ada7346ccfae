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

// The seal answers below keep their JSON keys in sorted order, the order they had when they were
// written from maps, so that their bytes on the wire did not change when they became types.

// AdminCredential is the bootstrap admin's credential, returned once by the answer that creates
// or moves it, in admin.json's field order.
type AdminCredential struct {
	TenantID       string `json:"tenantId"`
	SubscriptionID string `json:"subscriptionId"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
}

// InitResult answers POST /sys/init (Shamir): the shares, in the clear or encrypted to age
// recipients, and the bootstrap credential.
type InitResult struct {
	Admin      *AdminCredential `json:"admin,omitempty"`
	KeysAge    []string         `json:"keys_age,omitempty"`
	KeysBase64 []string         `json:"keys_base64,omitempty"`
	Shares     int              `json:"secret_shares"`
	Threshold  int              `json:"secret_threshold"`
}

// RekeyResult answers POST /sys/rekey: a Shamir seal's new shares, or which seal was rekeyed
// (and, for pkcs11, the new HSM key's label); Warning says what a member still has to do.
type RekeyResult struct {
	KeyLabel   string   `json:"keyLabel,omitempty"`
	KeysBase64 []string `json:"keys_base64,omitempty"`
	Rekeyed    bool     `json:"rekeyed,omitempty"`
	Shares     int      `json:"secret_shares,omitempty"`
	Threshold  int      `json:"secret_threshold,omitempty"`
	Type       string   `json:"type,omitempty"`
	Warning    string   `json:"warning,omitempty"`
}

// SealMigrateResult answers POST /sys/seal/migrate: the seal types, a Shamir target's shares,
// the bootstrap credential when admin.json was removed, and what operators must do next.
type SealMigrateResult struct {
	Admin            *AdminCredential `json:"admin,omitempty"`
	AdminFileRemoved string           `json:"adminFileRemoved,omitempty"`
	From             string           `json:"from"`
	KeysBase64       []string         `json:"keys_base64,omitempty"`
	Next             string           `json:"next"`
	Shares           int              `json:"secret_shares,omitempty"`
	Threshold        int              `json:"secret_threshold,omitempty"`
	To               string           `json:"to"`
	Warning          string           `json:"warning,omitempty"`
}
