package httpapi

import (
	"strings"
	"testing"
)

func TestSameToken(t *testing.T) {
	base := strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 57) + "abc" // 1,200 bytes: words and a tail
	flip := func(i int) string { b := []byte(base); b[i] ^= 1; return string(b) }
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"same", base, strings.Clone(base), true},
		{"both empty", "", "", true},
		{"first byte", base, flip(0), false},
		{"inside a word", base, flip(603), false},
		{"last full word", base, flip(len(base) - 4), false},
		{"tail byte", base, flip(len(base) - 1), false},
		{"shorter", base, base[:len(base)-1], false},
		{"longer", base, base + "x", false},
		{"short, not a word", "abc", "abd", false},
		{"short, same", "abc", "abc", true},
		{"high bit only", "\x80aaaaaaa", "\x00aaaaaaa", false},
	}
	for _, tc := range tests {
		if got := sameToken(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: sameToken = %v, want %v", tc.name, got, tc.want)
		}
	}
}
