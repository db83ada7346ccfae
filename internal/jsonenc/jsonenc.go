// Package jsonenc appends JSON strings exactly as encoding/json writes them, for the few
// hand-written encoders on the request path (audit records, secret bundles) that must produce
// the same bytes as encoding/json without its reflection and allocations.
package jsonenc

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// safe[c] and htmlSafe[c] say an ASCII byte is written as itself: one table lookup per byte
// instead of five comparisons (audit records are about a kilobyte of mostly safe text).
var safe, htmlSafe = func() (s, h [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		s[c] = c != '"' && c != '\\'
		h[c] = s[c] && c != '<' && c != '>' && c != '&'
	}
	return s, h
}()

// AppendString appends s as a JSON string the way encoding/json does: invalid UTF-8 becomes
// U+FFFD, U+2028 and U+2029 are escaped, and with html <, > and & are escaped too (json.Marshal;
// an Encoder with SetEscapeHTML(false) leaves them).
func AppendString(dst []byte, s string, html bool) []byte {
	dst = append(dst, '"')
	table := &safe
	if html {
		table = &htmlSafe
	}
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && plain8(load8(s, i), html) {
			i += 8
			continue
		}
		if c := s[i]; c < utf8.RuneSelf {
			if table[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// load8 reads s[i:i+8] as a little-endian word (the compiler makes this one load).
func load8(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// hasByte reports (in the high bits) whether some byte of x is c.
func hasByte(x uint64, c byte) uint64 {
	y := x ^ (lsb * uint64(c))
	return (y - lsb) &^ y & msb
}

// plain8 reports whether all eight bytes of x are ASCII written as themselves: none below 0x20,
// at or above 0x80, a quote or a backslash (nor <, >, & with html).
func plain8(x uint64, html bool) bool {
	bad := (x-lsb*0x20)&^x&msb | x&msb | hasByte(x, '"') | hasByte(x, '\\')
	if html {
		bad |= hasByte(x, '<') | hasByte(x, '>') | hasByte(x, '&')
	}
	return bad == 0
}
