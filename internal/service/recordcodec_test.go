package service

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

func i64(v int64) *int64   { return &v }
func str(v string) *string { return &v }

func TestRecordCodec_RoundTrip(t *testing.T) {
	full := SecretVersion{
		Version: "0123456789abcdef0123456789abcdef", Value: "v\x00al\"ue ünï", ContentType: "text/plain",
		Tags: map[string]string{"a": "1", "": "empty name", "ключ": "знач"}, Enabled: true,
		NotBefore: i64(-5), Expires: i64(1 << 40), Created: 1700000000, Updated: 1700000001,
		seq: 1 << 52, born: 7,
	}
	versions := []SecretVersion{{}, full, {Version: "x", Enabled: false, Created: -1}}
	for i, sv := range versions {
		var got SecretVersion
		if err := got.decodeRecord(sv.appendRecord(nil)); err != nil {
			t.Fatalf("version %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, sv) {
			t.Errorf("version %d: got %+v, want %+v", i, got, sv)
		}
	}
	heads := []secretHead{
		{},
		{Name: "n", Latest: full.Version, Item: full, LatestValue: str("")},
		{Name: "counted", Latest: full.Version, Item: full, Seq: 1<<52 + 3, Origin: 1 << 52, Tip: [tipLen]byte{1, 2, 3, 15: 9}, PinFloor: 4, Pins: "0123456789abcdef\x05"},
		{Name: "Deleted-One", Deleted: &Deletion{DeletedDate: 1, ScheduledPurgeDate: 2}, Item: SecretVersion{Enabled: true}, LatestValue: str("latest")},
	}
	for i, h := range heads {
		var got secretHead
		if err := got.decodeRecord(h.appendRecord(nil)); err != nil {
			t.Fatalf("head %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, h) {
			t.Errorf("head %d: got %+v, want %+v", i, got, h)
		}
	}
}

// Version 1 records (written before the rollback counters) still decode, with the counters
// zero.
func TestRecordCodec_ReadsV1(t *testing.T) {
	sv := SecretVersion{Version: "0123456789abcdef0123456789abcdef", Value: "v", Enabled: true, Created: 5, Updated: 6}
	enc := sv.appendRecord(nil)
	v1 := append([]byte{recordBinaryV1}, enc[1:len(enc)-2]...) // v2 appends seq and born (0, 0)
	var got SecretVersion
	if err := got.decodeRecord(v1); err != nil || !reflect.DeepEqual(got, sv) {
		t.Fatalf("v1 version = %+v, %v; want %+v", got, err, sv)
	}
	if err := got.decodeRecord(append(v1, 0, 0)); err == nil {
		t.Error("a v1 record with v2 fields decoded")
	}
}

func TestRecordCodec_RejectsMalformed(t *testing.T) {
	h := secretHead{Name: "n", Latest: "l", Deleted: &Deletion{1, 2}, LatestValue: str("value"),
		Item: SecretVersion{Version: "l", Tags: map[string]string{"k": "v"}, NotBefore: i64(3)}}
	enc := h.appendRecord(nil)
	for n := 0; n < len(enc); n++ {
		var got secretHead
		if err := got.decodeRecord(enc[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: decoded without error", n, len(enc))
		}
	}
	var got secretHead
	if err := got.decodeRecord(append(enc, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	var sv SecretVersion
	if err := sv.decodeRecord(enc); err == nil {
		t.Error("a head decoded as a version")
	}
}

// Records written before the binary encoding are JSON; open must still read them, and seal
// must write the binary form.
func TestRecordCodec_ReadsLegacyJSON(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{kr: kr}
	h := secretHead{Name: "n", Latest: "l", LatestValue: str("value"), Item: SecretVersion{Version: "l", Enabled: true, Created: 7}}
	legacy, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	sealedJSON, err := kr.Seal(ctx, "d", "k", legacy)
	if err != nil {
		t.Fatal(err)
	}
	sealedBin, err := s.seal(ctx, "d", "k", h)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := kr.Open(ctx, "d", "k", sealedBin); err != nil || pt[0] != recordBinaryV2 {
		t.Fatalf("seal wrote %q, %v; want the binary encoding", pt, err)
	}
	for name, raw := range map[string][]byte{"json": sealedJSON, "binary": sealedBin} {
		var got secretHead
		if err := s.open(ctx, "d", "k", raw, &got); err != nil || !reflect.DeepEqual(got, h) {
			t.Errorf("%s: open = %+v, %v", name, got, err)
		}
	}
}

// The tip's key, derived from the head's on the read path, is the one writes use: right
// after the versions, inside the prefix destroySecret deletes.
func TestTipKey(t *testing.T) {
	for _, c := range []struct {
		layout int
		want   string
	}{{LayoutSplit, "v/id1/x/NAME-A/}"}, {LayoutColocated, "v/id1/n/NAME-A!}"}} {
		v := &Vault{ID: "id1", Layout: c.layout}
		if got := tipKey(v, "name-a"); got != c.want || got != versionPrefix(v, "name-a")+tipSuffix {
			t.Errorf("layout %d: tip key %q, want %q", c.layout, got, c.want)
		}
	}
}
