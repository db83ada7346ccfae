// Access-policy updates (PUT .../vaults/{v}/accessPolicies/{add|replace|remove}), Key Vault's
// merge rules, and the validation they share with vault writes.

package service

import (
	"context"
	"slices"
	"strings"
)

// The kinds of access-policy update (PUT .../vaults/{v}/accessPolicies/{kind}).
const (
	AccessPolicyAdd     = "add"
	AccessPolicyReplace = "replace"
	AccessPolicyRemove  = "remove"
)

// UpdateAccessPolicies applies an access-policy update to a live vault and returns the vault
// with its resulting policies. Entries are matched by (tenantId, objectId, applicationId),
// ignoring case:
//
//   - add merges each entry's permissions into the matching entry, or appends the entry;
//   - replace overwrites the matching entry's permission lists, or appends the entry;
//   - remove takes each listed permission out of the matching entry and drops an entry left
//     with no permission at all; an entry given with no permissions removes the whole entry.
//     A permission is removed only by its own name: removing "get" leaves "all" in place.
//
// Who may do it is management-plane RBAC (Microsoft.KeyVault/vaults/accessPolicies/write at
// the vault), as in Key Vault, whatever the vault's data-plane permission model.
func (s *Service) UpdateAccessPolicies(ctx context.Context, rg, name, kind string, entries []AccessPolicy) (*Vault, error) {
	if err := s.guard(ctx, "Microsoft.KeyVault/vaults/accessPolicies/write", false, s.vaultScope(rg, name)); err != nil {
		return nil, err
	}
	kind = strings.ToLower(kind)
	if kind != AccessPolicyAdd && kind != AccessPolicyReplace && kind != AccessPolicyRemove {
		return nil, newErr(ErrBadRequest, "BadRequest", "", "The access policy update kind '%s' is invalid; use 'add', 'replace' or 'remove'.", kind)
	}
	if len(entries) == 0 {
		return nil, newErr(ErrBadRequest, "BadRequest", "", "The parameter properties.accessPolicies is required.")
	}
	if err := s.validateAccessPolicies("properties.accessPolicies", entries); err != nil {
		return nil, err
	}
	s.vaultWrite.Lock()
	defer s.vaultWrite.Unlock()
	old, err := s.liveVault(rg, name)
	if err != nil {
		return nil, err
	}
	aps := ApplyAccessPolicyUpdate(old.Properties.AccessPolicies, kind, entries)
	if len(aps) > MaxAccessPolicies {
		return nil, newErr(ErrBadRequest, "BadRequest", "", "A vault may hold at most %d access policies; this update would leave %d.", MaxAccessPolicies, len(aps))
	}
	v := *old
	v.Properties.AccessPolicies = aps
	c, _ := CallerFrom(ctx)
	v.Updated, v.UpdatedBy = s.now().UTC(), c.ObjectID
	evOps, err := s.accessPolicyEventOps(ctx, &v) // in the same batch as the change
	if err != nil {
		return nil, err
	}
	if err := s.putVaultRecord(ctx, &v, evOps...); err != nil {
		return nil, err
	}
	return &v, nil
}

// ApplyAccessPolicyUpdate is UpdateAccessPolicies' pure part: the policies that an update of
// kind (add, replace or remove, lower case) leaves of cur. cur is not modified; the result is
// never nil.
func ApplyAccessPolicyUpdate(cur []AccessPolicy, kind string, entries []AccessPolicy) []AccessPolicy {
	out := make([]AccessPolicy, 0, len(cur)+len(entries))
	for _, ap := range cur {
		out = append(out, clonePolicy(ap))
	}
	for _, e := range entries {
		i := slices.IndexFunc(out, func(ap AccessPolicy) bool { return samePrincipal(ap, e) })
		switch {
		case kind == AccessPolicyRemove && i < 0:
		case kind == AccessPolicyRemove:
			p := &out[i].Permissions
			if e.Permissions.empty() {
				*p = Permissions{}
			} else {
				p.Keys = without(p.Keys, e.Permissions.Keys)
				p.Secrets = without(p.Secrets, e.Permissions.Secrets)
				p.Certificates = without(p.Certificates, e.Permissions.Certificates)
				p.Storage = without(p.Storage, e.Permissions.Storage)
			}
			if p.empty() {
				out = slices.Delete(out, i, i+1)
			}
		case i < 0:
			out = append(out, clonePolicy(e))
		case kind == AccessPolicyReplace:
			out[i].Permissions = clonePolicy(e).Permissions
		default: // add
			p := &out[i].Permissions
			p.Keys = union(p.Keys, e.Permissions.Keys)
			p.Secrets = union(p.Secrets, e.Permissions.Secrets)
			p.Certificates = union(p.Certificates, e.Permissions.Certificates)
			p.Storage = union(p.Storage, e.Permissions.Storage)
		}
	}
	return out
}

func samePrincipal(a, b AccessPolicy) bool {
	return strings.EqualFold(a.TenantID, b.TenantID) && strings.EqualFold(a.ObjectID, b.ObjectID) &&
		strings.EqualFold(a.ApplicationID, b.ApplicationID)
}

func (p Permissions) empty() bool {
	return len(p.Keys) == 0 && len(p.Secrets) == 0 && len(p.Certificates) == 0 && len(p.Storage) == 0
}

func clonePolicy(ap AccessPolicy) AccessPolicy {
	ap.Permissions = Permissions{Keys: slices.Clone(ap.Permissions.Keys), Secrets: slices.Clone(ap.Permissions.Secrets),
		Certificates: slices.Clone(ap.Permissions.Certificates), Storage: slices.Clone(ap.Permissions.Storage)}
	return ap
}

func containsFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, v) })
}

// union is a with each of b it lacks (ignoring case) appended, in b's spelling.
func union(a, b []string) []string {
	for _, v := range b {
		if !containsFold(a, v) {
			a = append(a, v)
		}
	}
	return a
}

// without is a less every value in b (ignoring case); nil when nothing is left.
func without(a, b []string) []string {
	var out []string
	for _, v := range a {
		if !containsFold(b, v) {
			out = append(out, v)
		}
	}
	return out
}
