package arm

import (
	"encoding/json"
	"testing"
)

// The seal answers became types; their bytes must be what the maps they replaced encoded to
// (json sorts map keys), so a client that compared or hashed them sees no change.
func TestSealAnswers_EncodeAsTheMapsDid(t *testing.T) {
	shares := []string{"s1", "s2", "s3"}
	cases := []struct {
		name  string
		typed any
		old   map[string]any
	}{
		{"rekey shamir", RekeyResult{KeysBase64: shares, Shares: 3, Threshold: 2, Warning: "w"},
			map[string]any{"keys_base64": shares, "secret_shares": 3, "secret_threshold": 2, "warning": "w"}},
		{"rekey pkcs11", RekeyResult{Rekeyed: true, Type: "pkcs11", KeyLabel: "strongroom-root-2"},
			map[string]any{"rekeyed": true, "type": "pkcs11", "keyLabel": "strongroom-root-2"}},
		{"rekey file", RekeyResult{Rekeyed: true, Type: "file"}, map[string]any{"rekeyed": true, "type": "file"}},
		{"migrate to shamir", SealMigrateResult{From: "file", To: "shamir", KeysBase64: shares, Shares: 3, Threshold: 2, Next: "n"},
			map[string]any{"from": "file", "to": "shamir", "keys_base64": shares, "secret_shares": 3, "secret_threshold": 2, "next": "n"}},
		{"migrate to pkcs11", SealMigrateResult{From: "file", To: "pkcs11", Next: "n", Warning: "w", AdminFileRemoved: "r"},
			map[string]any{"from": "file", "to": "pkcs11", "next": "n", "warning": "w", "adminFileRemoved": "r"}},
		{"init", InitResult{KeysBase64: shares, Shares: 3, Threshold: 2},
			map[string]any{"keys_base64": shares, "secret_shares": 3, "secret_threshold": 2}},
		{"init to age recipients", InitResult{KeysAge: shares, Shares: 3, Threshold: 2},
			map[string]any{"keys_age": shares, "secret_shares": 3, "secret_threshold": 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := json.Marshal(c.typed)
			want, _ := json.Marshal(c.old)
			if string(got) != string(want) {
				t.Errorf("typed answer\n %s\nold map\n %s", got, want)
			}
		})
	}
}
