package identity_test

import (
	"context"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/identity"
)

// FuzzService_Verify feeds arbitrary bearer values to Verify: it must never panic, and anything
// it accepts must carry exactly the claims of the one token this deployment minted.
func FuzzService_Verify(f *testing.F) {
	ctx := context.Background()
	clk := newFakeClock()
	e := newEnv(f)
	s, err := identity.New(ctx, e.st, e.kr, identity.FastKDF(identity.Options{PublicURL: testPublicURL, Now: clk.Now}))
	if err != nil {
		f.Fatal(err)
	}
	p, secret, err := s.CreateServicePrincipal(ctx, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	tok, err := s.ClientCredentials(ctx, "", p.AppID, secret, "https://vault.localhost:8443/.default")
	if err != nil {
		f.Fatal(err)
	}
	want, err := s.Verify(ctx, tok.AccessToken, vaultAudiences)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(tok.AccessToken, ".")
	for _, seed := range []string{
		tok.AccessToken,
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		"." + parts[1] + "." + parts[2],
		tok.AccessToken + ".x",
		"eyJhbGciOiJub25lIn0.e30.",
		"a.b.c", "", "....", "Bearer " + tok.AccessToken,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := s.Verify(ctx, raw, vaultAudiences)
		if err != nil {
			return
		}
		if got.Principal != want.Principal || got.TokenID != want.TokenID || got.Audience != want.Audience || !got.Expiry.Equal(want.Expiry) {
			t.Fatalf("Verify accepted %q with claims %+v, want only %+v", raw, got, want)
		}
	})
}
