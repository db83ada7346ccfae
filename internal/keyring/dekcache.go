package keyring

import (
	"crypto/cipher"
	"sync"
)

// dekCacheMax bounds the opened DEKs a keyring state keeps (each is an AES key schedule).
const dekCacheMax = 8192

// dekCache maps a record's term and wrapped DEK (bytes 1-64 of the record) to the DEK's ready
// AEAD, so reading a record again costs neither the unwrap nor the AES key expansion. It lives
// in one immutable keyring state: rotation, retirement and rekeying install a new state with an
// empty cache, so a retired term's keys do not outlive it here.
type dekCache struct {
	mu sync.RWMutex
	m  map[string]cipher.AEAD
}

func (c *dekCache) get(id []byte) cipher.AEAD {
	c.mu.RLock()
	a := c.m[string(id)]
	c.mu.RUnlock()
	return a
}

func (c *dekCache) put(id []byte, a cipher.AEAD) {
	c.mu.Lock()
	switch {
	case c.m == nil:
		c.m = make(map[string]cipher.AEAD, dekCacheMax)
	case len(c.m) >= dekCacheMax:
		// Starting over is simpler than LRU bookkeeping and costs one unwrap per record later;
		// clear keeps the map's table, so refilling it does not rehash (2 % of write CPU).
		clear(c.m)
	}
	c.m[string(id)] = a
	c.mu.Unlock()
}
