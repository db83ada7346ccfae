package jsonenc_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/jsonenc"
)

func TestAppendString_MatchesEncodingJSON(t *testing.T) {
	inputs := []string{"", "plain", `quote " backslash \`, "ctl \x00\x01\b\f\n\r\t\x1f\x7f", "<b>&amp;</b>",
		"ünïcödé ✓ 𝄞", "bad \xff\xfe utf8 \xe2\x82", "line\u2028sep\u2029", strings.Repeat("é", 300)}
	for _, s := range inputs {
		want, _ := json.Marshal(s)
		if got := jsonenc.AppendString(nil, s, true); !bytes.Equal(got, want) {
			t.Errorf("html %q: got %s, want %s", s, got, want)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if got := jsonenc.AppendString(nil, s, false); !bytes.Equal(got, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))) {
			t.Errorf("no html %q: got %s, want %s", s, got, buf.Bytes())
		}
	}
}

// BenchmarkAppendString encodes the longest strings of a secret-read audit record.
func BenchmarkAppendString(b *testing.B) {
	s := "https://benchkv.vault.localhost:18611/secrets/perf-0001?api-version=7.5&maxresults=25"
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = jsonenc.AppendString(buf[:0], s, false)
	}
}

// TestAppendString_EveryByteAtEveryOffset puts each byte value at each position of a 17-byte
// run of plain text, so both the 8-byte fast path and the byte loop meet every character.
func TestAppendString_EveryByteAtEveryOffset(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 17; pos++ {
			b := []byte(strings.Repeat("a", 17))
			b[pos] = byte(c)
			s := string(b)
			for _, html := range []bool{true, false} {
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(html)
				enc.Encode(s)
				if got, want := jsonenc.AppendString(nil, s, html), bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
					t.Fatalf("byte %#x at %d (html %v): got %s, want %s", c, pos, html, got, want)
				}
			}
		}
	}
}
