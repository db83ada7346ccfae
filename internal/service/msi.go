// Managed identities (Microsoft.ManagedIdentity/userAssignedIdentities) and the application
// hosts they are assigned to: authorization through guard, and the checks ARM makes before a
// resource provider sees a request (the resource group exists). The identity service stores
// them; the HTTP layer calls it once these methods allow the request, as for AuthorizeIdentity.

package service

import (
	"context"
	"fmt"
	"regexp"
	"slices"
)

// MSIAction is an action on a user-assigned identity or an identity host.
type MSIAction string

// The actions managed-identity routes check: Azure's for identities (Owner and Contributor
// hold them through "*"; Managed Identity Operator holds read and assign), and ours for hosts,
// which live at /subscriptions/{s}/providers/Strongroom.Identity/hosts/{name}.
const (
	ActionIdentityRead   MSIAction = "Microsoft.ManagedIdentity/userAssignedIdentities/read"
	ActionIdentityWrite  MSIAction = "Microsoft.ManagedIdentity/userAssignedIdentities/write"
	ActionIdentityDelete MSIAction = "Microsoft.ManagedIdentity/userAssignedIdentities/delete"
	ActionIdentityAssign MSIAction = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
	ActionHostRead       MSIAction = "Strongroom.Identity/hosts/read"
	ActionHostWrite      MSIAction = "Strongroom.Identity/hosts/write"
	ActionHostDelete     MSIAction = "Strongroom.Identity/hosts/delete"
)

var identityActions = []MSIAction{ActionIdentityRead, ActionIdentityWrite, ActionIdentityDelete, ActionIdentityAssign}
var hostActions = []MSIAction{ActionHostRead, ActionHostWrite, ActionHostDelete}

var msiNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$`)
var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// userAssignedIdentityID is the ARM id of the identity rg/name.
func (s *Service) userAssignedIdentityID(rg, name string) string {
	return s.rgID(rg) + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name
}

// hostID is the ARM-style id of an identity host.
func (s *Service) hostID(name string) string {
	return s.SubscriptionScope() + "/providers/Strongroom.Identity/hosts/" + name
}

// AuthorizeUserAssignedIdentity checks that the caller may perform action on the identity
// rg/name, then that the names are valid and the resource group exists; it returns the
// identity's resource id.
func (s *Service) AuthorizeUserAssignedIdentity(ctx context.Context, action MSIAction, rg, name string) (string, error) {
	id := s.userAssignedIdentityID(rg, name)
	if err := s.guard(ctx, string(action), false, id); err != nil {
		return "", err
	}
	if !slices.Contains(identityActions, action) {
		return "", fmt.Errorf("authorizing managed identity: unknown action %q", action)
	}
	if !rgNameRE.MatchString(rg) {
		return "", newErr(ErrNotFound, "ResourceGroupNotFound", "", "Resource group '%s' could not be found.", rg)
	}
	if _, err := s.resourceGroup(ctx, rg); err != nil {
		return "", err
	}
	if !msiNameRE.MatchString(name) {
		if action == ActionIdentityWrite {
			return "", newErr(ErrBadRequest, "InvalidResourceName", "", "Resource name '%s' is invalid. The name can be 3-128 characters long; it must begin with a letter or number and contain only letters, numbers, hyphens and underscores.", name)
		}
		return "", IdentityNotFound(rg, name)
	}
	return id, nil
}

// IdentityNotFound is the ARM error for an identity that does not exist.
func IdentityNotFound(rg, name string) error {
	return newErr(ErrNotFound, "ResourceNotFound", "", "The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/%s' under resource group '%s' was not found.", name, rg)
}

// AuthorizeUserAssignedIdentityList checks that the caller may list identities in resource
// group rg, or in the subscription when rg is "".
func (s *Service) AuthorizeUserAssignedIdentityList(ctx context.Context, rg string) error {
	scope := s.SubscriptionScope()
	if rg != "" {
		scope = s.rgID(rg)
	}
	if err := s.guard(ctx, string(ActionIdentityRead), false, scope); err != nil {
		return err
	}
	if rg == "" {
		return nil
	}
	if !rgNameRE.MatchString(rg) {
		return newErr(ErrNotFound, "ResourceGroupNotFound", "", "Resource group '%s' could not be found.", rg)
	}
	_, err := s.resourceGroup(ctx, rg)
	return err
}

// AuthorizeHost checks that the caller may perform action on the identity host name ("" for
// the list of hosts, read only) and returns the host's id.
func (s *Service) AuthorizeHost(ctx context.Context, action MSIAction, name string) (string, error) {
	id := s.hostID(name)
	if name == "" {
		id = s.SubscriptionScope()
	}
	if err := s.guard(ctx, string(action), false, id); err != nil {
		return "", err
	}
	if !slices.Contains(hostActions, action) || (name == "" && action != ActionHostRead) {
		return "", fmt.Errorf("authorizing host: unknown action %q", action)
	}
	if name != "" && !hostNameRE.MatchString(name) {
		return "", newErr(ErrBadRequest, "InvalidResourceName", "", "The host name '%s' is invalid: 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit.", name)
	}
	return id, nil
}

// AuthorizeHostAssignment checks that the caller may assign the identity rg/name to (or remove
// it from) the host: the host's write action and the identity's assign action, as Azure asks
// of whoever assigns an identity to a VM. It returns the identity's resource id.
func (s *Service) AuthorizeHostAssignment(ctx context.Context, host, rg, name string) (string, error) {
	if _, err := s.AuthorizeHost(ctx, ActionHostWrite, host); err != nil {
		return "", err
	}
	return s.AuthorizeUserAssignedIdentity(ctx, ActionIdentityAssign, rg, name)
}
