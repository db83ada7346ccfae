package store

import "context"

// Intent is what must be made durable before a caller's batch may commit: the audit record of
// the request that causes it (the request's "intent"). An entry point that audits its requests
// plants one in the request's context; every Store implementation calls RecordIntent before it
// commits, so no change can become durable without its record, whichever package writes it.
type Intent interface {
	// RecordIntent returns once the intent is durable; an error means the batch must not commit.
	// It is called once per batch: implementations make repeated calls cheap.
	RecordIntent(ctx context.Context) error
}

type intentKey struct{}

// WithIntent returns ctx carrying in, the intent of the request ctx belongs to.
func WithIntent(ctx context.Context, in Intent) context.Context {
	return context.WithValue(ctx, intentKey{}, in)
}

// RecordIntent makes the intent planted in ctx durable, if there is one. Store implementations
// call it before a batch commits; a batch without an intent (a background job, a batch a
// cluster member forwarded, which its own node recorded) commits without one.
func RecordIntent(ctx context.Context) error {
	if in, ok := ctx.Value(intentKey{}).(Intent); ok {
		return in.RecordIntent(ctx)
	}
	return nil
}

// NotedIntent is an intent a store with a write-ahead log can make durable in the same write
// and fdatasync as the batch itself, instead of a write of its own: IntentNote returns the bytes
// to log with the batch (an OpNote) and takes on keeping them until the request's outcome is
// recorded; after a crash the store hands logged notes back (bolt.DB.RecoveredNotes).
type NotedIntent interface {
	Intent
	IntentNote(ctx context.Context) ([]byte, error)
}

// IntentNote returns the note of the intent planted in ctx, when it can travel with the batch;
// ok false means the store must call RecordIntent instead (or there is no intent).
func IntentNote(ctx context.Context) (note []byte, ok bool, err error) {
	in, isNoted := ctx.Value(intentKey{}).(NotedIntent)
	if !isNoted {
		return nil, false, nil
	}
	note, err = in.IntentNote(ctx)
	return note, err == nil, err
}
