package identity

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// The directory: applications, service principals, users, groups, group memberships and
// directory role assignments, in Microsoft Graph v1.0 terms. Records are sealed like every
// other record of this package (see the package documentation for their keys); the in-memory
// copy every node keeps current through KeysApplied is in dirstate.go.

// Directory object types, as Entra spells them in principalType.
const (
	TypeUser  = "User"
	TypeGroup = "Group"
)

// Storage keys of the directory (the package documentation lists them all).
const (
	prefixApplication = "id/application/"
	prefixUser        = "id/user/"
	prefixUPN         = "id/upn/"
	prefixGroup       = "id/group/"
	prefixMember      = "id/member/"
	prefixDirRole     = "id/dirrole/"
)

// Bounds on directory input.
const (
	maxUPNLen          = 113 // Entra: 64 characters before "@", 48 after
	maxMailNicknameLen = 64
	minPasswordLen     = 8
	maxPasswordLen     = 256
	maxDescriptionLen  = 1024
	// defaultSecretLifetime is Graph's default passwordCredential lifetime (two years).
	defaultSecretLifetime = 2 * 365 * 24 * time.Hour
	maxSecretLifetime     = 100 * 365 * 24 * time.Hour
)

// Directory errors. Callers test them with errors.Is; an *InputError says what was wrong.
var (
	// ErrObjectNotFound means no directory object has that id (or appId, or UPN).
	ErrObjectNotFound = errors.New("directory object not found")
	// ErrInvalidInput means a request's values are malformed; the error is an *InputError.
	ErrInvalidInput = errors.New("invalid directory input")
	// ErrObjectConflict means the write would duplicate a unique value (a UPN, a membership, a
	// service principal for an app); the error is an *InputError naming it.
	ErrObjectConflict = errors.New("directory object conflict")
	// ErrDirectoryForbidden means the caller holds no directory role that allows the write.
	ErrDirectoryForbidden = errors.New("insufficient privileges to complete the operation")
	// ErrUnknownUser means no user has that user principal name (password sign-in).
	ErrUnknownUser = errors.New("unknown user")
	// ErrInvalidGrant means a user's name or password did not check out.
	ErrInvalidGrant = errors.New("invalid username or password")
	// ErrUnknownResource means a token request named a resource this server does not serve.
	ErrUnknownResource = errors.New("unknown resource")
)

// InputError is a malformed or conflicting directory request; Msg is fit for the caller (it
// names properties and ids, never secrets).
type InputError struct {
	Kind error // ErrInvalidInput or ErrObjectConflict
	Msg  string
}

func (e *InputError) Error() string        { return e.Msg }
func (e *InputError) Is(target error) bool { return target == e.Kind }

func badInput(format string, args ...any) error {
	return &InputError{Kind: ErrInvalidInput, Msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &InputError{Kind: ErrObjectConflict, Msg: fmt.Sprintf(format, args...)}
}

// applicationRecord is an application object (Graph's application): its own object id, the
// appId its service principal shares, and the client secrets (Graph's passwordCredentials).
type applicationRecord struct {
	V           int            `json:"v"`
	ID          string         `json:"id"`
	AppID       string         `json:"appId"`
	DisplayName string         `json:"displayName"`
	CreatedAt   time.Time      `json:"createdAt"`
	Secrets     []secretRecord `json:"secrets,omitempty"`
}

// userRecord is a user; the password is an argon2id hash like a client secret's.
type userRecord struct {
	V            int    `json:"v"`
	ObjectID     string `json:"objectId"`
	UPN          string `json:"userPrincipalName"`
	DisplayName  string `json:"displayName"`
	MailNickname string `json:"mailNickname,omitempty"`
	Disabled     bool   `json:"disabled,omitempty"`
	Generation   uint64 `json:"gen,omitempty"`
	// SessionEpoch moves on with every revokeSignInSessions: refresh token families issued
	// under an older epoch are refused (refresh.go).
	SessionEpoch uint64       `json:"sessionEpoch,omitempty"`
	Password     secretRecord `json:"password"`
	CreatedAt    time.Time    `json:"createdAt"`
}

// upnIndexRecord maps a lower-cased user principal name to the user's object id.
type upnIndexRecord struct {
	V        int    `json:"v"`
	ObjectID string `json:"objectId"`
}

type groupRecord struct {
	V               int       `json:"v"`
	ID              string    `json:"id"`
	DisplayName     string    `json:"displayName"`
	MailNickname    string    `json:"mailNickname"`
	SecurityEnabled bool      `json:"securityEnabled"`
	Description     string    `json:"description,omitempty"`
	CreatedAt       time.Time `json:"createdAt"`
}

// memberRecord is one direct membership, stored at id/member/<groupId>/<memberId>.
type memberRecord struct {
	V        int    `json:"v"`
	MemberID string `json:"memberId"`
	Type     string `json:"type"`
}

// dirRoleRecord is one directory role assignment (Graph's unifiedRoleAssignment).
type dirRoleRecord struct {
	V                int       `json:"v"`
	ID               string    `json:"id"`
	PrincipalID      string    `json:"principalId"`
	RoleDefinitionID string    `json:"roleDefinitionId"`
	DirectoryScopeID string    `json:"directoryScopeId"`
	CreatedAt        time.Time `json:"createdAt"`
}

func (r *applicationRecord) version() int { return r.V }
func (r *userRecord) version() int        { return r.V }
func (r *upnIndexRecord) version() int    { return r.V }
func (r *groupRecord) version() int       { return r.V }
func (r *memberRecord) version() int      { return r.V }
func (r *dirRoleRecord) version() int     { return r.V }

// PasswordCredential is a client secret as Graph describes it; SecretText is set only in the
// answer to the call that created it.
type PasswordCredential struct {
	KeyID         string    `json:"keyId"`
	DisplayName   string    `json:"displayName"`
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
	Hint          string    `json:"hint"`
	SecretText    string    `json:"secretText,omitempty"`
}

// Application is an application object.
type Application struct {
	ID                  string
	AppID               string
	DisplayName         string
	CreatedAt           time.Time
	PasswordCredentials []PasswordCredential
}

// ServicePrincipal is a service principal object.
type ServicePrincipal struct {
	ID             string
	AppID          string
	DisplayName    string
	AccountEnabled bool
	// ApplicationID is the object id of its application, "" for principals made before the
	// directory had application objects (the bootstrap admin, /sys/principals).
	ApplicationID string
	CreatedAt     time.Time
}

// User is a user object.
type User struct {
	ID                string
	UserPrincipalName string
	DisplayName       string
	MailNickname      string
	AccountEnabled    bool
	CreatedAt         time.Time
}

// Group is a group object.
type Group struct {
	ID              string
	DisplayName     string
	MailNickname    string
	SecurityEnabled bool
	Description     string
	CreatedAt       time.Time
}

// DirectoryObject is a member of a group: its id, type and display name.
type DirectoryObject struct {
	ID          string
	Type        string // TypeUser, TypeGroup or TypeServicePrincipal
	DisplayName string
	AppID       string // service principals only
	UPN         string // users only
}

func (r *applicationRecord) application() Application {
	a := Application{ID: r.ID, AppID: r.AppID, DisplayName: r.DisplayName, CreatedAt: r.CreatedAt,
		PasswordCredentials: make([]PasswordCredential, len(r.Secrets))}
	for i, c := range r.Secrets {
		a.PasswordCredentials[i] = c.credential()
	}
	return a
}

func (c *secretRecord) credential() PasswordCredential {
	end := c.EndsAt
	if end.IsZero() {
		end = c.CreatedAt.Add(maxSecretLifetime)
	}
	return PasswordCredential{KeyID: c.ID, DisplayName: c.DisplayName, StartDateTime: c.CreatedAt, EndDateTime: end, Hint: c.Hint}
}

func (r *userRecord) user() User {
	return User{ID: r.ObjectID, UserPrincipalName: r.UPN, DisplayName: r.DisplayName, MailNickname: r.MailNickname,
		AccountEnabled: !r.Disabled, CreatedAt: r.CreatedAt}
}

func (r *groupRecord) group() Group {
	return Group{ID: r.ID, DisplayName: r.DisplayName, MailNickname: r.MailNickname, SecurityEnabled: r.SecurityEnabled,
		Description: r.Description, CreatedAt: r.CreatedAt}
}

// validateUPN checks a user principal name: local@domain, bounded, no spaces, control
// characters or "/" (it becomes part of a storage key). It returns the lower-cased index form.
func validateUPN(upn string) (string, error) {
	local, domain, ok := strings.Cut(upn, "@")
	switch {
	case upn == "":
		return "", badInput("Invalid value specified for property 'userPrincipalName' of resource 'User': it is required.")
	case len(upn) > maxUPNLen || !ok || local == "" || domain == "" || strings.Contains(domain, "@") ||
		!strings.Contains(domain, ".") || strings.ContainsAny(upn, "/\\ \"<>()[]:;,") ||
		strings.IndexFunc(upn, unicode.IsControl) >= 0 || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, "."):
		return "", badInput("Invalid value specified for property 'userPrincipalName' of resource 'User'.")
	}
	return strings.ToLower(upn), nil
}

func validateMailNickname(n, resource string) error {
	if n == "" {
		return badInput("Invalid value specified for property 'mailNickname' of resource '%s': it is required.", resource)
	}
	if len(n) > maxMailNicknameLen || strings.ContainsAny(n, "@()\\[]\";:<>, /") || strings.IndexFunc(n, func(r rune) bool { return r > 127 || unicode.IsControl(r) }) >= 0 {
		return badInput("Invalid value specified for property 'mailNickname' of resource '%s'.", resource)
	}
	return nil
}

func validateDirName(name, resource string) error {
	if err := validateDisplayName(name); err != nil {
		if strings.TrimSpace(name) == "" {
			return badInput("Invalid value specified for property 'displayName' of resource '%s': it is required.", resource)
		}
		return badInput("Invalid value specified for property 'displayName' of resource '%s'.", resource)
	}
	return nil
}

func validatePassword(pw string) error {
	n := len([]rune(pw))
	if n < minPasswordLen || len(pw) > maxPasswordLen {
		return badInput("The specified password does not comply with password complexity requirements. Please provide a different password (%d to %d characters).", minPasswordLen, maxPasswordLen)
	}
	classes := 0
	for _, f := range []func(rune) bool{unicode.IsUpper, unicode.IsLower, unicode.IsDigit, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}} {
		if strings.IndexFunc(pw, f) >= 0 {
			classes++
		}
	}
	if classes < 3 {
		return badInput("The specified password does not comply with password complexity requirements. Please provide a different password (three of: upper case, lower case, digits, symbols).")
	}
	return nil
}

// objectID screens a directory object id from a request: a GUID, in canonical form.
func objectID(id string) (string, bool) {
	n, ok := normalizeID(id)
	if !ok || len(n) != 36 || strings.ToLower(id) != n {
		return "", false
	}
	return n, true
}
