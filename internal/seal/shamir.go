package seal

import (
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
