package cli

import (
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/spf13/pflag"
)

// The types below give secrets az's output shape: camelCase keys, ISO-8601 times with a
// "+00:00" offset (Python's isoformat) and explicit nulls for absent fields.

type secretAttributesOut struct {
	Created         *string `json:"created"`
	Enabled         *bool   `json:"enabled"`
	Expires         *string `json:"expires"`
	NotBefore       *string `json:"notBefore"`
	RecoverableDays *int32  `json:"recoverableDays"`
	RecoveryLevel   *string `json:"recoveryLevel"`
	Updated         *string `json:"updated"`
}

// secretItemOut is an entry of `secret list` / `list-versions`: no value, no kid.
type secretItemOut struct {
	Attributes  *secretAttributesOut `json:"attributes"`
	ContentType *string              `json:"contentType"`
	ID          *string              `json:"id"`
	Managed     *bool                `json:"managed"`
	Name        *string              `json:"name"`
	Tags        map[string]*string   `json:"tags"`
}

// secretOut is a whole secret (`secret show`, `set`, `set-attributes`, `recover`, `restore`).
type secretOut struct {
	secretItemOut
	KID   *string `json:"kid"`
	Value *string `json:"value"`
}

type deletedInfoOut struct {
	DeletedDate        *string `json:"deletedDate"`
	RecoveryID         *string `json:"recoveryId"`
	ScheduledPurgeDate *string `json:"scheduledPurgeDate"`
}

// deletedSecretOut is `secret delete` and `show-deleted`.
type deletedSecretOut struct {
	secretOut
	deletedInfoOut
}

// deletedSecretItemOut is an entry of `secret list-deleted`.
type deletedSecretItemOut struct {
	secretItemOut
	deletedInfoOut
}

// isoTime formats t as Python's datetime.isoformat() does for an aware UTC time.
func isoTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	layout := "2006-01-02T15:04:05+00:00"
	if t.Nanosecond() != 0 {
		layout = "2006-01-02T15:04:05.000000+00:00"
	}
	s := t.UTC().Format(layout)
	return &s
}

func attributesOut(a *azsecrets.SecretAttributes) *secretAttributesOut {
	if a == nil {
		return nil
	}
	return &secretAttributesOut{
		Created:         isoTime(a.Created),
		Enabled:         a.Enabled,
		Expires:         isoTime(a.Expires),
		NotBefore:       isoTime(a.NotBefore),
		RecoverableDays: a.RecoverableDays,
		RecoveryLevel:   a.RecoveryLevel,
		Updated:         isoTime(a.Updated),
	}
}

func idString(id *azsecrets.ID) *string {
	if id == nil {
		return nil
	}
	s := string(*id)
	return &s
}

func idName(id *azsecrets.ID) *string {
	if id == nil {
		return nil
	}
	n := id.Name()
	return &n
}

func newSecretOut(s azsecrets.Secret) secretOut {
	return secretOut{
		secretItemOut: secretItemOut{
			Attributes:  attributesOut(s.Attributes),
			ContentType: s.ContentType,
			ID:          idString(s.ID),
			Managed:     s.Managed,
			Name:        idName(s.ID),
			Tags:        s.Tags,
		},
		KID:   idString(s.KID),
		Value: s.Value,
	}
}

func newSecretItemOut(p *azsecrets.SecretProperties) secretItemOut {
	return secretItemOut{
		Attributes:  attributesOut(p.Attributes),
		ContentType: p.ContentType,
		ID:          idString(p.ID),
		Managed:     p.Managed,
		Name:        idName(p.ID),
		Tags:        p.Tags,
	}
}

func newDeletedSecretOut(d azsecrets.DeletedSecret) deletedSecretOut {
	return deletedSecretOut{
		secretOut: newSecretOut(azsecrets.Secret{
			Attributes: d.Attributes, ContentType: d.ContentType, ID: d.ID, KID: d.KID,
			Managed: d.Managed, Tags: d.Tags, Value: d.Value,
		}),
		deletedInfoOut: deletedInfoOut{
			DeletedDate:        isoTime(d.DeletedDate),
			RecoveryID:         d.RecoveryID,
			ScheduledPurgeDate: isoTime(d.ScheduledPurgeDate),
		},
	}
}

func newDeletedSecretItemOut(d *azsecrets.DeletedSecretProperties) deletedSecretItemOut {
	return deletedSecretItemOut{
		secretItemOut: newSecretItemOut(&azsecrets.SecretProperties{
			Attributes: d.Attributes, ContentType: d.ContentType, ID: d.ID, Managed: d.Managed, Tags: d.Tags,
		}),
		deletedInfoOut: deletedInfoOut{
			DeletedDate:        isoTime(d.DeletedDate),
			RecoveryID:         d.RecoveryID,
			ScheduledPurgeDate: isoTime(d.ScheduledPurgeDate),
		},
	}
}

// secretTarget names a secret by --vault-name/--name[/--version] or by --id, as az allows.
type secretTarget struct {
	vaultName, name, version, id string
	withName                     bool
}

// register adds the flags. withName is false for vault-wide commands (list, restore);
// withVersion adds --version.
func (t *secretTarget) register(f *pflag.FlagSet, withName, withVersion bool, idHelp string) {
	t.withName = withName
	f.StringVar(&t.vaultName, "vault-name", "", "name of the key vault")
	if withName {
		f.StringVarP(&t.name, "name", "n", "", "name of the secret")
	}
	if withVersion {
		f.StringVarP(&t.version, "version", "v", "", "secret version (default: the latest)")
	}
	f.StringVar(&t.id, "id", "", idHelp)
}

// resolved is a secret's location on the data plane.
type resolved struct {
	vaultURL, name, version string
}

// resolve turns the flags into a vault URL, name and version.
func (t *secretTarget) resolve(s *session) (resolved, error) {
	if t.id != "" {
		if t.vaultName != "" || t.name != "" || t.version != "" {
			return resolved{}, usageErrorf("use either --id or --vault-name/--name/--version, not both")
		}
		return parseSecretID(t.id, t.withName)
	}
	var missing []string
	if t.vaultName == "" {
		missing = append(missing, "--vault-name")
	}
	if t.withName && t.name == "" {
		missing = append(missing, "--name")
	}
	if len(missing) > 0 {
		return resolved{}, usageErrorf("the following arguments are required: %s (or --id)", strings.Join(missing, ", "))
	}
	return resolved{vaultURL: s.vaultURL(t.vaultName), name: t.name, version: t.version}, nil
}

// parseSecretID splits a secret id (https://v.host/secrets/name[/version]), a recovery id
// (https://v.host/deletedsecrets/name) or, when needName is false, a vault URL.
func parseSecretID(id string, needName bool) (resolved, error) {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return resolved{}, usageErrorf("invalid --id value %q: expected https://{vault}.{dns-suffix}/secrets/{name}[/{version}]", id)
	}
	r := resolved{vaultURL: u.Scheme + "://" + u.Host + "/"}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if !needName {
		return r, nil
	}
	if len(segs) < 2 || len(segs) > 3 || (segs[0] != "secrets" && segs[0] != "deletedsecrets") || segs[1] == "" {
		return resolved{}, usageErrorf("invalid --id value %q: expected https://{vault}.{dns-suffix}/secrets/{name}[/{version}]", id)
	}
	r.name = segs[1]
	if len(segs) == 3 {
		r.version = segs[2]
	}
	return r, nil
}

// secretProps are the settable attributes shared by `secret set` and `set-attributes`.
type secretProps struct {
	contentType, expires, notBefore string
	tags                            []string
}

func (p *secretProps) register(f *pflag.FlagSet) {
	f.StringVar(&p.contentType, "content-type", "", "type of the secret value, such as a MIME type")
	f.StringVar(&p.expires, "expires", "", "expiration UTC datetime (Y-m-d'T'H:M:S'Z')")
	f.StringVar(&p.notBefore, "not-before", "", "key not usable before the provided UTC datetime (Y-m-d'T'H:M:S'Z')")
	f.StringArrayVar(&p.tags, "tags", nil, "space-separated tags: key[=value] [key[=value] ...]")
}

// attributes returns the given dates as SDK attributes.
func (p *secretProps) attributes() (*azsecrets.SecretAttributes, error) {
	attrs := &azsecrets.SecretAttributes{}
	if p.expires != "" {
		t, err := parseDate("--expires", p.expires)
		if err != nil {
			return nil, err
		}
		attrs.Expires = &t
	}
	if p.notBefore != "" {
		t, err := parseDate("--not-before", p.notBefore)
		if err != nil {
			return nil, err
		}
		attrs.NotBefore = &t
	}
	return attrs, nil
}

// checkNoVersion rejects a version on commands that act on the whole secret.
func checkNoVersion(r resolved, what string) error {
	if r.version != "" {
		return usageErrorf("%s applies to all versions of a secret: give an id without a version", what)
	}
	return nil
}

// limit truncates a list to --maxresults when it is positive.
func limit[T any](items []T, n int) []T {
	if n > 0 && len(items) > n {
		return items[:n]
	}
	return items
}
