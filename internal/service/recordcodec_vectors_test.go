package service

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// Known-answer vectors for the stored secret records (recordcodec.go): checked-in bytes in
// testdata/record_vectors.json for binary version 2 (written), binary version 1 and JSON (read
// only), and the values they must decode to. Version-2 vectors with at most one tag (whose
// encoding does not depend on map order) must also be re-encoded byte for byte. A change of the
// encoding fails here; regenerate only for a deliberate one, keeping the old vectors readable,
// with STRONGROOM_UPDATE_VECTORS=1.

const recordVectorsFile = "testdata/record_vectors.json"

type recordVectorFile struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // "version" or "head"
	// Encoding is "binary v2", "binary v1" or "json".
	Encoding string `json:"encoding"`
	Hex      string `json:"hex"`
}

// recordVectorCase is a vector's expected value.
type recordVectorCase struct {
	name, encoding string
	version        *SecretVersion
	head           *secretHead
}

func vectorVersion() SecretVersion {
	return SecretVersion{
		Version: "0190a1b2c3d4e5f60718293a4b5c6d7e", Value: "s3cr\u00e9t\x00value", ContentType: "text/plain",
		Tags: map[string]string{"env": "dev"}, Enabled: true, NotBefore: i64(1700000000), Expires: i64(-1),
		Created: 1700000001, Updated: 1700000002, seq: 300, born: 2,
	}
}

func vectorHead() secretHead {
	item := vectorVersion()
	item.Value = "" // a head's copy of its latest version carries the value in LatestValue
	return secretHead{
		Name: "Alpha", Latest: item.Version, Deleted: &Deletion{DeletedDate: 1700000100, ScheduledPurgeDate: 1707776100},
		Item: item, LatestValue: str("s3cr\u00e9t\x00value"), Seq: 301, Origin: 1,
		Tip:      [tipLen]byte{0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff},
		PinFloor: 5, Pins: "\x01\x90\xa1\xb2\xc3\xd4\xe5\xf6\x07\x18\x29\x3a\x4b\x5c\x6d\x7d\xac\x02", // one pin: id, seq 300
	}
}

func recordVectorCases() []recordVectorCase {
	v, h := vectorVersion(), vectorHead()
	minimal := SecretVersion{Version: "00000000000000000000000000000001"}
	twoTags := vectorVersion()
	twoTags.Tags = map[string]string{"a": "1", "b": ""}
	v1 := vectorVersion()
	v1.seq, v1.born = 0, 0 // version 1 has no counters
	h1 := vectorHead()
	h1.Item.seq, h1.Item.born, h1.Seq, h1.Origin, h1.Tip, h1.PinFloor, h1.Pins = 0, 0, 0, 0, [tipLen]byte{}, 0, ""
	live := secretHead{Name: "beta", Latest: minimal.Version, Item: minimal, LatestValue: str("")}
	return []recordVectorCase{
		{name: "version, every field", encoding: "binary v2", version: &v},
		{name: "version, zero values", encoding: "binary v2", version: &minimal},
		{name: "version, two tags", encoding: "binary v2", version: &twoTags},
		{name: "head, deleted, with pins", encoding: "binary v2", head: &h},
		{name: "head, live, no counters", encoding: "binary v2", head: &live},
		{name: "version, binary v1", encoding: "binary v1", version: &v1},
		{name: "head, binary v1", encoding: "binary v1", head: &h1},
		{name: "version, json", encoding: "json", version: &v1},
		{name: "head, json", encoding: "json", head: &h1},
	}
}

// encodeVector is how each encoding is produced when the vectors are (re)generated: v2 by the
// encoder, v1 by dropping what v2 appends, JSON as records were written before the binary codec.
func encodeVector(t testing.TB, c recordVectorCase) []byte {
	t.Helper()
	var v2, js []byte
	var err error
	if c.version != nil {
		v2 = c.version.appendRecord(nil)
		js, err = json.Marshal(c.version)
	} else {
		v2 = c.head.appendRecord(nil)
		js, err = json.Marshal(c.head)
	}
	if err != nil {
		t.Fatal(err)
	}
	switch c.encoding {
	case "binary v2":
		return v2
	case "binary v1":
		if c.version != nil {
			return append([]byte{recordBinaryV1}, v2[1:len(v2)-2]...) // v2 appends seq and born (0, 0)
		}
		return headV1(c.head)
	default:
		return js
	}
}

// headV1 encodes h as version 1 did: the version 2 layout without the item's seq and born and
// without the head's counters.
func headV1(h *secretHead) []byte {
	b := []byte{recordBinaryV1, kindHead}
	b = appendString(b, h.Name)
	b = appendString(b, h.Latest)
	b = append(b, 1)
	b = binary.AppendVarint(b, h.Deleted.DeletedDate)
	b = binary.AppendVarint(b, h.Deleted.ScheduledPurgeDate)
	item := h.Item.appendFields(nil)
	b = append(b, item[:len(item)-2]...)
	return appendString(append(b, 1), *h.LatestValue)
}

func loadRecordVectors(t *testing.T) map[string]recordVectorFile {
	t.Helper()
	if os.Getenv("STRONGROOM_UPDATE_VECTORS") == "1" {
		var out []recordVectorFile
		for _, c := range recordVectorCases() {
			kind := "version"
			if c.head != nil {
				kind = "head"
			}
			out = append(out, recordVectorFile{Name: c.name, Kind: kind, Encoding: c.encoding, Hex: hex.EncodeToString(encodeVector(t, c))})
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(recordVectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(recordVectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var list []recordVectorFile
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	m := map[string]recordVectorFile{}
	for _, v := range list {
		m[v.Name] = v
	}
	return m
}

func TestRecordVectors_DecodeAndReencode(t *testing.T) {
	files := loadRecordVectors(t)
	cases := recordVectorCases()
	if len(files) != len(cases) {
		t.Fatalf("%s has %d vectors, the test %d", recordVectorsFile, len(files), len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, ok := files[c.name]
			if !ok || f.Encoding != c.encoding {
				t.Fatalf("no %s vector %q in %s", c.encoding, c.name, recordVectorsFile)
			}
			raw, err := hex.DecodeString(f.Hex)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if c.version != nil {
				var sv SecretVersion
				err = decodeStored(raw, &sv)
				got, want = sv, *c.version
			} else {
				var h secretHead
				err = decodeStored(raw, &h)
				got, want = h, *c.head
			}
			if err != nil {
				t.Fatalf("decoding the checked-in bytes: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v\nwant    %+v", got, want)
			}
			if c.encoding != "binary v2" || c.name == "version, two tags" {
				return
			}
			var enc []byte
			if c.version != nil {
				enc = c.version.appendRecord(nil)
			} else {
				enc = c.head.appendRecord(nil)
			}
			if hex.EncodeToString(enc) != f.Hex {
				t.Fatalf("the encoder changed:\n got %x\nwant %s", enc, f.Hex)
			}
		})
	}
}

// decodeStored decodes a record's plaintext as Service.open does: binary by its first byte,
// JSON otherwise.
func decodeStored(b []byte, v binaryDecoder) error {
	if len(b) > 0 && (b[0] == recordBinaryV1 || b[0] == recordBinaryV2) {
		return v.decodeRecord(b)
	}
	return json.Unmarshal(b, v)
}

// The first vector, spelled out: the layout recordcodec.go documents.
func TestRecordVectors_VersionLayout(t *testing.T) {
	want := "02" + "76" + // version 2, kind 'v'
		"20" + hex.EncodeToString([]byte("0190a1b2c3d4e5f60718293a4b5c6d7e")) + // version: uvarint length + bytes
		"0d" + hex.EncodeToString([]byte("s3cr\u00e9t\x00value")) + // value
		"0a" + hex.EncodeToString([]byte("text/plain")) + // content type
		"01" + "03" + hex.EncodeToString([]byte("env")) + "03" + hex.EncodeToString([]byte("dev")) + // one tag
		"01" + // enabled
		"01" + "80c49fd50c" + // nbf present, zig-zag varint of 1700000000
		"01" + "01" + // exp present, zig-zag varint of -1
		"82c49fd50c" + "84c49fd50c" + // created, updated
		"ac02" + "02" // seq 300, born 2 (uvarints)
	if got := hex.EncodeToString(vectorVersion().appendRecord(nil)); got != want {
		t.Fatalf("version record\n got %s\nwant %s", got, want)
	}
}
