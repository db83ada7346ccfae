package service

import (
	"reflect"
	"testing"
)

// FuzzRecordDecode feeds arbitrary plaintexts to the stored-record decoder (binary v1/v2 and the
// JSON fallback, as Service.open dispatches) for both record kinds. It must return an error or a
// value, never panic or allocate without bound; a decoded binary record must survive encoding
// and decoding again unchanged; and a decoded head's pins must be usable by the rollback
// checks (pin, setPin, versionProblem) without a panic.
func FuzzRecordDecode(f *testing.F) {
	for _, c := range recordVectorCases() {
		b := encodeVector(f, c)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{recordBinaryV2, kindHead})
	f.Add([]byte{recordBinaryV2, kindVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte(`{"name":"n","item":{"tags":{"a":"b"}},"deleted":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var sv SecretVersion
		if err := decodeStored(b, &sv); err == nil && len(b) > 0 && b[0] <= recordBinaryV2 {
			var again SecretVersion
			if err := again.decodeRecord(sv.appendRecord(nil)); err != nil || !reflect.DeepEqual(again, sv) {
				t.Fatalf("version does not survive re-encoding: %+v vs %+v, %v", again, sv, err)
			}
		}
		var h secretHead
		err := decodeStored(b, &h)
		if err != nil {
			return
		}
		if len(b) > 0 && b[0] <= recordBinaryV2 {
			var again secretHead
			if err := again.decodeRecord(h.appendRecord(nil)); err != nil || !reflect.DeepEqual(again, h) {
				t.Fatalf("head does not survive re-encoding: %+v vs %+v, %v", again, h, err)
			}
		}
		h.pin(h.Latest)
		h.pin("0190a1b2c3d4e5f60718293a4b5c6d7d")
		h.versionProblem(&sv)
		_ = h.setPin("0190a1b2c3d4e5f60718293a4b5c6d7d", 1)
	})
}
