package keyring

// StagedRoot supplies a root key staged for a cluster-wide rekey (internal/cluster/rootkey.go):
// the new key reaches a member before the keyring re-sealed under it does, and when Reload finds
// that its root key no longer opens the keyring it tries the staged one. It returns nil when
// nothing is staged; adopted runs once the staged key opened the keyring and became this
// keyring's root key (the seal promotes its key file there).
type StagedRoot func() (key []byte, adopted func())

type stagedHook struct{ fn StagedRoot }

// SetStagedRoot registers fn (nil removes it).
func (k *Keyring) SetStagedRoot(fn StagedRoot) {
	if fn == nil {
		k.staged.Store(nil)
		return
	}
	k.staged.Store(&stagedHook{fn})
}

// openStaged opens the sealed ring record raw with the staged root key and, on success, makes
// that key the keyring's root key.
func (k *Keyring) openStaged(raw []byte) ([]byte, bool) {
	h := k.staged.Load()
	if h == nil {
		return nil, false
	}
	key, adopted := h.fn()
	if key == nil {
		return nil, false
	}
	defer clear(key)
	aead, err := newAEAD(key)
	if err != nil {
		return nil, false
	}
	pt, err := aead.Open(nil, raw[1:1+nonceSize], raw[1+nonceSize:], []byte("strongroom/keyring/v1"))
	if err != nil {
		return nil, false
	}
	k.mu.Lock()
	k.root = aead
	k.mu.Unlock()
	if adopted != nil {
		adopted()
	}
	return pt, true
}
