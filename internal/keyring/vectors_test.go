package keyring_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sort"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Known-answer vectors for the keyring record, sealed records (formats 2 and 3), root-wrapped
// blobs and sealed backups, in testdata/vectors.json: fixed keys and nonces, the bytes the
// reference encoder (vectors_ref_test.go) makes of them, and what the package must read from
// those bytes. Regenerate (only for a deliberate format change, keeping the old vectors that
// stored data still needs) with STRONGROOM_UPDATE_VECTORS=1.

const vectorsFile = "testdata/vectors.json"

type ringVector struct {
	RootKey string `json:"rootKey"`
	JSON    string `json:"json"` // the ring plaintext
	Nonce   string `json:"nonce"`
	Record  string `json:"record"` // what sys/keyring holds
}

type recordVector struct {
	Name       string `json:"name"`
	Format     byte   `json:"format"`
	Term       uint32 `json:"term"`
	Generation uint64 `json:"generation,omitempty"`
	Domain     string `json:"domain"`
	StorageKey string `json:"storageKey"`
	DEK        string `json:"dek"`
	WrapNonce  string `json:"wrapNonce"`
	Nonce      string `json:"nonce"`
	Plaintext  string `json:"plaintext"`
	Record     string `json:"record"`
	// Want is what Open must do: "open" (return Plaintext) or "rolled back".
	Want string `json:"want"`
}

type blobVector struct {
	Purpose   string `json:"purpose"`
	KeyID     uint32 `json:"keyId,omitempty"` // backups only
	Nonce     string `json:"nonce"`
	Plaintext string `json:"plaintext"`
	Blob      string `json:"blob"`
}

type keyringVectors struct {
	Ring     ringVector     `json:"ring"`
	Records  []recordVector `json:"records"`
	RootWrap blobVector     `json:"rootWrap"`
	Backup   blobVector     `json:"backup"`
}

// pattern returns n bytes start, start+1, ...: fixed, distinct keys and nonces.
func pattern(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

var (
	vecRoot   = pattern(0x00, 32)
	vecTerm1  = pattern(0x20, 32)
	vecTerm2  = pattern(0x40, 32)
	vecBackup = pattern(0x60, 32)
)

// ringGen is the generation of the vectors' keyring.
const ringGen = 7

// buildVectors computes every vector from the fixed inputs with the reference encoder.
func buildVectors() keyringVectors {
	b64 := base64.StdEncoding.EncodeToString
	ringJSON := `{"v":1,"active":2,"terms":{"1":"` + b64(vecTerm1) + `","2":"` + b64(vecTerm2) +
		`"},"backupKeys":{"1":"` + b64(vecBackup) + `"},"backupActive":1,"gen":7}`
	ringNonce := pattern(0xa0, 12)
	v := keyringVectors{Ring: ringVector{
		RootKey: hex.EncodeToString(vecRoot), JSON: ringJSON, Nonce: hex.EncodeToString(ringNonce),
		Record: hex.EncodeToString(refSealRing(vecRoot, ringNonce, []byte(ringJSON))),
	}}
	terms := map[uint32][]byte{1: vecTerm1, 2: vecTerm2}
	recs := []recordVector{
		{Name: "format 3, active term", Format: 3, Term: 2, Generation: ringGen, Domain: "vault/0123456789abcdef",
			StorageKey: "v/0123456789abcdef/n/ALPHA!0190a1b2c3d4e5f60718293a4b5c6d7e", Plaintext: "secret record bytes", Want: "open"},
		{Name: "format 3, older term and generation", Format: 3, Term: 1, Generation: 3, Domain: keyring.SystemKeyID,
			StorageKey: "arm/vault/kv1", Plaintext: `{"name":"kv1"}`, Want: "open"},
		{Name: "format 3, empty plaintext", Format: 3, Term: 2, Generation: 0, Domain: "system", StorageKey: "id/x", Plaintext: "", Want: "open"},
		{Name: "format 2 (no generation)", Format: 2, Term: 1, Domain: "vault/0123456789abcdef",
			StorageKey: "v/0123456789abcdef/n/OLD!~", Plaintext: "written by format 2", Want: "open"},
		{Name: "format 3, generation above the keyring's", Format: 3, Term: 2, Generation: ringGen + 1, Domain: "system",
			StorageKey: "id/later", Plaintext: "sealed under a newer keyring", Want: "rolled back"},
	}
	for i := range recs {
		r := &recs[i]
		dek, wn, n := pattern(0x80+byte(i)*8, 32), pattern(0xc0+byte(i), 12), pattern(0xd0+byte(i), 12)
		r.DEK, r.WrapNonce, r.Nonce = hex.EncodeToString(dek), hex.EncodeToString(wn), hex.EncodeToString(n)
		r.Record = hex.EncodeToString(refSealRecord(r.Format, r.Term, terms[r.Term], dek, wn, n, r.Generation, r.Domain, r.StorageKey, []byte(r.Plaintext)))
	}
	v.Records = recs
	rootNonce, backupNonce := pattern(0xe0, 12), pattern(0xf0, 12)
	v.RootWrap = blobVector{Purpose: "raft-snapshot", Nonce: hex.EncodeToString(rootNonce), Plaintext: `{"key":"..."}`}
	v.RootWrap.Blob = hex.EncodeToString(refSealRoot(vecRoot, rootNonce, v.RootWrap.Purpose, []byte(v.RootWrap.Plaintext)))
	v.Backup = blobVector{Purpose: "secret/v1", KeyID: 1, Nonce: hex.EncodeToString(backupNonce), Plaintext: `{"name":"alpha"}`}
	v.Backup.Blob = hex.EncodeToString(refSealBackup(vecBackup, 1, backupNonce, v.Backup.Purpose, []byte(v.Backup.Plaintext)))
	return v
}

// loadVectors reads the checked-in vectors (rewriting them first under
// STRONGROOM_UPDATE_VECTORS=1).
func loadVectors(t *testing.T) keyringVectors {
	t.Helper()
	if os.Getenv("STRONGROOM_UPDATE_VECTORS") == "1" {
		b, _ := json.MarshalIndent(buildVectors(), "", "  ")
		if err := os.WriteFile(vectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var v keyringVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", vectorsFile, err)
	}
	return v
}

// The checked-in bytes are exactly what the documented format makes of the inputs.
func TestVectors_CheckedInBytesFollowTheFormat(t *testing.T) {
	if got, want := buildVectors(), loadVectors(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s differs from the reference encoding of its inputs; a format change must be deliberate (STRONGROOM_UPDATE_VECTORS=1)", vectorsFile)
	}
}

// loadVectorRing loads a keyring from the checked-in keyring record.
func loadVectorRing(t *testing.T, v keyringVectors) (*keyring.Keyring, *memStore) {
	t.Helper()
	st := newMemStore(map[string][]byte{keyring.RingKey: mustHex(t, v.Ring.Record)})
	kr, err := keyring.Load(context.Background(), st, mustHex(t, v.Ring.RootKey))
	if err != nil {
		t.Fatalf("loading the vector keyring: %v", err)
	}
	return kr, st
}

// The package reads every checked-in record as the vector says.
func TestVectors_KeyringReadsCheckedInBytes(t *testing.T) {
	ctx := context.Background()
	v := loadVectors(t)
	kr, _ := loadVectorRing(t, v)
	want := keyring.Status{ActiveTerm: 2, Terms: []uint32{1, 2}, BackupKey: 1, BackupKeyIDs: []uint32{1}}
	if got := kr.Status(); !reflect.DeepEqual(got, want) {
		t.Fatalf("status = %+v, want %+v", got, want)
	}
	for _, r := range v.Records {
		t.Run(r.Name, func(t *testing.T) {
			rec := mustHex(t, r.Record)
			if term, ok := keyring.Term(rec); !ok || term != r.Term {
				t.Fatalf("Term = %d, %v; want %d", term, ok, r.Term)
			}
			pt, err := kr.Open(ctx, r.Domain, r.StorageKey, rec)
			switch r.Want {
			case "open":
				if err != nil || string(pt) != r.Plaintext {
					t.Fatalf("Open = %q, %v; want %q", pt, err, r.Plaintext)
				}
			case "rolled back":
				if !errors.Is(err, keyring.ErrRolledBack) {
					t.Fatalf("Open err = %v, want ErrRolledBack", err)
				}
			}
			if _, err := kr.Open(ctx, r.Domain, r.StorageKey+"x", rec); !errors.Is(err, keyring.ErrDecrypt) {
				t.Fatalf("Open at another key: %v, want ErrDecrypt", err)
			}
			dek, err := kr.RecordKey(r.Domain, r.StorageKey, rec)
			if err != nil || hex.EncodeToString(dek) != r.DEK {
				t.Fatalf("data key = %x, %v; want %s", dek, err, r.DEK)
			}
		})
	}
	if pt, err := kr.OpenRoot(v.RootWrap.Purpose, mustHex(t, v.RootWrap.Blob)); err != nil || string(pt) != v.RootWrap.Plaintext {
		t.Errorf("OpenRoot = %q, %v", pt, err)
	}
	if pt, err := kr.OpenBackup(v.Backup.Purpose, mustHex(t, v.Backup.Blob)); err != nil || string(pt) != v.Backup.Plaintext {
		t.Errorf("OpenBackup = %q, %v", pt, err)
	}
}

// What the package writes decodes with the reference decoder: format 3 under the active term
// with the keyring's generation, root-wrapped and backup blobs, a rewrap that changes only the
// wrapped key, and a keyring record whose JSON has exactly the documented fields.
func TestVectors_KeyringWritesTheFormat(t *testing.T) {
	ctx := context.Background()
	v := loadVectors(t)
	kr, st := loadVectorRing(t, v)
	terms := map[uint32][]byte{1: vecTerm1, 2: vecTerm2}

	const domain, key, pt = "vault/feedface", "v/feedface/n/NEW!~", "fresh plaintext"
	rec, err := kr.Seal(ctx, domain, key, []byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	got, err := refOpenRecord(terms, domain, key, rec)
	if err != nil || got.format != 3 || got.term != 2 || got.gen != ringGen || string(got.plaintext) != pt {
		t.Fatalf("Seal wrote %+v, %v; want format 3, term 2, generation %d, %q", got, err, ringGen, pt)
	}
	if len(rec) != 77+8+len(pt)+16 {
		t.Fatalf("sealed record is %d bytes, want header 77 + generation 8 + plaintext %d + tag 16", len(rec), len(pt))
	}

	old := v.Records[1] // term 1
	rw, changed, err := kr.Rewrap(old.Domain, old.StorageKey, mustHex(t, old.Record))
	if err != nil || !changed {
		t.Fatalf("Rewrap: %v, %v", changed, err)
	}
	if !bytes.Equal(rw[65:], mustHex(t, old.Record)[65:]) || rw[0] != old.Format {
		t.Fatal("Rewrap changed more than the term and the wrapped key")
	}
	if got, err := refOpenRecord(terms, old.Domain, old.StorageKey, rw); err != nil || got.term != 2 || hex.EncodeToString(got.dek) != old.DEK {
		t.Fatalf("rewrapped record = %+v, %v; want term 2 with the same data key", got, err)
	}

	blob, err := kr.SealRoot("raft-snapshot", []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := refOpenRoot(vecRoot, "raft-snapshot", blob); err != nil || string(p) != "payload" {
		t.Fatalf("SealRoot wrote something the format does not open: %v", err)
	}
	bk, err := kr.SealBackup("secret/v1", []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if id, p, err := refOpenBackup(map[uint32][]byte{1: vecBackup}, "secret/v1", bk); err != nil || id != 1 || string(p) != "payload" {
		t.Fatalf("SealBackup wrote something the format does not open: %d, %v", id, err)
	}

	checkRingWrite(t, kr, st)
}

// checkRingWrite rotates the vector keyring and decodes the stored keyring record.
func checkRingWrite(t *testing.T, kr *keyring.Keyring, st store.Reader) {
	t.Helper()
	ctx := context.Background()
	term, err := kr.Rotate(ctx)
	if err != nil || term != 3 {
		t.Fatalf("Rotate = %d, %v", term, err)
	}
	raw, err := st.Get(ctx, keyring.RingKey)
	if err != nil {
		t.Fatal(err)
	}
	js, err := refOpenRing(vecRoot, raw)
	if err != nil {
		t.Fatalf("the stored keyring record does not open as format 1: %v", err)
	}
	var ring map[string]json.RawMessage
	if err := json.Unmarshal(js, &ring); err != nil {
		t.Fatal(err)
	}
	var fields []string
	for k := range ring {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	if want := []string{"active", "backupActive", "backupKeys", "gen", "terms", "v"}; !reflect.DeepEqual(fields, want) {
		t.Fatalf("keyring JSON fields = %v, want %v", fields, want)
	}
	var r struct {
		V            int               `json:"v"`
		Active       uint32            `json:"active"`
		Terms        map[string][]byte `json:"terms"`
		BackupKeys   map[string][]byte `json:"backupKeys"`
		BackupActive uint32            `json:"backupActive"`
		Gen          uint64            `json:"gen"`
	}
	if err := json.Unmarshal(js, &r); err != nil {
		t.Fatal(err)
	}
	if r.V != 1 || r.Active != 3 || r.Gen != ringGen+1 || r.BackupActive != 1 || len(r.Terms) != 3 ||
		!bytes.Equal(r.Terms["1"], vecTerm1) || !bytes.Equal(r.Terms["2"], vecTerm2) || len(r.Terms["3"]) != 32 ||
		!bytes.Equal(r.BackupKeys["1"], vecBackup) {
		t.Fatalf("keyring after Rotate: v=%d active=%d gen=%d backupActive=%d terms=%d", r.V, r.Active, r.Gen, r.BackupActive, len(r.Terms))
	}
}
