package httpapi_test

import (
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/httpapi"
)

func TestServer_VaultFromHost(t *testing.T) {
	s := httpapi.NewForHostTest("vault.localhost")
	cases := map[string]string{
		"myvault.vault.localhost:8443":  "myvault",
		"MyVault.Vault.Localhost:8443":  "myvault",
		"myvault.vault.localhost":       "myvault",
		"myvault.vault.localhost.:8443": "myvault",
		"localhost:8443":                "",
		"vault.localhost:8443":          "",
		"a.b.vault.localhost:8443":      "",
		"myvault.vault.localhost.evil":  "",
		"127.0.0.1:8443":                "",
	}
	for host, want := range cases {
		if got := s.VaultFromHost(host); got != want {
			t.Errorf("vaultFromHost(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestMatchRoute(t *testing.T) {
	cases := []struct {
		method, path, op, params string
		pathOK                   bool
	}{
		{"PUT", "/subscriptions/s1/resourcegroups/myRG", "ResourceGroupWrite", "s1,myRG", true},
		{"PUT", "/subscriptions/s1/resourceGroups/myRG", "ResourceGroupWrite", "s1,myRG", true},
		{"GET", "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/KV1", "VaultGet", "s1,rg,KV1", true},
		{"GET", "/SUBSCRIPTIONS/s1/RESOURCEGROUPS/rg/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/kv", "VaultGet", "s1,rg,kv", true},
		{"POST", "/subscriptions/s1/providers/Microsoft.KeyVault/locations/eastus/deletedVaults/kv/purge", "VaultPurge", "s1,eastus,kv", true},
		{"POST", "/subscriptions/s1/resourcegroups/rg", "", "", true},
		{"GET", "/subscriptions/s1/nothing", "", "", false},
		{"GET", "/subscriptions//resourcegroups", "", "", false},
	}
	for _, c := range cases {
		op, params, ok := httpapi.MatchRoute(c.method, c.path)
		if op != c.op || strings.Join(params, ",") != c.params || ok != c.pathOK {
			t.Errorf("MatchRoute(%s %s) = %q %v %v; want %q %q %v", c.method, c.path, op, params, ok, c.op, c.params, c.pathOK)
		}
	}
}
