package keyring

// TermKeys exposes the term keys to tests that scan storage for key material.
func (k *Keyring) TermKeys() [][]byte {
	s := k.state()
	var out [][]byte
	for _, key := range s.ring.Terms {
		out = append(out, append([]byte(nil), key...))
	}
	for _, key := range s.ring.BackupKeys {
		out = append(out, append([]byte(nil), key...))
	}
	return out
}

// RecordKey unwraps the data key of a record, for the same tests.
func (k *Keyring) RecordKey(domain, storageKey string, record []byte) ([]byte, error) {
	return k.state().unwrap(domain, storageKey, record)
}
