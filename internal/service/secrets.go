// Secret records (versions and heads), the request and page types, and where records live:
// the key layouts and the scans over them.

package service

import (
	"context"
	"errors"
	"strings"
)

// Limits from Key Vault's service limits.
const (
	MaxValueBytes       = 25 * 1024
	MaxTags             = 15
	MaxTagNameLen       = 512
	MaxTagValueLen      = 512
	MaxContentTypeLen   = 255
	MaxPageSize         = 25
	secretActionPrefix  = "Microsoft.KeyVault/vaults/secrets/"
	secretNotFoundHint  = " was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
	deletedSecretPrefix = "Deleted Secret not found: "
)

// SecretVersion is one immutable version of a secret; only its attributes, tags and content
// type change after creation. Value is empty where a record holds metadata only.
type SecretVersion struct {
	Version     string            `json:"version"`
	Value       string            `json:"value,omitempty"`
	ContentType string            `json:"contentType,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Enabled     bool              `json:"enabled"`
	NotBefore   *int64            `json:"nbf,omitempty"`
	Expires     *int64            `json:"exp,omitempty"`
	Created     int64             `json:"created"`
	Updated     int64             `json:"updated"`

	// seq is the secret's head counter in the batch that last wrote this version's record and
	// born the one in the batch that created it (integrity.go); both are 0 in records written
	// before counters existed, and neither leaves the service.
	seq, born uint64
}

// Deletion marks a soft-deleted secret.
type Deletion struct {
	DeletedDate        int64 `json:"deletedDate"`
	ScheduledPurgeDate int64 `json:"scheduledPurgeDate"`
}

// secretHead is the per-name record: the latest version and deletion state. It carries the
// latest version's value too, so the most common read (GET latest) is one store read.
type secretHead struct {
	Name        string        `json:"name"`
	Latest      string        `json:"latest"`
	Deleted     *Deletion     `json:"deleted,omitempty"`
	Item        SecretVersion `json:"item"`
	LatestValue *string       `json:"latestValue,omitempty"`

	// Rollback detection (integrity.go); all zero in heads written before it existed.
	Seq      uint64       `json:"-"` // raised by every write of the head
	Origin   uint64       `json:"-"` // Seq when this incarnation of the name was created
	Tip      [tipLen]byte `json:"-"` // the value of the tip record written with this head
	PinFloor uint64       `json:"-"` // the highest seq of a pin dropped from Pins
	Pins     string       `json:"-"` // seq of each updated non-latest version's record
}

// withLatest records sv as the head's latest version, value included.
func (h *secretHead) withLatest(sv SecretVersion) {
	v := sv.Value
	sv.Value = ""
	h.Latest, h.Item, h.LatestValue = sv.Version, sv, &v
}

// Secret is what the data plane returns for one secret version.
type Secret struct {
	Name string
	SecretVersion
	HasValue        bool
	RecoveryLevel   string
	RecoverableDays int
	Deleted         *Deletion
	cursor          string // the listing position after this item
}

// SecretInput is a set request.
type SecretInput struct {
	Value       *string
	ContentType *string
	Tags        map[string]string
	Enabled     *bool
	NotBefore   *int64
	Expires     *int64
}

// SecretUpdate is an update request; nil fields are unchanged.
type SecretUpdate struct {
	ContentType *string
	Tags        *map[string]string
	Enabled     *bool
	NotBefore   *int64
	Expires     *int64
}

// Page is one page of a listing; Next is "" on the last page.
type Page struct {
	Items []Secret
	Next  string
}

// Secret key layouts. A vault keeps the layout it was created with (Vault.Layout).
//
// LayoutSplit (0, vaults created before layouts existed): heads at v/<id>/n/NAME and versions
// at v/<id>/x/NAME/<ver>, two subtrees, so every write dirties two B+tree leaves.
//
// LayoutColocated (2): a name's versions at v/<id>/n/NAME!<ver> and its head right after them
// at v/<id>/n/NAME!~. '!' sorts below every character a name may hold, so each name's records
// are contiguous; '~' sorts above hex digits, so the head follows its versions; and version ids
// grow with time (newVersion), so a new version lands next to the head: a write usually dirties
// one leaf (docs/benchmarks.md).
const (
	LayoutSplit     = 0
	LayoutColocated = 2

	versionSep = "!"
	headSuffix = "!~"
	// beforeHead sorts after every version key of a name and right before its head.
	beforeHead = "!}"
)

func headsPrefix(v *Vault) string { return "v/" + v.ID + "/n/" }
func headKey(v *Vault, name string) string {
	if v.Layout == LayoutColocated {
		return headsPrefix(v) + strings.ToUpper(name) + headSuffix
	}
	return headsPrefix(v) + strings.ToUpper(name)
}

// versionPrefix is the prefix of name's version keys; under the co-located layout the head
// shares it, so scans use scanVersions.
func versionPrefix(v *Vault, name string) string {
	if v.Layout == LayoutColocated {
		return headsPrefix(v) + strings.ToUpper(name) + versionSep
	}
	return "v/" + v.ID + "/x/" + strings.ToUpper(name) + "/"
}
func versionKey(v *Vault, name, version string) string {
	return versionPrefix(v, name) + strings.ToLower(version)
}

// scannedTip is the tip a head scan read with a head (scanHeads). A scan of the co-located
// layout passes over each name's tip right before its head, so it knows the tip, or knows
// there is none, without another read; read is false where it does not (the split layout, and
// a name the scan resumed inside of).
type scannedTip struct {
	value       []byte
	read, found bool
}

// maxInlineVersions is how many version keys of one name a co-located head scan steps over
// before it restarts at the name's head instead: stepping over a key costs far less than a
// restarted scan, but a name with thousands of versions should not cost thousands.
const maxInlineVersions = 16

// scanHeads calls fn with every secret head of v whose (upper-cased) name sorts after after
// ("" = from the start), in name order, until fn returns false. It is one store scan, plus
// one per name with more than maxInlineVersions versions under the co-located layout, where
// it steps over each name's versions (by key: nothing is decrypted) and hands fn the tip it
// read with the head.
func (s *Service) scanHeads(ctx context.Context, v *Vault, after string, fn func(name string, raw []byte, tip scannedTip) bool) error {
	prefix := headsPrefix(v)
	if v.Layout != LayoutColocated {
		return s.st.Scan(ctx, prefix, prefixed(prefix, after), func(key string, raw []byte) bool {
			return fn(key[len(prefix):], raw, scannedTip{})
		})
	}
	from := ""
	if after != "" {
		from = prefix + after + headSuffix
	}
	for {
		resume, run := "", 0
		var runName string
		var tip scannedTip
		tipName := ""
		err := s.st.Scan(ctx, prefix, from, func(key string, raw []byte) bool {
			name, rest, _ := strings.Cut(key[len(prefix):], versionSep) // names hold no '!'
			switch rest {
			case headSuffix[len(versionSep):]:
				t := scannedTip{}
				if tipName == name {
					t = tip
				} else if from != prefix+name+beforeHead { // the scan passed where its tip would be
					t = scannedTip{read: true}
				}
				return fn(name, raw, t)
			case tipSuffix:
				tip, tipName = scannedTip{value: raw, read: true, found: true}, name
				return true
			}
			if name != runName {
				runName, run = name, 0
			}
			if run++; run > maxInlineVersions { // many versions: jump to just before the head
				resume = prefix + name + beforeHead
				return false
			}
			return true
		})
		if err != nil || resume == "" {
			return err
		}
		from = resume
	}
}

// scanVersions calls fn with name's version records whose version sorts after after ("" =
// from the start), in version order, until fn returns false.
func (s *Service) scanVersions(ctx context.Context, v *Vault, name, after string, fn func(version string, key string, raw []byte) bool) error {
	prefix := versionPrefix(v, name)
	return s.st.Scan(ctx, prefix, prefixed(prefix, after), func(key string, raw []byte) bool {
		ver := key[len(prefix):]
		if ver == tipSuffix || v.Layout == LayoutColocated && ver == headSuffix[len(versionSep):] {
			return false // the tip (and, co-located, the head) follows the last version
		}
		return fn(ver, key, raw)
	})
}

func vaultKeyID(v *Vault) string { return "vault/" + v.ID }

func prefixed(prefix, skip string) string {
	if skip == "" {
		return ""
	}
	return prefix + skip
}

// IsNotFound reports whether err is a not-found domain error.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
