package httpapi

import (
	"github.com/strongroom/strongroom/internal/azkv/arm"
	"github.com/strongroom/strongroom/internal/service"
)

// Conversions between the vault properties the store keeps (service) and the ones on the wire
// (arm). The two have the same fields today; keeping them apart lets either change without the
// other. Nil stays nil and empty stays empty, so PATCH semantics and null fields carry over.

// wireVaultProperties is the stored properties as the wire carries them.
func wireVaultProperties(p service.VaultProperties) arm.VaultProperties {
	out := arm.VaultProperties{
		TenantID: p.TenantID, VaultURI: p.VaultURI,
		EnabledForDeployment: p.EnabledForDeployment, EnabledForDiskEncryption: p.EnabledForDiskEncryption,
		EnabledForTemplateDeployment: p.EnabledForTemplateDeployment, EnableSoftDelete: p.EnableSoftDelete,
		SoftDeleteRetentionInDays: p.SoftDeleteRetentionInDays, EnableRbacAuthorization: p.EnableRbacAuthorization,
		EnablePurgeProtection: p.EnablePurgeProtection, CreateMode: p.CreateMode,
		PublicNetworkAccess: p.PublicNetworkAccess, ProvisioningState: p.ProvisioningState,
		Sku: (*arm.Sku)(p.Sku),
	}
	out.AccessPolicies = convertSlice(p.AccessPolicies, func(a service.AccessPolicy) arm.AccessPolicy {
		return arm.AccessPolicy{TenantID: a.TenantID, ObjectID: a.ObjectID, ApplicationID: a.ApplicationID, Permissions: arm.Permissions(a.Permissions)}
	})
	if n := p.NetworkAcls; n != nil {
		out.NetworkAcls = &arm.NetworkRuleSet{Bypass: n.Bypass, DefaultAction: n.DefaultAction,
			IPRules:             convertSlice(n.IPRules, func(r service.IPRule) arm.IPRule { return arm.IPRule(r) }),
			VirtualNetworkRules: convertSlice(n.VirtualNetworkRules, func(r service.VNetRule) arm.VNetRule { return arm.VNetRule(r) })}
	}
	return out
}

// storedVaultProperties is wireVaultProperties' inverse; nil (no properties in the body) stays nil.
func storedVaultProperties(p *arm.VaultProperties) *service.VaultProperties {
	if p == nil {
		return nil
	}
	out := &service.VaultProperties{
		TenantID: p.TenantID, VaultURI: p.VaultURI,
		EnabledForDeployment: p.EnabledForDeployment, EnabledForDiskEncryption: p.EnabledForDiskEncryption,
		EnabledForTemplateDeployment: p.EnabledForTemplateDeployment, EnableSoftDelete: p.EnableSoftDelete,
		SoftDeleteRetentionInDays: p.SoftDeleteRetentionInDays, EnableRbacAuthorization: p.EnableRbacAuthorization,
		EnablePurgeProtection: p.EnablePurgeProtection, CreateMode: p.CreateMode,
		PublicNetworkAccess: p.PublicNetworkAccess, ProvisioningState: p.ProvisioningState,
		Sku: (*service.Sku)(p.Sku),
	}
	out.AccessPolicies = convertSlice(p.AccessPolicies, func(a arm.AccessPolicy) service.AccessPolicy {
		return service.AccessPolicy{TenantID: a.TenantID, ObjectID: a.ObjectID, ApplicationID: a.ApplicationID, Permissions: service.Permissions(a.Permissions)}
	})
	if n := p.NetworkAcls; n != nil {
		out.NetworkAcls = &service.NetworkRuleSet{Bypass: n.Bypass, DefaultAction: n.DefaultAction,
			IPRules:             convertSlice(n.IPRules, func(r arm.IPRule) service.IPRule { return service.IPRule(r) }),
			VirtualNetworkRules: convertSlice(n.VirtualNetworkRules, func(r arm.VNetRule) service.VNetRule { return service.VNetRule(r) })}
	}
	return out
}

// convertSlice maps in with f, keeping nil nil and empty empty.
func convertSlice[A, B any](in []A, f func(A) B) []B {
	if in == nil {
		return nil
	}
	out := make([]B, len(in))
	for i, a := range in {
		out[i] = f(a)
	}
	return out
}
