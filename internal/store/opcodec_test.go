package store_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/strongroom/strongroom/internal/store"
)

func TestOpCodec_RoundTripAndDamage(t *testing.T) {
	batch := []store.Op{
		store.RequireAbsent("k/a"), store.Put("k/a", []byte("value")), store.RequireEqual("k/b", []byte{0, 1, 2}),
		store.Delete("k/c"), store.DeletePrefix("v/"), store.Put("k/empty", nil),
	}
	enc := store.AppendOps(nil, batch)
	if len(enc) != store.EncodedLen(batch) {
		t.Fatalf("EncodedLen %d, encoded %d bytes", store.EncodedLen(batch), len(enc))
	}
	got, err := store.DecodeOps(enc)
	if err != nil || !reflect.DeepEqual(got, batch) {
		t.Fatalf("round trip: %v\n got %#v\nwant %#v", err, got, batch)
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", enc[:len(enc)-1]},
		{"trailing bytes", append(append([]byte{}, enc...), 0)},
		{"unknown kind", store.AppendOps(nil, []store.Op{{Kind: 99, Key: "k"}})},
		{"empty key", store.AppendOps(nil, []store.Op{{Kind: store.OpPut, Key: ""}})},
		{"huge count", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"huge length", []byte{1, byte(store.OpPut), 0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		if ops, err := store.DecodeOps(c.b); err == nil {
			t.Errorf("%s: decoded %v, want an error", c.name, ops)
		}
	}
}

// FuzzDecodeOps: no input panics or allocates without bound, and whatever decodes re-encodes to
// a batch that decodes the same.
func FuzzDecodeOps(f *testing.F) {
	f.Add(store.AppendOps(nil, []store.Op{store.Put("k", []byte("v")), store.Delete("x")}))
	f.Add([]byte{0})
	f.Add([]byte{2, 1, 1, 'k', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := store.DecodeOps(b)
		if err != nil {
			return
		}
		again, err := store.DecodeOps(store.AppendOps(nil, ops))
		if err != nil || !reflect.DeepEqual(again, ops) {
			t.Fatalf("re-encoded batch decodes to %v, %v; first %v", again, err, ops)
		}
		for _, op := range ops {
			if op.Value != nil && !bytes.Contains(b, op.Value) {
				t.Fatalf("value %q not from the input", op.Value)
			}
		}
	})
}
