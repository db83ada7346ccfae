package seal

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/vault/shamir"
)

// SplitRootKey makes a fresh 32-byte root key and splits it into n shares, any k of which
// rebuild it. Shares are returned base64-encoded.
func SplitRootKey(n, k int) (root []byte, shares []string, err error) {
	if k < 2 || n < k || n > 255 {
		return nil, nil, fmt.Errorf("splitting root key: need 2 <= threshold <= shares <= 255 (got %d of %d)", k, n)
	}
	root = make([]byte, 32)
	if _, err := rand.Read(root); err != nil {
		return nil, nil, err
	}
	parts, err := shamir.Split(root, n, k)
	if err != nil {
		return nil, nil, fmt.Errorf("splitting root key: %w", err)
	}
	for _, p := range parts {
		shares = append(shares, base64.StdEncoding.EncodeToString(p))
		clear(p)
	}
	return root, shares, nil
}

// ErrBadShare means a share is malformed (not base64, wrong length, or repeated).
var ErrBadShare = errors.New("malformed unseal share")

// Unsealer collects shares until the threshold is met. It is safe for concurrent use.
type Unsealer struct {
	mu        sync.Mutex
	threshold int
	shares    [][]byte
}

// NewUnsealer starts collecting for a threshold of k.
func NewUnsealer(k int) *Unsealer { return &Unsealer{threshold: k} }

// Progress returns how many distinct shares are held and the threshold.
func (u *Unsealer) Progress() (int, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.shares), u.threshold
}

// Reset forgets the shares collected so far.
func (u *Unsealer) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, s := range u.shares {
		clear(s)
	}
	u.shares = nil
}

// Add adds one share. When the threshold is reached it returns the combined key and forgets
// the shares; the caller verifies the key (a wrong share yields a wrong key, not an error here).
func (u *Unsealer) Add(share string) (root []byte, err error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(share))
	if err != nil || len(b) != 33 {
		return nil, ErrBadShare
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, s := range u.shares {
		if subtle.ConstantTimeCompare(s, b) == 1 {
			return nil, fmt.Errorf("%w: this share was already entered", ErrBadShare)
		}
	}
	u.shares = append(u.shares, b)
	if len(u.shares) < u.threshold {
		return nil, nil
	}
	root, err = shamir.Combine(u.shares)
	for _, s := range u.shares {
		clear(s)
	}
	u.shares = nil
	if err != nil {
		return nil, fmt.Errorf("combining shares: %w", ErrBadShare)
	}
	return root, nil
}

// shamirSeal is the Seal whose root key exists only while a threshold of operators' shares is
// combined: it writes nothing, and Unseal always answers ErrNeedsShares.
type shamirSeal struct {
	rec *Config
	*Unsealer
}

func newShamirSeal(rec *Config) *shamirSeal {
	s := &shamirSeal{rec: rec, Unsealer: NewUnsealer(0)}
	if rec != nil {
		s.Unsealer = NewUnsealer(rec.Threshold)
	}
	return s
}

func (s *shamirSeal) Type() Type { return Shamir }

func (s *shamirSeal) Status() Status {
	st := Status{Type: Shamir}
	if s.rec != nil {
		st.Shares, st.Threshold = s.rec.Shares, s.rec.Threshold
		st.Progress, _ = s.Progress()
	}
	return st
}

func (s *shamirSeal) Unseal(context.Context, KeyCheck) ([]byte, error) { return nil, ErrNeedsShares }

func (s *shamirSeal) Init(_ context.Context, p Params) (*Change, error) {
	root, shares, err := SplitRootKey(p.Shares, p.Threshold)
	if err != nil {
		return nil, err
	}
	return &Change{Root: root, Shares: shares, Config: Config{Type: Shamir, Shares: p.Shares, Threshold: p.Threshold}}, nil
}

// Replace splits a new key; a rekey with no share counts keeps the recorded ones.
func (s *shamirSeal) Replace(ctx context.Context, p Params) (*Change, error) {
	if p.Shares == 0 && s.rec != nil {
		p.Shares, p.Threshold = s.rec.Shares, s.rec.Threshold
	}
	ch, err := s.Init(ctx, p)
	if err == nil {
		ch.Note = "the previous unseal shares no longer work"
	}
	return ch, err
}

func (s *shamirSeal) Stage(context.Context, []byte) (*Staged, error) { return &Staged{}, nil }

func (s *shamirSeal) Retire() error { return nil }
