package test

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

func TestARM_Vaults(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	kv := e.createVault(t, "rg-arm", "kv-arm", &armkeyvault.VaultProperties{SoftDeleteRetentionInDays: to.Ptr[int32](30)})
	if _, err := kv.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("Get", func(t *testing.T) {
		recordClient(t, "go", "armkeyvault Vaults.Get")
		recordClient(t, "go", "armkeyvault Vaults.CreateOrUpdate") // what created kv-arm above said is what Get returns
		got, err := e.vaults.Get(ctx, "RG-ARM", "kv-arm", nil)     // resource group names are case-insensitive
		if err != nil {
			t.Fatal(err)
		}
		p := got.Properties
		if *p.VaultURI != e.srv.VaultURL("kv-arm") || *p.SoftDeleteRetentionInDays != 30 || !*p.EnableSoftDelete || *p.TenantID != e.srv.Admin.TenantID {
			t.Fatalf("vault = %+v", p)
		}
		_, err = e.vaults.Get(ctx, "rg-arm", "kv-nope", nil)
		wantStatus(t, err, 404, "ResourceNotFound")
		_, err = e.vaults.Get(ctx, "rg-nope", "kv-arm", nil)
		wantStatus(t, err, 404, "ResourceGroupNotFound")
	})

	t.Run("ListBySubscriptionAndGroup", func(t *testing.T) {
		recordClient(t, "go", "armkeyvault Vaults.List")
		recordClient(t, "go", "armkeyvault Vaults.ListByResourceGroup")
		n := 0
		pager := e.vaults.NewListByResourceGroupPager("rg-arm", nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Value)
		}
		if n != 1 {
			t.Fatalf("vaults in rg-arm = %d, want 1", n)
		}
		found := false
		sp := e.vaults.NewListPager(nil)
		for sp.More() {
			page, err := sp.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Value {
				found = found || *r.Name == "kv-arm"
			}
		}
		if !found {
			t.Fatal("kv-arm missing from the subscription listing")
		}
	})

	t.Run("RulesAndImmutables", func(t *testing.T) {
		base := func() armkeyvault.VaultCreateOrUpdateParameters {
			return armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr("eastus"), Properties: &armkeyvault.VaultProperties{
				TenantID: to.Ptr(e.srv.Admin.TenantID), SKU: &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNameStandard)},
				AccessPolicies: []*armkeyvault.AccessPolicyEntry{}}}
		}
		put := func(rg, name string, p armkeyvault.VaultCreateOrUpdateParameters) error {
			poller, err := e.vaults.BeginCreateOrUpdate(ctx, rg, name, p, nil)
			if err == nil {
				_, err = poller.PollUntilDone(ctx, nil)
			}
			return err
		}
		cases := []struct {
			name, rg, vault string
			mutate          func(*armkeyvault.VaultCreateOrUpdateParameters)
			status          int
			code            string
		}{
			{"name too short", "rg-arm", "kv", nil, 400, "VaultNameNotValid"},
			{"name starts with digit", "rg-arm", "1kv-x", nil, 400, "VaultNameNotValid"},
			{"double hyphen", "rg-arm", "kv--x", nil, 400, "VaultNameNotValid"},
			{"name too long", "rg-arm", "kv-abcdefghijklmnopqrstuvw", nil, 400, "VaultNameNotValid"},
			{"retention out of range", "rg-arm", "kv-ret", func(p *armkeyvault.VaultCreateOrUpdateParameters) {
				p.Properties.SoftDeleteRetentionInDays = to.Ptr[int32](6)
			}, 400, "BadRequest"},
			{"retention is immutable", "rg-arm", "kv-arm", func(p *armkeyvault.VaultCreateOrUpdateParameters) {
				p.Properties.SoftDeleteRetentionInDays = to.Ptr[int32](90)
			}, 400, "BadRequest"},
			{"name taken in another group", "rg-other", "kv-arm", nil, 409, "VaultAlreadyExists"},
			{"missing tenant", "rg-arm", "kv-notenant", func(p *armkeyvault.VaultCreateOrUpdateParameters) { p.Properties.TenantID = nil }, 400, "BadRequest"},
			{"unknown group", "rg-missing", "kv-x1", nil, 404, "ResourceGroupNotFound"},
		}
		if _, err := e.groups.CreateOrUpdate(ctx, "rg-other", armresources.ResourceGroup{Location: to.Ptr("eastus")}, nil); err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := base()
				if c.mutate != nil {
					c.mutate(&p)
				}
				wantStatus(t, put(c.rg, c.vault, p), c.status, c.code)
			})
		}
		// Purge protection is one-way.
		recordClient(t, "go", "armkeyvault Vaults.Update")
		_, err := e.vaults.Update(ctx, "rg-arm", "kv-arm", armkeyvault.VaultPatchParameters{Properties: &armkeyvault.VaultPatchProperties{EnablePurgeProtection: to.Ptr(true)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.vaults.Update(ctx, "rg-arm", "kv-arm", armkeyvault.VaultPatchParameters{Properties: &armkeyvault.VaultPatchProperties{EnablePurgeProtection: to.Ptr(false)}}, nil)
		wantStatus(t, err, 400, "BadRequest")
	})

	t.Run("SoftDeleteRecoverPurge", func(t *testing.T) {
		for _, op := range []string{"Delete", "GetDeleted", "ListDeleted", "CreateOrUpdate (createMode recover)", "PurgeDeleted"} {
			recordClient(t, "go", "armkeyvault Vaults."+op)
		}
		e.createVault(t, "rg-arm", "kv-temp", nil)
		if _, err := e.vaults.Delete(ctx, "rg-arm", "kv-temp", nil); err != nil {
			t.Fatal(err)
		}
		_, err := e.vaults.Get(ctx, "rg-arm", "kv-temp", nil)
		wantStatus(t, err, 404, "ResourceNotFound")
		dv, err := e.vaults.GetDeleted(ctx, "kv-temp", "eastus", nil)
		if err != nil || *dv.Properties.VaultID == "" {
			t.Fatalf("get deleted: %v", err)
		}
		// The name stays reserved while soft-deleted.
		poller, err := e.vaults.BeginCreateOrUpdate(ctx, "rg-arm", "kv-temp", armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr("eastus"), Properties: &armkeyvault.VaultProperties{
			TenantID: to.Ptr(e.srv.Admin.TenantID), SKU: &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNameStandard)}, AccessPolicies: []*armkeyvault.AccessPolicyEntry{}}}, nil)
		if err == nil {
			_, err = poller.PollUntilDone(ctx, nil)
		}
		wantStatus(t, err, 409, "VaultAlreadyExists")
		// Recover with createMode=recover.
		poller, err = e.vaults.BeginCreateOrUpdate(ctx, "rg-arm", "kv-temp", armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr("eastus"), Properties: &armkeyvault.VaultProperties{
			TenantID: to.Ptr(e.srv.Admin.TenantID), SKU: &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNameStandard)}, CreateMode: to.Ptr(armkeyvault.CreateModeRecover)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := poller.PollUntilDone(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.vaults.Get(ctx, "rg-arm", "kv-temp", nil); err != nil {
			t.Fatalf("after recover: %v", err)
		}
		// Delete and purge; then the name is free again.
		if _, err := e.vaults.Delete(ctx, "rg-arm", "kv-temp", nil); err != nil {
			t.Fatal(err)
		}
		n := 0
		dp := e.vaults.NewListDeletedPager(nil)
		for dp.More() {
			page, err := dp.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Value)
		}
		if n != 1 {
			t.Fatalf("deleted vaults = %d, want 1", n)
		}
		pp, err := e.vaults.BeginPurgeDeleted(ctx, "kv-temp", "eastus", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pp.PollUntilDone(ctx, nil); err != nil {
			t.Fatal(err)
		}
		_, err = e.vaults.GetDeleted(ctx, "kv-temp", "eastus", nil)
		wantStatus(t, err, 404, "ResourceNotFound")
		e.createVault(t, "rg-arm", "kv-temp", nil)
	})

	t.Run("ResourceGroups", func(t *testing.T) {
		for _, op := range []string{"CreateOrUpdate", "Get", "List", "Delete"} {
			recordClient(t, "go", "armresources ResourceGroups."+op)
		}
		made, err := e.groups.CreateOrUpdate(ctx, "rg-made", armresources.ResourceGroup{Location: to.Ptr("westus"), Tags: map[string]*string{"team": to.Ptr("a")}}, nil)
		if err != nil || *made.Name != "rg-made" || *made.Location != "westus" || *made.Tags["team"] != "a" ||
			*made.ID != "/subscriptions/"+e.srv.Admin.SubscriptionID+"/resourceGroups/rg-made" {
			t.Fatalf("create group: %+v, %v", made.ResourceGroup, err)
		}
		g, err := e.groups.Get(ctx, "rg-arm", nil)
		if err != nil || *g.Name != "rg-arm" || *g.Location != "eastus" {
			t.Fatalf("get group: %v", err)
		}
		listed := map[string]bool{}
		for p := e.groups.NewListPager(nil); p.More(); {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range page.Value {
				listed[*g.Name] = true
			}
		}
		if !listed["rg-arm"] || !listed["rg-made"] || !listed["rg-other"] {
			t.Fatalf("listed groups %v, want rg-arm, rg-made and rg-other", listed)
		}
		_, err = e.groups.Get(ctx, "rg-none", nil)
		wantStatus(t, err, 404, "ResourceGroupNotFound")
		poller, err := e.groups.BeginDelete(ctx, "rg-other", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := poller.PollUntilDone(ctx, nil); err != nil {
			t.Fatal(err)
		}
		_, err = e.groups.Get(ctx, "rg-other", nil)
		wantStatus(t, err, 404, "ResourceGroupNotFound")
	})
}
