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
