package identity_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/strongroom/strongroom/internal/identity"
)

// Writes that destroy credential material ask for an erasure (the store's compaction), the
// others do not.
func TestService_DestroyingWritesAskForErasure(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		write    func(t *testing.T, s *identity.Service, p identity.Principal) error
		destroys bool
	}{
		{"delete principal", func(t *testing.T, s *identity.Service, p identity.Principal) error {
			return s.DeletePrincipal(ctx, p.ObjectID)
		}, true},
		{"remove client secret", func(t *testing.T, s *identity.Service, p identity.Principal) error {
			in, _, _, err := s.AddSecret(ctx, p.ObjectID, false)
			if err != nil {
				return err
			}
			_, err = s.RemoveSecret(ctx, p.ObjectID, in.Secrets[0].KeyID)
			return err
		}, true},
		{"rotate with replace", func(t *testing.T, s *identity.Service, p identity.Principal) error {
			_, _, _, err := s.AddSecret(ctx, p.ObjectID, true)
			return err
		}, true},
		{"rotate the signing key", func(t *testing.T, s *identity.Service, _ identity.Principal) error {
			_, err := s.RotateSigningKey(ctx)
			return err
		}, true},
		{"add a secret", func(t *testing.T, s *identity.Service, p identity.Principal) error {
			_, _, _, err := s.AddSecret(ctx, p.ObjectID, false)
			return err
		}, false},
		{"disable", func(t *testing.T, s *identity.Service, p identity.Principal) error {
			_, err := s.SetDisabled(ctx, p.ObjectID, true)
			return err
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var erased atomic.Int32
			s := newEnv(t).service(t, identity.Options{Erased: func() { erased.Add(1) }}, false)
			p, _ := mustCreateSP(t, s, "target")
			erased.Store(0)
			if err := tc.write(t, s, p); err != nil {
				t.Fatal(err)
			}
			if got := erased.Load() > 0; got != tc.destroys {
				t.Fatalf("erasure asked: %v, want %v", got, tc.destroys)
			}
		})
	}
}
