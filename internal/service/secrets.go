package service

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/store"
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

// validSecretName reports whether name matches Key Vault's ^[0-9A-Za-z-]{1,127}$ (checked on
// every request, so without a regexp).
func validSecretName(name string) bool {
	if len(name) == 0 || len(name) > 127 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// validVersion reports whether version matches ^[0-9a-fA-F]{32}$.
func validVersion(version string) bool {
	if len(version) != 32 {
		return false
	}
	for i := 0; i < len(version); i++ {
		c := version[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

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

// scanHeads calls fn with every secret head of v whose (upper-cased) name sorts after after
// ("" = from the start), in name order, until fn returns false. Under the co-located layout it
// seeks past each name's versions instead of reading them.
func (s *Service) scanHeads(ctx context.Context, v *Vault, after string, fn func(name string, raw []byte) bool) error {
	prefix := headsPrefix(v)
	if v.Layout != LayoutColocated {
		return s.st.Scan(ctx, prefix, prefixed(prefix, after), func(key string, raw []byte) bool {
			return fn(key[len(prefix):], raw)
		})
	}
	from := ""
	if after != "" {
		from = prefix + after + headSuffix
	}
	for {
		resume := ""
		err := s.st.Scan(ctx, prefix, from, func(key string, raw []byte) bool {
			rest := key[len(prefix):]
			if name, ok := strings.CutSuffix(rest, headSuffix); ok {
				return fn(name, raw)
			}
			// A version: jump to just before this name's head.
			name, _, _ := strings.Cut(rest, versionSep)
			resume = prefix + name + beforeHead
			return false
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

func secretNotFound(name string) *Error {
	return newErr(ErrNotFound, "SecretNotFound", "", "A secret with (name/id) %s%s", name, secretNotFoundHint)
}

func badParameter(format string, args ...any) *Error {
	return newErr(ErrBadRequest, "BadParameter", "", format, args...)
}

// secretOp authorizes a data-plane action on a secret of the vault and returns the vault.
func (s *Service) secretOp(ctx context.Context, vault VaultRef, action, name string) (*Vault, error) {
	v, err := vault.v, vault.err
	if err != nil {
		return nil, err
	}
	scope := s.ResourceID(v) + "/secrets"
	if name != "" {
		scope += "/" + name
	}
	if err := s.guard(ctx, secretActionPrefix+action, true, scope); err != nil {
		return nil, err
	}
	if name != "" && !validSecretName(name) {
		return nil, badParameter("The request URI contains an invalid name: %s", name)
	}
	return v, nil
}

func (s *Service) secret(v *Vault, name string, sv SecretVersion, withValue bool, del *Deletion) Secret {
	if !withValue {
		sv.Value = ""
	}
	return Secret{Name: name, SecretVersion: sv, HasValue: withValue, RecoveryLevel: v.RecoveryLevel(), RecoverableDays: v.RetentionDays(), Deleted: del}
}

func headGuard(key string, raw []byte, found bool) store.Op {
	if found {
		return store.RequireEqual(key, raw)
	}
	return store.RequireAbsent(key)
}

func validateInput(in SecretInput) error {
	if in.Value == nil {
		return badParameter("The parameter 'value' is required.")
	}
	if len(*in.Value) > MaxValueBytes {
		return badParameter("The secret value exceeds the maximum size of %d bytes.", MaxValueBytes)
	}
	if in.ContentType != nil && len(*in.ContentType) > MaxContentTypeLen {
		return badParameter("The content type exceeds the maximum length of %d characters.", MaxContentTypeLen)
	}
	return validateTags(in.Tags)
}

func validateTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return badParameter("A secret may have at most %d tags; %d were given.", MaxTags, len(tags))
	}
	for k, v := range tags {
		if k == "" || len(k) > MaxTagNameLen {
			return badParameter("Tag names must be 1-%d characters.", MaxTagNameLen)
		}
		if len(v) > MaxTagValueLen {
			return badParameter("The value of tag %q exceeds %d characters.", k, MaxTagValueLen)
		}
	}
	return nil
}

// SetSecret stores a new version of name and makes it the latest.
func (r VaultRef) SetSecret(ctx context.Context, name string, in SecretInput) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "setSecret/action", name)
	if err != nil {
		return Secret{}, err
	}
	if err := validateInput(in); err != nil {
		return Secret{}, err
	}
	var out Secret
	err = retry(func() error {
		h, raw, found, err := s.head(ctx, v, name)
		if err != nil {
			return err
		}
		if found && h.Deleted != nil {
			return newErr(ErrConflict, "Conflict", "ObjectIsDeletedButRecoverable", "Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", name)
		}
		now := s.now().Unix()
		sv := SecretVersion{Version: newVersion(s.now()), Value: *in.Value, Tags: in.Tags, Enabled: true,
			NotBefore: in.NotBefore, Expires: in.Expires, Created: now, Updated: now}
		if in.ContentType != nil {
			sv.ContentType = *in.ContentType
		}
		if in.Enabled != nil {
			sv.Enabled = *in.Enabled
		}
		keep := name
		nh := secretHead{Name: keep}
		if found {
			keep = h.Name // the first spelling of a name is kept, as in Key Vault
			nh = secretHead{Name: keep, Seq: h.Seq, Origin: h.Origin, PinFloor: h.PinFloor, Pins: h.Pins}
			if h.Item.seq != h.Item.born { // the outgoing latest was updated: pin its record
				if err := nh.setPin(h.Latest, h.Item.seq); err != nil {
					return err
				}
			}
		}
		nh.advance(s.now(), found)
		sv.seq, sv.born = nh.Seq, nh.Seq
		nh.withLatest(sv)
		ops, err := s.sealOps(ctx, v, []sealed{{versionKey(v, name, sv.Version), sv}, {headKey(v, name), nh}})
		if err != nil {
			return err
		}
		ops = append([]store.Op{headGuard(headKey(v, name), raw, found)}, append(ops, nh.tipOp(v, name))...)
		if err := s.apply(ctx, ops); err != nil {
			return err
		}
		out = s.secret(v, keep, sv, true, nil)
		return nil
	})
	return out, err
}

type sealed struct {
	key string
	v   any
}

func (s *Service) sealOps(ctx context.Context, v *Vault, recs []sealed) ([]store.Op, error) {
	ops := make([]store.Op, 0, len(recs))
	for _, r := range recs {
		b, err := s.seal(ctx, vaultKeyID(v), r.key, r.v)
		if err != nil {
			return nil, err
		}
		ops = append(ops, store.Put(r.key, b))
	}
	return ops, nil
}

// liveHead returns the head of a live (not deleted) secret or SecretNotFound.
func (s *Service) liveHead(ctx context.Context, v *Vault, name, shown string) (secretHead, []byte, error) {
	h, raw, found, err := s.head(ctx, v, name)
	if err != nil {
		return h, nil, err
	}
	if !found || h.Deleted != nil {
		return h, nil, secretNotFound(shown)
	}
	return h, raw, nil
}

// version reads a version record and checks it against h, the head read (as hraw) before it.
func (s *Service) version(ctx context.Context, v *Vault, name, version, shown string, h *secretHead, hraw []byte) (SecretVersion, []byte, error) {
	var sv SecretVersion
	if !validVersion(version) {
		return sv, nil, secretNotFound(shown)
	}
	raw, found, err := s.get(ctx, vaultKeyID(v), versionKey(v, name, version), &sv)
	if err != nil {
		return sv, nil, err
	}
	if !found {
		return sv, nil, secretNotFound(shown)
	}
	if problem := h.versionProblem(&sv); problem != "" {
		return SecretVersion{}, nil, s.rolledBack(ctx, v, name, hraw, problem)
	}
	return sv, raw, nil
}

// GetSecret returns a version (the latest when version is "") with its value.
func (r VaultRef) GetSecret(ctx context.Context, name, version string) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "getSecret/action", name)
	if err != nil {
		return Secret{}, err
	}
	shown := name
	if version != "" {
		shown = name + "/" + version
	}
	var h secretHead
	var sv SecretVersion
	err = retry(func() error {
		h0, hraw, err := s.liveHead(ctx, v, name, shown)
		if err != nil {
			return err
		}
		h = h0
		if (version == "" || strings.EqualFold(version, h.Latest)) && h.LatestValue != nil {
			sv = h.Item
			sv.Value = *h.LatestValue
			return nil
		}
		ver := version
		if ver == "" {
			ver = h.Latest
		}
		sv, _, err = s.version(ctx, v, name, ver, shown, &h, hraw)
		return err
	})
	if err != nil {
		return Secret{}, err
	}
	if !sv.Enabled {
		return Secret{}, newErr(ErrForbidden, "Forbidden", "SecretDisabled", "Operation get is not allowed on a disabled secret.")
	}
	return s.secret(v, h.Name, sv, true, nil), nil
}

// UpdateSecret changes the attributes, tags or content type of a version (latest when "").
func (r VaultRef) UpdateSecret(ctx context.Context, name, version string, up SecretUpdate) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "update/action", name)
	if err != nil {
		return Secret{}, err
	}
	if up.ContentType != nil && len(*up.ContentType) > MaxContentTypeLen {
		return Secret{}, badParameter("The content type exceeds the maximum length of %d characters.", MaxContentTypeLen)
	}
	if up.Tags != nil {
		if err := validateTags(*up.Tags); err != nil {
			return Secret{}, err
		}
	}
	var out Secret
	err = retry(func() error {
		shown := name
		if version != "" {
			shown = name + "/" + version
		}
		h, hraw, err := s.liveHead(ctx, v, name, shown)
		if err != nil {
			return err
		}
		ver := version
		if ver == "" {
			ver = h.Latest
		}
		sv, vraw, err := s.version(ctx, v, name, ver, shown, &h, hraw)
		if err != nil {
			return err
		}
		if up.ContentType != nil {
			sv.ContentType = *up.ContentType
		}
		if up.Tags != nil {
			sv.Tags = *up.Tags
		}
		if up.Enabled != nil {
			sv.Enabled = *up.Enabled
		}
		if up.NotBefore != nil {
			sv.NotBefore = up.NotBefore
		}
		if up.Expires != nil {
			sv.Expires = up.Expires
		}
		sv.Updated = s.now().Unix()
		vk, hk := versionKey(v, name, ver), headKey(v, name)
		// The head is written too, so its counter and tip move with every version write and
		// it knows the exact record of each updated version (integrity.go).
		h.advance(s.now(), true)
		sv.seq = h.Seq
		if strings.EqualFold(ver, h.Latest) {
			h.withLatest(sv)
		} else if err := h.setPin(ver, h.Seq); err != nil {
			return err
		}
		ops, err := s.sealOps(ctx, v, []sealed{{vk, sv}, {hk, h}})
		if err != nil {
			return err
		}
		ops = append([]store.Op{store.RequireEqual(hk, hraw), store.RequireEqual(vk, vraw)}, append(ops, h.tipOp(v, name))...)
		if err := s.apply(ctx, ops); err != nil {
			return err
		}
		out = s.secret(v, h.Name, sv, false, nil)
		return nil
	})
	return out, err
}

// DeleteSecret soft-deletes every version of name (purges at once when soft delete is off).
func (r VaultRef) DeleteSecret(ctx context.Context, name string) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "delete", name)
	if err != nil {
		return Secret{}, err
	}
	var out Secret
	err = retry(func() error {
		h, raw, err := s.liveHead(ctx, v, name, name)
		if err != nil {
			return err
		}
		if !v.SoftDeleteOn() {
			out = s.secret(v, h.Name, h.Item, false, nil)
			return s.destroySecret(ctx, v, name, raw) // erased as a purge is (destroy.go)
		}
		hk := headKey(v, name)
		now := s.now()
		h.Deleted = &Deletion{DeletedDate: now.Unix(), ScheduledPurgeDate: now.Add(time.Duration(v.RetentionDays()) * 24 * time.Hour).Unix()}
		h.advance(now, true)
		ops, err := s.sealOps(ctx, v, []sealed{{hk, h}})
		if err != nil {
			return err
		}
		ops = append(ops, h.tipOp(v, name))
		if err := s.apply(ctx, append([]store.Op{store.RequireEqual(hk, raw)}, ops...)); err != nil {
			return err
		}
		out = s.secret(v, h.Name, h.Item, false, h.Deleted)
		return nil
	})
	return out, err
}

// deletedHead returns the head of a soft-deleted secret or the "Deleted Secret not found" error.
func (s *Service) deletedHead(ctx context.Context, v *Vault, name string) (secretHead, []byte, error) {
	h, raw, found, err := s.head(ctx, v, name)
	if err != nil {
		return h, nil, err
	}
	if !found || h.Deleted == nil {
		return h, nil, newErr(ErrNotFound, "SecretNotFound", "", "%s%s", deletedSecretPrefix, name)
	}
	return h, raw, nil
}

// GetDeletedSecret returns a soft-deleted secret's latest version, without its value.
func (r VaultRef) GetDeletedSecret(ctx context.Context, name string) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "readMetadata/action", name)
	if err != nil {
		return Secret{}, err
	}
	h, _, err := s.deletedHead(ctx, v, name)
	if err != nil {
		return Secret{}, err
	}
	return s.secret(v, h.Name, h.Item, false, h.Deleted), nil
}

// RecoverDeletedSecret undeletes a soft-deleted secret.
func (r VaultRef) RecoverDeletedSecret(ctx context.Context, name string) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "recover/action", name)
	if err != nil {
		return Secret{}, err
	}
	var out Secret
	err = retry(func() error {
		h, raw, err := s.deletedHead(ctx, v, name)
		if err != nil {
			return err
		}
		h.Deleted = nil
		h.advance(s.now(), true)
		hk := headKey(v, name)
		ops, err := s.sealOps(ctx, v, []sealed{{hk, h}})
		if err != nil {
			return err
		}
		ops = append(ops, h.tipOp(v, name))
		if err := s.apply(ctx, append([]store.Op{store.RequireEqual(hk, raw)}, ops...)); err != nil {
			return err
		}
		out = s.secret(v, h.Name, h.Item, false, nil)
		return nil
	})
	return out, err
}

// PurgeDeletedSecret destroys a soft-deleted secret now, unless the vault forbids it.
func (r VaultRef) PurgeDeletedSecret(ctx context.Context, name string) error {
	s := r.svc
	v, err := s.secretOp(ctx, r, "purge/action", name)
	if err != nil {
		return err
	}
	if v.PurgeProtected() {
		return newErr(ErrForbidden, "Forbidden", "", "Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed. Vault: %s;location=%s", v.Name, v.Location)
	}
	return retry(func() error {
		_, raw, err := s.deletedHead(ctx, v, name)
		if err != nil {
			return err
		}
		return s.destroySecret(ctx, v, name, raw)
	})
}

// ListSecrets lists live secrets (latest version metadata, no values).
func (r VaultRef) ListSecrets(ctx context.Context, max int, skip string) (Page, error) {
	return r.svc.listHeads(ctx, r, max, skip, false)
}

// ListDeletedSecrets lists soft-deleted secrets.
func (r VaultRef) ListDeletedSecrets(ctx context.Context, max int, skip string) (Page, error) {
	return r.svc.listHeads(ctx, r, max, skip, true)
}

func (s *Service) listHeads(ctx context.Context, vault VaultRef, max int, skip string, deleted bool) (Page, error) {
	v, err := s.secretOp(ctx, vault, "readMetadata/action", "")
	if err != nil {
		return Page{}, err
	}
	if max < 1 || max > MaxPageSize {
		return Page{}, badParameter("The value of maxresults must be between 1 and %d.", MaxPageSize)
	}
	var page Page
	var openErr error
	err = s.scanHeads(ctx, v, skip, func(name string, raw []byte) bool {
		var h secretHead
		if openErr = s.open(ctx, vaultKeyID(v), headKey(v, name), raw, &h); openErr != nil {
			return false
		}
		var found bool
		if h, _, found, openErr = s.scannedHead(ctx, v, name, h, raw); openErr != nil {
			return false
		}
		if !found || (h.Deleted != nil) != deleted {
			return true
		}
		if len(page.Items) == max {
			page.Next = page.Items[len(page.Items)-1].cursor
			return false
		}
		it := s.secret(v, h.Name, h.Item, false, h.Deleted)
		it.cursor = name
		page.Items = append(page.Items, it)
		return true
	})
	if err == nil {
		err = openErr
	}
	return page, err
}

func prefixed(prefix, skip string) string {
	if skip == "" {
		return ""
	}
	return prefix + skip
}

// ListSecretVersions lists every version of a live secret (metadata, no values).
func (r VaultRef) ListSecretVersions(ctx context.Context, name string, max int, skip string) (Page, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "readMetadata/action", name)
	if err != nil {
		return Page{}, err
	}
	if max < 1 || max > MaxPageSize {
		return Page{}, badParameter("The value of maxresults must be between 1 and %d.", MaxPageSize)
	}
	var page Page
	err = retry(func() error {
		h, hraw, err := s.liveHead(ctx, v, name, name)
		if err != nil {
			return err
		}
		page = Page{}
		return s.eachVersion(ctx, v, name, skip, &h, hraw, func(ver string, sv SecretVersion) bool {
			if len(page.Items) == max {
				page.Next = page.Items[len(page.Items)-1].cursor
				return false
			}
			it := s.secret(v, h.Name, sv, false, nil)
			it.cursor = ver
			page.Items = append(page.Items, it)
			return true
		})
	})
	return page, err
}

// eachVersion opens name's versions after after in order, checks each against h (read as
// hraw) and calls fn with it until fn returns false.
func (s *Service) eachVersion(ctx context.Context, v *Vault, name, after string, h *secretHead, hraw []byte, fn func(ver string, sv SecretVersion) bool) error {
	var openErr error
	err := s.scanVersions(ctx, v, name, after, func(ver, key string, raw []byte) bool {
		var sv SecretVersion
		if openErr = s.open(ctx, vaultKeyID(v), key, raw, &sv); openErr != nil {
			return false
		}
		if problem := h.versionProblem(&sv); problem != "" {
			openErr = s.rolledBack(ctx, v, name, hraw, problem)
			return false
		}
		return fn(ver, sv)
	})
	if err == nil {
		err = openErr
	}
	return err
}

// IsNotFound reports whether err is a not-found domain error.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
