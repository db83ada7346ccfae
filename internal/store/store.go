// Package store defines Strongroom's storage contract: an ordered key/value space written only in
// atomic, deterministic batches. Implementations (store/bolt on one node, a Raft-replicated store
// in a cluster) only ever receive ciphertext: the keyring seals every value before it gets here,
// so nothing in this package or below it may log, inspect or transform values.
package store

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrNotFound means the key holds no value.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a batch's precondition did not hold; nothing in the batch was applied.
	ErrConflict = errors.New("precondition failed")
	// ErrClosed means the store has been closed.
	ErrClosed = errors.New("store closed")
)

// OpKind says what an Op does.
type OpKind uint8

// Operation kinds. The numeric values are part of the replicated log format: never renumber.
const (
	OpPut           OpKind = 1 // set Key to Value
	OpDelete        OpKind = 2 // remove Key (no error if absent)
	OpRequireAbsent OpKind = 3 // precondition: Key holds no value
	OpRequireEqual  OpKind = 4 // precondition: Key holds exactly Value
	OpDeletePrefix  OpKind = 5 // remove every key starting with Key
	// OpNote changes nothing: its Value is carried in a write-ahead log with the batch and handed
	// back after a crash (the request's audit intent, intent.go). Only store implementations add
	// notes; applying one is a no-op everywhere.
	OpNote OpKind = 6
)

// Op is one step of a batch.
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte
}

// Put, Delete, DeletePrefix, RequireAbsent and RequireEqual build Ops.
func Put(key string, value []byte) Op      { return Op{Kind: OpPut, Key: key, Value: value} }
func Delete(key string) Op                 { return Op{Kind: OpDelete, Key: key} }
func DeletePrefix(prefix string) Op        { return Op{Kind: OpDeletePrefix, Key: prefix} }
func RequireAbsent(key string) Op          { return Op{Kind: OpRequireAbsent, Key: key} }
func RequireEqual(key string, v []byte) Op { return Op{Kind: OpRequireEqual, Key: key, Value: v} }

// Validate reports a malformed op before it reaches an implementation.
func (o Op) Validate() error {
	if o.Key == "" {
		return fmt.Errorf("validating op: empty key")
	}
	switch o.Kind {
	case OpPut, OpDelete, OpRequireAbsent, OpRequireEqual, OpDeletePrefix, OpNote:
		return nil
	default:
		return fmt.Errorf("validating op on %q: unknown kind %d", o.Key, o.Kind)
	}
}

// Reader reads committed state. Returned slices belong to the caller.
type Reader interface {
	// Get returns the value at key or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Scan calls fn for each key that starts with prefix and sorts after `after` (all keys when
	// after is ""), in ascending byte order, until fn returns false.
	Scan(ctx context.Context, prefix, after string, fn func(key string, value []byte) bool) error
}

// Store is the full storage contract. Implementations are safe for concurrent use.
type Store interface {
	Reader
	// Apply applies ops atomically and in order: either every op takes effect or none does. All
	// preconditions are checked against the state the batch sees, and a failed one returns
	// ErrConflict. Apply returns only once the batch is durable (fsync on one node, a quorum
	// commit in a cluster). Applying the same batch to the same state gives the same result on
	// every node, so a Raft log of batches replays deterministically.
	Apply(ctx context.Context, ops []Op) error
	// Close releases the store; later calls return ErrClosed.
	Close() error
}
