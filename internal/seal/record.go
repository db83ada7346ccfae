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
	Type      Type `json:"type"`
	Shares    int  `json:"shares,omitempty"`
	Threshold int  `json:"threshold,omitempty"`
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
