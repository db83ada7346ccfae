package alerts

import "container/list"

// lru is a map that holds at most max entries, dropping the least recently used: every
// per-caller and per-address memory of the rules is one, so an attacker who rotates names or
// addresses costs a bounded amount of memory (and, at worst, makes old entries look new).
type lru[K comparable, V any] struct {
	max   int
	order *list.List // front = most recent; elements hold *lruEntry
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), items: map[K]*list.Element{}}
}

// get returns the entry for k and marks it used.
func (c *lru[K, V]) get(k K) (V, bool) {
	if el, ok := c.items[k]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// put sets k, evicting the least recently used entry when full.
func (c *lru[K, V]) put(k K, v V) {
	if el, ok := c.items[k]; ok {
		el.Value.(*lruEntry[K, V]).val = v
		c.order.MoveToFront(el)
		return
	}
	if c.order.Len() >= c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*lruEntry[K, V]).key)
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v})
}

// touch marks k used, adding it (with V's zero value) when absent, and reports whether it was
// there: one map lookup for a set's "seen before?" and "remember it".
func (c *lru[K, V]) touch(k K) bool {
	if el, ok := c.items[k]; ok {
		c.order.MoveToFront(el)
		return true
	}
	var zero V
	c.put(k, zero)
	return false
}

// getOrPut returns k's entry, creating it with mk when absent.
func (c *lru[K, V]) getOrPut(k K, mk func() V) V {
	if v, ok := c.get(k); ok {
		return v
	}
	v := mk()
	c.put(k, v)
	return v
}

func (c *lru[K, V]) len() int { return c.order.Len() }
