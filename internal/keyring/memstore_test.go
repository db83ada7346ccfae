package keyring_test

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"sync"

	"github.com/strongroom/strongroom/internal/store"
)

// memStore is a map-backed store.Store for tests that need many stores (vectors, fuzzing): no
// files, preconditions checked before any write of a batch, as the contract says.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemStore(kv map[string][]byte) *memStore {
	s := &memStore{m: map[string][]byte{}}
	for k, v := range kv {
		s.m[k] = bytes.Clone(v)
	}
	return s
}

func (s *memStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (s *memStore) Scan(_ context.Context, prefix, after string, fn func(string, []byte) bool) error {
	s.mu.Lock()
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = bytes.Clone(s.m[k])
	}
	s.mu.Unlock()
	for i, k := range keys {
		if !fn(k, vals[i]) {
			break
		}
	}
	return nil
}

func (s *memStore) Apply(_ context.Context, ops []store.Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		v, ok := s.m[op.Key]
		switch {
		case op.Kind == store.OpRequireAbsent && ok,
			op.Kind == store.OpRequireEqual && (!ok || !bytes.Equal(v, op.Value)):
			return store.ErrConflict
		}
	}
	for _, op := range ops {
		switch op.Kind {
		case store.OpPut:
			s.m[op.Key] = bytes.Clone(op.Value)
		case store.OpDelete:
			delete(s.m, op.Key)
		case store.OpDeletePrefix:
			for k := range s.m {
				if strings.HasPrefix(k, op.Key) {
					delete(s.m, k)
				}
			}
		}
	}
	return nil
}

func (s *memStore) Close() error { return nil }
