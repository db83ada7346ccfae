package service

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/strongroom/strongroom/internal/store"
)

// Destroying records. Deleting a key does not remove its bytes: bbolt keeps freed pages as they
// were and the write-ahead log keeps every logged batch until its segment is recycled, so a
// deleted record's ciphertext and wrapped data key stay in the data folder until the store is
// compacted (docs/security-model.md, "Purge"). Every path that destroys a secret, a vault or
// key material therefore goes through destroy, which asks for that erasure after the write;
// TestDestroyOnlyHere keeps deletes of records out of the other files.

// destroy runs write, which destroys ciphertext or key material, and then asks the store to
// erase the freed storage. A refusal (a domain error or a lost compare-and-set) changed
// nothing and erases nothing; any other failure may have been applied (a replicated write
// whose answer was lost), so it erases too: a needless compaction costs only time.
func (s *Service) destroy(write func() error) error {
	err := write()
	var de *Error
	if err == nil || (!errors.Is(err, errRetry) && !errors.As(err, &de)) {
		s.erased()
	}
	return err
}

// destroySecret removes every record of a secret (its head and each version) in one batch
// guarded by the head the caller read, then erases them. Hard delete, purge and the purger
// all end here; extra (the purge-due entries the secret leaves) joins the same batch.
func (s *Service) destroySecret(ctx context.Context, v *Vault, name string, headRaw []byte, extra ...store.Op) error {
	return s.destroySecrets(ctx, []secretDestroy{{v, name, headRaw, extra}})
}

// secretDestroy is one secret to destroy: its vault, name, the head read and extra ops.
type secretDestroy struct {
	v     *Vault
	name  string
	raw   []byte
	extra []store.Op
}

// destroySecrets destroys several secrets in one batch (the purger's), every head guard first:
// if any head changed since it was read, nothing is destroyed (errRetry).
func (s *Service) destroySecrets(ctx context.Context, items []secretDestroy) error {
	ops := make([]store.Op, 0, 4*len(items))
	for _, it := range items {
		ops = append(ops, store.RequireEqual(headKey(it.v, it.name), it.raw))
	}
	for _, it := range items {
		ops = append(ops, store.Delete(headKey(it.v, it.name)), store.DeletePrefix(versionPrefix(it.v, it.name)),
			store.Delete(deletedKey(it.v, it.name)),                                              // its deleted-index entry, if any (deletedindex.go)
			store.Delete(rotPolicyKey(it.v, it.name)), store.Delete(rotRecordKey(it.v, it.name))) // rotation.go
		ops = append(ops, it.extra...)
	}
	return s.destroy(func() error { return s.apply(ctx, ops) })
}

// destroyVault removes a vault's records (each sealed under its own data key) and its entry in
// one batch, then erases them. Vault purge, the purger and vault delete with soft delete off
// end here. guard (preconditions, and any other purge-due entry to drop) leads the batch, and
// a deleted vault's own purge-due entry goes with it. The caller holds vaultWrite.
func (s *Service) destroyVault(ctx context.Context, v *Vault, guard ...store.Op) error {
	ops := append(slices.Clone(guard),
		store.DeletePrefix("v/"+v.ID+"/"),
		store.Delete(vaultPrefix+strings.ToLower(v.Name)))
	if v.Deleted != nil {
		ops = append(ops, dropDue(vaultDueKey(v)))
	}
	return s.destroy(func() error { return s.apply(ctx, ops) })
}
