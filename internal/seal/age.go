package seal

import (
	"bytes"
	"fmt"
	"io"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// EncryptShares encrypts share i to recipients[i] (age X25519 public keys, "age1..."), so each
// operator receives a share only they can read. It returns ASCII-armored age files.
func EncryptShares(shares, recipients []string) ([]string, error) {
	if len(recipients) != len(shares) {
		return nil, fmt.Errorf("encrypting shares: %d age recipients for %d shares (give one per share)", len(recipients), len(shares))
	}
	out := make([]string, len(shares))
	for i, r := range recipients {
		rcpt, err := age.ParseX25519Recipient(r)
		if err != nil {
			return nil, fmt.Errorf("encrypting share %d: recipient %d: %w", i+1, i+1, err)
		}
		var buf bytes.Buffer
		aw := armor.NewWriter(&buf)
		w, err := age.Encrypt(aw, rcpt)
		if err != nil {
			return nil, fmt.Errorf("encrypting share %d: %w", i+1, err)
		}
		if _, err := io.WriteString(w, shares[i]); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		if err := aw.Close(); err != nil {
			return nil, err
		}
		out[i] = buf.String()
	}
	return out, nil
}
