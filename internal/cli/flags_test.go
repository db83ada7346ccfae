package cli

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNormalizeArgs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"tags take several values", "group create -n g --tags a=b c=d -l eastus", "group create -n g --tags=a=b --tags=c=d -l eastus"},
		{"tags at the end", "group create --tags a=b c", "group create --tags=a=b --tags=c"},
		{"bare tags clears", "keyvault update -n v --tags", "keyvault update -n v --tags="},
		{"bare tags before a flag", "keyvault update --tags -n v", "keyvault update --tags= -n v"},
		{"tags= form untouched", "group create --tags=a=b", "group create --tags=a=b"},
		{"scopes take several values", "ad sp create-for-rbac -n a --role R --scopes /s/1 /s/2", "ad sp create-for-rbac -n a --role R --scopes=/s/1 --scopes=/s/2"},
		{"ids take several values", "role assignment delete --ids /a /b", "role assignment delete --ids=/a --ids=/b"},
		{"three-state with value", "keyvault secret set-attributes --enabled false --name x", "keyvault secret set-attributes --enabled=false --name x"},
		{"three-state upper-case value", "keyvault create --enable-purge-protection TRUE", "keyvault create --enable-purge-protection=true"},
		{"three-state alone", "keyvault secret set --disabled --name x", "keyvault secret set --disabled --name x"},
		{"plain bool flag keeps next arg", "group delete --yes true", "group delete --yes true"},
		{"after double dash untouched", "group create -- --tags a b", "group create -- --tags a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(normalizeArgs(strings.Fields(tt.in)), " ")
			if got != tt.want {
				t.Errorf("normalizeArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseTags(t *testing.T) {
	tests := []struct {
		in      []string
		want    map[string]string
		wantErr bool
	}{
		{in: nil, want: map[string]string{}},
		{in: []string{""}, want: map[string]string{}},
		{in: []string{"a=b", "c", "d=e=f", "empty="}, want: map[string]string{"a": "b", "c": "", "d": "e=f", "empty": ""}},
		{in: []string{"=x"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseTags(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseTags(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		flat := map[string]string{}
		for k, v := range got {
			flat[k] = *v
		}
		if !reflect.DeepEqual(flat, tt.want) {
			t.Errorf("parseTags(%q) = %v, want %v", tt.in, flat, tt.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2027-12-31T01:11:59Z", utc(2027, 12, 31, 1, 11, 59), true},
		{"2027-12-31T01:11Z", utc(2027, 12, 31, 1, 11, 0), true},
		{"2027-12-31T01Z", utc(2027, 12, 31, 1, 0, 0), true},
		{"2027-12-31", utc(2027, 12, 31, 0, 0, 0), true},
		{"2027-12-31T01:11:59+02:00", utc(2027, 12, 30, 23, 11, 59), true},
		{"2027-12-31T01:11:59.5Z", utc(2027, 12, 31, 1, 11, 59).Add(500 * time.Millisecond), true},
		{"2027-12-31T01:11:59", utc(2027, 12, 31, 1, 11, 59), true},
		{"2027-12-31 01:11:59", utc(2027, 12, 31, 1, 11, 59), true},
		{"31/12/2027", time.Time{}, false},
		{"tomorrow", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := parseDate("--expires", tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("parseDate(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && !got.Equal(tt.want) {
			t.Errorf("parseDate(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if err != nil && (exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--expires")) {
			t.Errorf("parseDate(%q) error %q: want a usage error naming the flag", tt.in, err)
		}
	}
}

func TestEncodeSecretFile(t *testing.T) {
	tests := []struct {
		name, encoding string
		content        []byte
		want           string
		wantErr        bool
	}{
		{"utf-8 text", "utf-8", []byte("héllo\n"), "héllo\n", false},
		{"utf-8 universal newlines", "utf-8", []byte("a\r\nb\rc\n"), "a\nb\nc\n", false},
		{"utf-8 rejects binary", "utf-8", []byte{0xff, 0xfe, 0x00}, "", true},
		{"ascii text", "ascii", []byte("plain"), "plain", false},
		{"ascii rejects non-ascii", "ascii", []byte("héllo"), "", true},
		{"base64", "base64", []byte{0x00, 0xff, 0x10}, "AP8Q", false},
		{"hex", "hex", []byte{0x00, 0xff, 0x10}, "00ff10", false},
		{"unknown encoding", "utf-16", []byte("x"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeSecretFile(tt.content, tt.encoding)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err != nil || tt.encoding == "utf-8" && strings.Contains(string(tt.content), "\r") {
				return
			}
			back, err := decodeSecretValue(got, tt.encoding)
			if err != nil || string(back) != string(tt.content) {
				t.Errorf("decodeSecretValue(%q) = %q, %v; want the original content", got, back, err)
			}
		})
	}
}

func TestParseSecretID(t *testing.T) {
	tests := []struct {
		id       string
		needName bool
		want     resolved
		wantErr  bool
	}{
		{"https://kv.vault.localhost:8443/secrets/s", true, resolved{"https://kv.vault.localhost:8443/", "s", ""}, false},
		{"https://kv.vault.localhost:8443/secrets/s/abc123", true, resolved{"https://kv.vault.localhost:8443/", "s", "abc123"}, false},
		{"https://kv.vault.localhost:8443/secrets/s/", true, resolved{"https://kv.vault.localhost:8443/", "s", ""}, false},
		{"https://kv.vault.localhost:8443/deletedsecrets/s", true, resolved{"https://kv.vault.localhost:8443/", "s", ""}, false},
		{"https://kv.vault.localhost:8443/", false, resolved{vaultURL: "https://kv.vault.localhost:8443/"}, false},
		{"https://kv.vault.localhost:8443/", true, resolved{}, true},
		{"https://kv.vault.localhost:8443/keys/k", true, resolved{}, true},
		{"https://kv.vault.localhost:8443/secrets/s/v/extra", true, resolved{}, true},
		{"http://kv.vault.localhost:8443/secrets/s", true, resolved{}, true},
		{"kv/secrets/s", true, resolved{}, true},
	}
	for _, tt := range tests {
		got, err := parseSecretID(tt.id, tt.needName)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseSecretID(%q) error = %v, wantErr %v", tt.id, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("parseSecretID(%q) = %+v, want %+v", tt.id, got, tt.want)
		}
	}
}

func TestSecretTargetResolve(t *testing.T) {
	s := &session{profile: &Profile{KeyVaultDNS: "vault.localhost:8443"}}
	tests := []struct {
		name    string
		target  secretTarget
		want    resolved
		wantErr bool
	}{
		{"names", secretTarget{vaultName: "MyKeyVault", name: "s", version: "v1", withName: true}, resolved{"https://mykeyvault.vault.localhost:8443/", "s", "v1"}, false},
		{"id", secretTarget{id: "https://kv.vault.localhost:8443/secrets/s/v", withName: true}, resolved{"https://kv.vault.localhost:8443/", "s", "v"}, false},
		{"vault only", secretTarget{vaultName: "kv"}, resolved{vaultURL: "https://kv.vault.localhost:8443/"}, false},
		{"id and name", secretTarget{id: "https://kv.vault.localhost:8443/secrets/s", name: "s", withName: true}, resolved{}, true},
		{"missing vault", secretTarget{name: "s", withName: true}, resolved{}, true},
		{"missing name", secretTarget{vaultName: "kv", withName: true}, resolved{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.target.resolve(s)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestIsoTime(t *testing.T) {
	tm := time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	if got := *isoTime(&tm); got != "2026-05-01T11:00:00+00:00" {
		t.Errorf("isoTime = %q", got)
	}
	tm = tm.Add(1500 * time.Microsecond)
	if got := *isoTime(&tm); got != "2026-05-01T11:00:00.001500+00:00" {
		t.Errorf("isoTime with fraction = %q", got)
	}
	if isoTime(nil) != nil {
		t.Error("isoTime(nil) != nil")
	}
}
