package seal_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/seal"
	"github.com/strongroom/strongroom/internal/seal/sealtest"
)

// softHSM makes a SoftHSM2 token for this test and returns the seal configuration naming it.
// It fails under STRONGROOM_REQUIRE_ALL=1 when SoftHSM2 is missing, and skips elsewhere.
func softHSM(t *testing.T) config.SealConfig {
	t.Helper()
	conf, _ := sealtest.NewToken(t, "seal-test", "1234")
	t.Setenv("SOFTHSM2_CONF", conf)
	t.Setenv("TEST_SEAL_HSM_PIN", "1234")
	return config.SealConfig{Type: seal.PKCS11, PKCS11: config.PKCS11Config{Module: sealtest.SoftHSMModule, TokenLabel: "seal-test", PINEnv: "TEST_SEAL_HSM_PIN"}}
}

// A rekey's Finish destroys the HSM key no longer used: the old one after a commit, the new one
// when nothing was committed, neither when the outcome is unknown.
func TestPKCS11Seal_ReplaceFinish(t *testing.T) {
	ctx := context.Background()
	cfg := softHSM(t)
	s, err := seal.New(cfg, t.TempDir(), nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Init(ctx, seal.Params{})
	if err != nil || ch.Config.KeyLabel != config.DefaultPKCS11KeyLabel {
		t.Fatalf("init: %v %+v", err, ch)
	}
	opens := func(rec seal.Config) ([]byte, error) {
		s, err := seal.New(cfg, t.TempDir(), &rec, quiet)
		if err != nil {
			t.Fatal(err)
		}
		return s.Unseal(ctx, nil)
	}
	if got, err := opens(ch.Config); err != nil || !bytes.Equal(got, ch.Root) {
		t.Fatalf("unseal = %x, %v", got, err)
	}
	cases := []struct {
		outcome            seal.Outcome
		oldOpens, newOpens bool
	}{
		{seal.NotCommitted, true, false},
		{seal.Unknown, true, true},
		{seal.Committed, false, true},
	}
	for i, tc := range cases {
		// Rekey labels carry the time in seconds: a label of its own per case keeps them apart.
		cfg.PKCS11.KeyLabel = fmt.Sprintf("case%d", i)
		cur, _ := seal.New(cfg, t.TempDir(), &ch.Config, quiet)
		next, err := cur.Replace(ctx, seal.Params{})
		if err != nil || !strings.HasPrefix(next.Config.KeyLabel, cfg.PKCS11.KeyLabel+"-") {
			t.Fatalf("replace: %v %+v", err, next)
		}
		staging, _ := seal.New(cfg, t.TempDir(), &next.Config, quiet)
		if _, err := staging.Stage(ctx, next.Root); err != nil {
			t.Fatalf("stage of the right key: %v", err)
		}
		if _, err := staging.Stage(ctx, ch.Root); err == nil {
			t.Fatal("stage accepted a key the HSM does not unwrap to")
		}
		if err := next.Finish(tc.outcome); err != nil {
			t.Fatal(err)
		}
		_, oldErr := opens(ch.Config)
		_, newErr := opens(next.Config)
		if (oldErr == nil) != tc.oldOpens || (newErr == nil) != tc.newOpens {
			t.Fatalf("outcome %d: old key unwraps: %v, new: %v", tc.outcome, oldErr, newErr)
		}
		if tc.outcome == seal.Committed {
			ch = next
		}
	}
}
