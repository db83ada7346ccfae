package cli

import (
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/netacl"
)

// networkRuleCommand is az's `keyvault network-rule`: a vault firewall's ip rules.
func (a *app) networkRuleCommand() *cobra.Command {
	return group(&cobra.Command{Use: "network-rule", Short: "Manage a key vault's network rules"},
		a.networkRuleChangeCommand(true), a.networkRuleChangeCommand(false), a.networkRuleListCommand())
}

func (a *app) networkRuleChangeCommand(add bool) *cobra.Command {
	var name, rg string
	var ips []string
	use, short := "remove", "Remove a network rule from a key vault's network ACLs"
	if add {
		use, short = "add", "Add a network rule to a key vault's network ACLs"
	}
	c := leaf(&cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var given []string
			for _, ip := range ips {
				if ip = strings.TrimSpace(ip); ip != "" {
					given = append(given, ip)
				}
			}
			if len(given) == 0 {
				return usageErrorf("usage error: --ip-address IP_ADDRESS [IP_ADDRESS ...]")
			}
			for _, ip := range given {
				if _, err := netacl.ParseRule(ip); err != nil {
					return usageErrorf("argument --ip-address: %q is not an IPv4 or IPv6 address or CIDR range", ip)
				}
			}
			ctx := cmd.Context()
			vc, rg, err := a.vaultAndGroup(ctx, name, rg)
			if err != nil {
				return err
			}
			v, err := vc.Get(ctx, rg, name, nil)
			if err != nil {
				return notFoundOr(err, "vault", "getting vault")
			}
			acl := &armkeyvault.NetworkRuleSet{}
			if v.Properties.NetworkACLs != nil {
				*acl = *v.Properties.NetworkACLs
			}
			rules := acl.IPRules
			if add {
				for _, ip := range given {
					if indexRule(rules, ip) < 0 {
						rules = append(rules, &armkeyvault.IPRule{Value: to.Ptr(ip)})
					}
				}
			} else {
				kept := []*armkeyvault.IPRule{}
				for _, r := range rules {
					if r != nil && indexRule([]*armkeyvault.IPRule{{Value: r.Value}}, given...) < 0 {
						kept = append(kept, r)
					}
				}
				rules = kept
			}
			if rules == nil {
				rules = []*armkeyvault.IPRule{}
			}
			// The whole rule list (a merge patch replaces arrays): the other settings stay.
			patch := &armkeyvault.NetworkRuleSet{IPRules: rules, DefaultAction: acl.DefaultAction, Bypass: acl.Bypass}
			res, err := vc.Update(ctx, rg, name, armkeyvault.VaultPatchParameters{Properties: &armkeyvault.VaultPatchProperties{NetworkACLs: patch}}, nil)
			if err != nil {
				return notFoundOr(err, "vault", fmt.Sprintf("updating the network rules of %s", name))
			}
			return a.printVault(res.Vault)
		},
	})
	vaultNameFlags(c, &name, &rg)
	c.Flags().StringArrayVar(&ips, "ip-address", nil, "IPv4 address or CIDR range; can supply a list: --ip-address ip1 [ip2]...")
	return c
}

// indexRule is the index of the first rule among rules that means one of values (as a range:
// "10.0.0.1" and "10.0.0.1/32" are the same rule), or -1.
func indexRule(rules []*armkeyvault.IPRule, values ...string) int {
	for i, r := range rules {
		if r == nil || r.Value == nil {
			continue
		}
		have, err := netacl.ParseRule(*r.Value)
		for _, v := range values {
			want, werr := netacl.ParseRule(v)
			if err == nil && werr == nil && have == want || strings.EqualFold(*r.Value, v) {
				return i
			}
		}
	}
	return -1
}

func (a *app) networkRuleListCommand() *cobra.Command {
	var name, rg string
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List the network rules of a key vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			vc, rg, err := a.vaultAndGroup(ctx, name, rg)
			if err != nil {
				return err
			}
			v, err := vc.Get(ctx, rg, name, nil)
			if err != nil {
				return notFoundOr(err, "vault", "getting vault")
			}
			return a.print(v.Properties.NetworkACLs) // null (nothing printed) without rules, as az
		},
	})
	vaultNameFlags(c, &name, &rg)
	return c
}
