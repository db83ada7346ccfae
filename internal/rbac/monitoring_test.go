package rbac_test

import (
	"testing"

	"github.com/strongroom/strongroom/internal/rbac"
)

// Scraping /metrics needs Microsoft.Insights/metrics/read (at "/"): Azure's roles with "*" or
// "*/read" hold it, Monitoring Reader among them, and so does the server's operator role; no
// Key Vault role does.
func TestBuiltIn_MetricsRead(t *testing.T) {
	const action = "Microsoft.Insights/metrics/read"
	want := map[string]bool{
		rbac.OwnerID: true, rbac.ContributorID: true, rbac.ReaderID: true, rbac.UserAccessAdministratorID: true,
		rbac.MonitoringReaderID: true, rbac.StrongroomOperatorID: true, rbac.ResourcePolicyContributorID: true,
	}
	for _, r := range rbac.BuiltInRoles {
		if got := r.Allows(action, false); got != want[r.ID] {
			t.Errorf("%s allows %s: %v, want %v", r.Name, action, got, want[r.ID])
		}
	}
	mr, ok := rbac.BuiltIn("43d0d8ad-25c7-4714-9337-8ba259a9fe05")
	if !ok || mr.Name != "Monitoring Reader" || mr.Allows("Microsoft.KeyVault/vaults/write", false) ||
		mr.Allows("Microsoft.KeyVault/vaults/secrets/getSecret/action", true) || mr.Allows(rbac.ActionAuditRecordsRead, false) {
		t.Fatalf("Monitoring Reader: %+v", mr)
	}
}
