package sysapi

import (
	"context"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/seal"
	"github.com/strongroom/strongroom/internal/seal/sealtest"
)

// A PKCS#11 rekey destroys the old HSM key once the new keyring is committed, so the old wrapped
// root key (in an old copy of the store) can no longer be unwrapped. It used not to: staging the
// new key opened and finalized the library under the session the rekey held, and destroying the
// old key then failed (logged only).
func TestRekey_PKCS11_DestroysTheOldHSMKey(t *testing.T) {
	conf, _ := sealtest.NewToken(t, "app-test", "1234")
	t.Setenv("SOFTHSM2_CONF", conf)
	t.Setenv("TEST_APP_HSM_PIN", "1234")
	sc := config.SealConfig{Type: seal.PKCS11, PKCS11: config.PKCS11Config{Module: sealtest.SoftHSMModule, TokenLabel: "app-test", PINEnv: "TEST_APP_HSM_PIN"}}
	c, _ := testCore(t, sc, nil)
	ctx := context.Background()
	old, err := seal.LoadConfig(ctx, c.st)
	if err != nil || c.Sealed() {
		t.Fatalf("first start: sealed %v, %v", c.Sealed(), err)
	}
	out, err := c.Rekey(ctx, 0, 0)
	if err != nil || !strings.HasPrefix(out.KeyLabel, config.DefaultPKCS11KeyLabel+"-") {
		t.Fatalf("rekey: %v %v", out, err)
	}
	sc.PKCS11.KeyLabel = config.DefaultPKCS11KeyLabel
	for _, tc := range []struct {
		name     string
		rec      func() seal.Config
		unwraps  bool
		errMatch string
	}{
		{"the new wrapped key", func() seal.Config { r, _ := seal.LoadConfig(ctx, c.st); return r }, true, ""},
		{"the old wrapped key", func() seal.Config { return old }, false, "is not in token"},
	} {
		rec := tc.rec()
		s, err := seal.New(sc, c.cfg.DataDir, &rec, c.log)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Unseal(ctx, nil)
		if (err == nil) != tc.unwraps || (err != nil && !strings.Contains(err.Error(), tc.errMatch)) {
			t.Fatalf("%s: unwrap err = %v, want unwrapping %v", tc.name, err, tc.unwraps)
		}
	}
}
