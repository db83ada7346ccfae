package keyring

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sealed records. Version 3 (written since records carry the keyring generation) has the
// byte layout of version 2, so tools that locate the wrapped key and the ciphertext by offset
// work on both; only the plaintext and the record AAD differ:
//
//	byte  0       format version (3; 2 is still read)
//	bytes 1-4     keyring term that wraps the DEK, big-endian uint32
//	bytes 5-64    wrapped DEK: 12-byte nonce | AES-256-GCM(term key, DEK)
//	bytes 65-76   12-byte nonce
//	bytes 77-     AES-256-GCM(DEK, generation (uint64 BE) | plaintext)
//
// AAD of the wrapped DEK (both versions): "strongroom/dek/v2\x00" + domain + "\x00" + storageKey.
// AAD of the ciphertext: "strongroom/record/v3\x00" + domain + "\x00" + storageKey (v2: the
// same with "v2"). The generation is the keyring's at sealing time (ring.Gen, raised by every
// keyring change); a record whose generation is above the loaded keyring's proves the keyring
// record was replaced by an older copy, and Open refuses it (ErrRolledBack).
const (
	formatV2 = 2
	formatV3 = 3
	genLen   = 8
)

// ErrRolledBack means a record was sealed under a newer keyring than the one in the store: the
// keyring record was replaced by an older copy (terms, backup keys or their revocations rolled
// back).
var ErrRolledBack = errors.New("record is newer than the keyring: the keyring record was rolled back")

// Seal encrypts plaintext for storage at storageKey in domain under a fresh DEK.
func (k *Keyring) Seal(_ context.Context, domain, storageKey string, plaintext []byte) ([]byte, error) {
	s := k.state()
	term := s.ring.Active
	dek := randKey()
	defer clear(dek)
	out := make([]byte, headerLen, headerLen+genLen+len(plaintext)+tagSize)
	out[0] = formatV3
	binary.BigEndian.PutUint32(out[1:5], term)
	w := out[5 : 5+wrappedLen]
	if _, err := rand.Read(w[:nonceSize]); err != nil {
		return nil, fmt.Errorf("generating nonce: %w", err)
	}
	var buf [aadBufLen]byte
	s.terms[term].Seal(w[nonceSize:nonceSize], w[:nonceSize], dek, appendAAD(buf[:0], "dek", formatV2, domain, storageKey))
	nonce := out[5+wrappedLen : headerLen]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generating nonce: %w", err)
	}
	a, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	s.deks.put(out[1:5+wrappedLen], a) // the record is usually read back soon
	// The generation and the plaintext are encrypted in place after the header, in one pass.
	body := binary.BigEndian.AppendUint64(out, s.ring.Gen)
	body = append(body, plaintext...)
	sealed := a.Seal(out, nonce, body[headerLen:], appendAAD(buf[:0], "record", formatV3, domain, storageKey))
	return sealed, nil
}

// Open decrypts a record read from storageKey in domain.
func (k *Keyring) Open(ctx context.Context, domain, storageKey string, record []byte) ([]byte, error) {
	s := k.state()
	a, err := s.recordAEAD(domain, storageKey, record)
	if err != nil {
		return nil, fmt.Errorf("opening record %q: %w", storageKey, err)
	}
	var buf [aadBufLen]byte
	pt, err := a.Open(nil, record[5+wrappedLen:headerLen], record[headerLen:], appendAAD(buf[:0], "record", record[0], domain, storageKey))
	if err != nil {
		return nil, fmt.Errorf("opening record %q: %w", storageKey, ErrDecrypt)
	}
	if record[0] == formatV2 {
		return pt, nil
	}
	if len(pt) < genLen {
		return nil, fmt.Errorf("opening record %q: %w", storageKey, ErrDecrypt)
	}
	if gen := binary.BigEndian.Uint64(pt); gen > s.ring.Gen {
		// Another node may have changed the keyring and this one not have reloaded it yet.
		if err := k.Reload(ctx); err != nil {
			clear(pt)
			return nil, fmt.Errorf("opening record %q: reloading the keyring: %w", storageKey, err)
		}
		if have := k.state().ring.Gen; gen > have {
			clear(pt)
			return nil, fmt.Errorf("opening record %q (generation %d, keyring %d): %w", storageKey, gen, have, ErrRolledBack)
		}
	}
	return pt[genLen:], nil
}

// recordAEAD returns the AEAD of record's DEK, from the cache or by unwrapping it. A cached DEK
// skips the wrapped key's own authentication, which is safe: the record's ciphertext is bound
// to the same domain and storage key by its AAD, so a record moved elsewhere still fails.
func (s *state) recordAEAD(domain, storageKey string, record []byte) (cipher.AEAD, error) {
	if err := checkFormat(record); err != nil {
		return nil, err
	}
	id := record[1 : 5+wrappedLen]
	if a := s.deks.get(id); a != nil {
		return a, nil
	}
	dek, err := s.unwrap(domain, storageKey, record)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	a, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	s.deks.put(id, a)
	return a, nil
}

func checkFormat(record []byte) error {
	if len(record) < headerLen+tagSize {
		return fmt.Errorf("record too short: %w", ErrDecrypt)
	}
	if record[0] != formatV2 && record[0] != formatV3 {
		return fmt.Errorf("unsupported record format %d: %w", record[0], ErrDecrypt)
	}
	return nil
}

func (s *state) unwrap(domain, storageKey string, record []byte) ([]byte, error) {
	if err := checkFormat(record); err != nil {
		return nil, err
	}
	term := binary.BigEndian.Uint32(record[1:5])
	t := s.terms[term]
	if t == nil {
		return nil, fmt.Errorf("term %d: %w", term, ErrUnknownTerm)
	}
	w := record[5 : 5+wrappedLen]
	var buf [aadBufLen]byte
	dek, err := t.Open(nil, w[:nonceSize], w[nonceSize:], appendAAD(buf[:0], "dek", formatV2, domain, storageKey))
	if err != nil {
		return nil, ErrDecrypt
	}
	return dek, nil
}

// Term returns the keyring term a record's DEK is wrapped under.
func Term(record []byte) (uint32, bool) {
	if len(record) < headerLen || record[0] != formatV2 && record[0] != formatV3 {
		return 0, false
	}
	return binary.BigEndian.Uint32(record[1:5]), true
}

// Rewrap returns record with its DEK re-wrapped under the active term (the ciphertext, and so
// the record's format and generation, are unchanged), or changed=false when it already uses
// the active term.
func (k *Keyring) Rewrap(domain, storageKey string, record []byte) (out []byte, changed bool, err error) {
	s := k.state()
	if t, ok := Term(record); ok && t == s.ring.Active {
		return record, false, nil
	}
	dek, err := s.unwrap(domain, storageKey, record)
	if err != nil {
		return nil, false, fmt.Errorf("rewrapping %q: %w", storageKey, err)
	}
	defer clear(dek)
	out = append([]byte(nil), record...)
	binary.BigEndian.PutUint32(out[1:5], s.ring.Active)
	w := out[5 : 5+wrappedLen]
	if _, err := rand.Read(w[:nonceSize]); err != nil {
		return nil, false, err
	}
	s.terms[s.ring.Active].Seal(w[nonceSize:nonceSize], w[:nonceSize], dek, appendAAD(nil, "dek", formatV2, domain, storageKey))
	return out, true, nil
}

// aadBufLen fits the AAD of typical storage keys on the stack.
const aadBufLen = 192

// appendAAD appends "strongroom/<kind>/v<format>\x00<domain>\x00<storageKey>".
func appendAAD(dst []byte, kind string, format byte, domain, storageKey string) []byte {
	dst = append(dst, "strongroom/"...)
	dst = append(dst, kind...)
	dst = append(dst, "/v"...)
	dst = append(dst, '0'+format)
	dst = append(dst, 0)
	dst = append(dst, domain...)
	dst = append(dst, 0)
	return append(dst, storageKey...)
}
