// Request checks shared by the secret operations: authorization, name and version syntax,
// and the Key Vault limits on values and tags.

package service

import (
	"context"
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

func secretNotFound(name string) *Error {
	return newErr(ErrNotFound, "SecretNotFound", "", "A secret with (name/id) %s%s", name, secretNotFoundHint)
}

func badParameter(format string, args ...any) *Error {
	return newErr(ErrBadRequest, "BadParameter", "", format, args...)
}

// secretOp authorizes a data-plane action on a secret of the vault and returns the vault.
func (s *Service) secretOp(ctx context.Context, vault VaultRef, action, name string) (*Vault, error) {
	return s.secretOpAs(ctx, vault, action, "", name)
}

// secretOpAs is secretOp for an operation whose access-policy permission is not the one its
// data action maps to (policyPerm; "" for the mapped one).
func (s *Service) secretOpAs(ctx context.Context, vault VaultRef, action, policyPerm, name string) (*Vault, error) {
	v, err := vault.v, vault.err
	if err != nil {
		return nil, err
	}
	scope := s.ResourceID(v) + "/secrets"
	if name != "" {
		scope += "/" + name
	}
	if err := s.guardDataAs(ctx, v, secretActionPrefix+action, policyPerm, scope); err != nil {
		return nil, err
	}
	if name != "" && !validSecretName(name) {
		return nil, badParameter("The request URI contains an invalid name: %s", name)
	}
	return v, nil
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
