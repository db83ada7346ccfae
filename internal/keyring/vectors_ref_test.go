package keyring_test

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
)

// A reference implementation of the formats keyring.go, record.go, rootwrap.go and backup.go
// document, written from those comments and sharing no code with the package: the known-answer
// vectors (vectors_test.go) are made by it with fixed keys and nonces, and everything the
// package writes must decode with it. A format change therefore fails here until this file,
// the checked-in vectors and the format comments are changed together.

func refGCM(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // the vectors' keys are 32 bytes
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

// refAAD is "strongroom/<kind>/v<n>\x00<domain>\x00<storage key>".
func refAAD(kind string, version int, domain, storageKey string) []byte {
	return []byte(fmt.Sprintf("strongroom/%s/v%d\x00%s\x00%s", kind, version, domain, storageKey))
}

// refSealRing is the keyring record: 0x01 | nonce | AES-256-GCM(root, ring JSON), AAD
// "strongroom/keyring/v1".
func refSealRing(root, nonce, ringJSON []byte) []byte {
	out := append([]byte{1}, nonce...)
	return refGCM(root).Seal(out, nonce, ringJSON, []byte("strongroom/keyring/v1"))
}

func refOpenRing(root, rec []byte) ([]byte, error) {
	if len(rec) < 1+12+16 || rec[0] != 1 {
		return nil, errors.New("not a version-1 keyring record")
	}
	return refGCM(root).Open(nil, rec[1:13], rec[13:], []byte("strongroom/keyring/v1"))
}

// refSealRecord is a sealed record of format 2 or 3:
//
//	format | term (uint32 BE) | wrap nonce | GCM(term key, DEK, dek AAD v2) | nonce |
//	GCM(DEK, [generation uint64 BE, format 3 only] | plaintext, record AAD v<format>)
func refSealRecord(format byte, term uint32, termKey, dek, wrapNonce, nonce []byte, gen uint64, domain, storageKey string, plaintext []byte) []byte {
	out := []byte{format}
	out = binary.BigEndian.AppendUint32(out, term)
	out = append(out, wrapNonce...)
	out = refGCM(termKey).Seal(out, wrapNonce, dek, refAAD("dek", 2, domain, storageKey))
	out = append(out, nonce...)
	body := plaintext
	if format == 3 {
		body = binary.BigEndian.AppendUint64(nil, gen)
		body = append(body, plaintext...)
	}
	return refGCM(dek).Seal(out, nonce, body, refAAD("record", int(format), domain, storageKey))
}

// refRecord is a sealed record taken apart.
type refRecord struct {
	format    byte
	term      uint32
	dek       []byte
	gen       uint64 // format 3 only
	plaintext []byte
}

func refOpenRecord(termKeys map[uint32][]byte, domain, storageKey string, rec []byte) (refRecord, error) {
	const header = 1 + 4 + 12 + 32 + 16 + 12
	if len(rec) < header+16 || (rec[0] != 2 && rec[0] != 3) {
		return refRecord{}, errors.New("not a format-2 or -3 record")
	}
	r := refRecord{format: rec[0], term: binary.BigEndian.Uint32(rec[1:5])}
	key, ok := termKeys[r.term]
	if !ok {
		return refRecord{}, fmt.Errorf("no term %d", r.term)
	}
	dek, err := refGCM(key).Open(nil, rec[5:17], rec[17:65], refAAD("dek", 2, domain, storageKey))
	if err != nil {
		return refRecord{}, fmt.Errorf("unwrapping the data key: %w", err)
	}
	r.dek = dek
	body, err := refGCM(dek).Open(nil, rec[65:77], rec[77:], refAAD("record", int(r.format), domain, storageKey))
	if err != nil {
		return refRecord{}, fmt.Errorf("opening the body: %w", err)
	}
	if r.format == 3 {
		if len(body) < 8 {
			return refRecord{}, errors.New("format-3 body without a generation")
		}
		r.gen, body = binary.BigEndian.Uint64(body), body[8:]
	}
	r.plaintext = body
	return r, nil
}

// refSealRoot is a root-wrapped blob: 0x01 | nonce | GCM(root, plaintext), AAD
// "strongroom/root-wrap/v1\x00" + purpose.
func refSealRoot(root, nonce []byte, purpose string, plaintext []byte) []byte {
	return refGCM(root).Seal(append([]byte{1}, nonce...), nonce, plaintext, []byte("strongroom/root-wrap/v1\x00"+purpose))
}

func refOpenRoot(root []byte, purpose string, blob []byte) ([]byte, error) {
	if len(blob) < 1+12+16 || blob[0] != 1 {
		return nil, errors.New("not a version-1 root-wrapped blob")
	}
	return refGCM(root).Open(nil, blob[1:13], blob[13:], []byte("strongroom/root-wrap/v1\x00"+purpose))
}

// refSealBackup is a sealed backup: 0x01 | backup key id (uint32 BE) | nonce | GCM(backup key,
// plaintext), AAD "strongroom/backup/v1\x00" + purpose.
func refSealBackup(key []byte, id uint32, nonce []byte, purpose string, plaintext []byte) []byte {
	out := binary.BigEndian.AppendUint32([]byte{1}, id)
	out = append(out, nonce...)
	return refGCM(key).Seal(out, nonce, plaintext, []byte("strongroom/backup/v1\x00"+purpose))
}

func refOpenBackup(keys map[uint32][]byte, purpose string, blob []byte) (uint32, []byte, error) {
	if len(blob) < 1+4+12+16 || blob[0] != 1 {
		return 0, nil, errors.New("not a version-1 sealed backup")
	}
	id := binary.BigEndian.Uint32(blob[1:5])
	key, ok := keys[id]
	if !ok {
		return 0, nil, fmt.Errorf("no backup key %d", id)
	}
	pt, err := refGCM(key).Open(nil, blob[5:17], blob[17:], []byte("strongroom/backup/v1\x00"+purpose))
	return id, pt, err
}
