package keyring

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// Backup blobs are sealed under a deployment backup key rather than a term, because restoring
// after a purge is their purpose. Backup keys rotate (new blobs use the newest) and can be
// revoked, which makes every blob made under that key unusable.
//
// Sealed backup format, version 1: byte 0 = 1 | backup key id (uint32 BE) | 12-byte nonce |
// AES-256-GCM(backup key, plaintext), AAD "strongroom/backup/v1\x00" + purpose.

// SealBackup encrypts a backup payload under the active backup key.
func (k *Keyring) SealBackup(purpose string, plaintext []byte) ([]byte, error) {
	s := k.state()
	id := s.ring.BackupNext
	a := s.backupKeys[id]
	if a == nil {
		return nil, fmt.Errorf("sealing backup: %w", ErrBackupKeyRevoked)
	}
	out := make([]byte, 5+nonceSize, 5+nonceSize+len(plaintext)+tagSize)
	out[0] = 1
	binary.BigEndian.PutUint32(out[1:5], id)
	if _, err := rand.Read(out[5:]); err != nil {
		return nil, err
	}
	return a.Seal(out, out[5:], plaintext, []byte("strongroom/backup/v1\x00"+purpose)), nil
}

// OpenBackup decrypts a sealed backup payload.
func (k *Keyring) OpenBackup(purpose string, blob []byte) ([]byte, error) {
	if len(blob) < 5+nonceSize+tagSize || blob[0] != 1 {
		return nil, ErrDecrypt
	}
	s := k.state()
	a := s.backupKeys[binary.BigEndian.Uint32(blob[1:5])]
	if a == nil {
		return nil, ErrBackupKeyRevoked
	}
	pt, err := a.Open(nil, blob[5:5+nonceSize], blob[5+nonceSize:], []byte("strongroom/backup/v1\x00"+purpose))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// RotateBackupKey adds a backup key that new backups use; older ones still restore.
func (k *Keyring) RotateBackupKey(ctx context.Context) (uint32, error) {
	var id uint32
	err := k.change(ctx, func(r *ring) error {
		for t := range r.BackupKeys {
			id = max(id, t)
		}
		id = max(id, r.BackupNext) + 1
		r.BackupKeys[id] = randKey()
		r.BackupNext = id
		return nil
	})
	return id, err
}

// RevokeBackupKey destroys backup key id: blobs made under it can no longer be restored.
func (k *Keyring) RevokeBackupKey(ctx context.Context, id uint32) error {
	return k.change(ctx, func(r *ring) error {
		if r.BackupKeys[id] == nil {
			return fmt.Errorf("revoking backup key %d: no such key", id)
		}
		clear(r.BackupKeys[id])
		delete(r.BackupKeys, id)
		return nil
	})
}
