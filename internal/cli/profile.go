package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// configDirEnv overrides the profile directory, like AZURE_CONFIG_DIR does for az.
const configDirEnv = "STRONGROOM_CONFIG_DIR"

// profileFile is the profile's name inside the config directory.
const profileFile = "profile.json"

// errNotLoggedIn is returned by commands that need a profile when there is none.
var errNotLoggedIn = errors.New("please run 'strongroom login' to set up an account")

// Profile is what login stores and every other command reads. It holds the service principal's
// secret (as az's service_principal_entries does), so the file is written with mode 0600 in a
// 0700 directory.
type Profile struct {
	// Server is the server's public base URL without a trailing slash, e.g. https://localhost:8443.
	Server string `json:"server"`
	// CAPEM is a copy of the CA certificate(s) given to login with --ca-file; empty means system roots.
	CAPEM string `json:"caPem,omitempty"`
	// CloudName is the name from the server's cloud metadata.
	CloudName string `json:"cloudName"`
	// Authority is the token issuer's base URL (the cloud's loginEndpoint).
	Authority string `json:"authority"`
	// ResourceManager is the ARM endpoint and ARMAudience the audience of ARM tokens.
	ResourceManager string `json:"resourceManager"`
	ARMAudience     string `json:"armAudience"`
	// KeyVaultDNS is the vault host suffix without a leading dot, e.g. vault.localhost:8443.
	KeyVaultDNS string `json:"keyVaultDns"`

	TenantID     string `json:"tenantId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	// UserName is set for a user's login (by password or device code): the profile then holds
	// the access tokens login got for each plane and the newest refresh token, which gets new
	// access tokens when they expire (the server rotates it on every use), never the password.
	UserName     string        `json:"userName,omitempty"`
	Tokens       []CachedToken `json:"tokens,omitempty"`
	RefreshToken string        `json:"refreshToken,omitempty"`

	SubscriptionID    string `json:"subscriptionId"`
	SubscriptionName  string `json:"subscriptionName"`
	SubscriptionState string `json:"subscriptionState"`
}

// configDir returns the profile directory: $STRONGROOM_CONFIG_DIR or ~/.strongroom.
func configDir() (string, error) {
	if d := os.Getenv(configDirEnv); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding home directory (set %s): %w", configDirEnv, err)
	}
	return filepath.Join(home, ".strongroom"), nil
}

// loadProfile reads the profile; errNotLoggedIn if there is none.
func loadProfile() (*Profile, error) {
	dir, err := configDir()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, profileFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotLoggedIn
	}
	if err != nil {
		return nil, fmt.Errorf("reading profile: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("reading profile: %w", err)
	}
	if p.Server == "" || p.ClientID == "" || p.TenantID == "" {
		return nil, errNotLoggedIn
	}
	return &p, nil
}

// saveProfile writes the profile atomically with owner-only permissions.
func saveProfile(p *Profile) error {
	dir, err := configDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating config directory: %w", err)
	}
	// MkdirAll leaves an existing directory's mode alone; the profile holds a secret, so tighten it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("securing config directory: %w", err)
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding profile: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".profile-*.tmp")
	if err != nil {
		return fmt.Errorf("writing profile: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing profile: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing profile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing profile: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, profileFile)); err != nil {
		return fmt.Errorf("writing profile: %w", err)
	}
	return nil
}

// removeProfile deletes the profile; it reports whether there was one.
func removeProfile() (bool, error) {
	dir, err := configDir()
	if err != nil {
		return false, err
	}
	err = os.Remove(filepath.Join(dir, profileFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("removing profile: %w", err)
	}
	return true, nil
}

// CachedToken is an access token a user's login got for one scope.
type CachedToken struct {
	Scope     string    `json:"scope"`
	Token     string    `json:"token"`
	ExpiresOn time.Time `json:"expiresOn"`
}
