// Package seal releases Strongroom's root key. A seal never stores the root key in the clear
// next to the data: the file seal keeps it in a key file (development only, warned about), the
// Shamir seal splits it into operator shares of which a threshold must be presented after every
// start, and the PKCS#11 seal keeps it wrapped by a key that never leaves an HSM.
//
// The seal's configuration is recorded in the store at "sys/seal/config" (plaintext JSON, no key
// material) so a server refuses to start with a seal other than the one it was initialized with.
package seal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/strongroom/strongroom/internal/store"
)

// ConfigKey is where the seal configuration lives in the store.
const ConfigKey = "sys/seal/config"

// Config is the recorded seal configuration.
type Config struct {
	Type      string `json:"type"` // "file", "shamir" or "pkcs11"
	Shares    int    `json:"shares,omitempty"`
	Threshold int    `json:"threshold,omitempty"`
	// WrappedRootKey is the root key wrapped by the HSM key (pkcs11 only).
	WrappedRootKey []byte `json:"wrappedRootKey,omitempty"`
	KeyLabel       string `json:"keyLabel,omitempty"`
}

// ErrNoConfig means the store was never initialized.
var ErrNoConfig = errors.New("no seal configuration recorded")

// LoadConfig reads the recorded seal configuration.
func LoadConfig(ctx context.Context, st store.Reader) (Config, error) {
	raw, err := st.Get(ctx, ConfigKey)
	if errors.Is(err, store.ErrNotFound) {
		return Config{}, ErrNoConfig
	}
	if err != nil {
		return Config{}, fmt.Errorf("reading seal configuration: %w", err)
	}
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return Config{}, fmt.Errorf("reading seal configuration: %w", err)
	}
	return c, nil
}

// SaveOp returns the op that records c.
func SaveOp(c Config) store.Op {
	b, _ := json.Marshal(c) // Config always encodes
	return store.Put(ConfigKey, b)
}
