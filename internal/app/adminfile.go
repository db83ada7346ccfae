package app

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/strongroom/strongroom/internal/identity"
)

// writeAdminFile writes the bootstrap credential with mode 0600 and fsyncs it.
func writeAdminFile(path string, b identity.Bootstrap) error {
	data, _ := json.MarshalIndent(map[string]string{
		"tenantId": b.TenantID, "subscriptionId": b.SubscriptionID, "clientId": b.ClientID, "clientSecret": b.ClientSecret,
	}, "", "  ")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing admin credentials: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing admin credentials: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing admin credentials: %w", err)
	}
	return f.Close()
}
