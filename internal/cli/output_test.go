package cli

import (
	"bytes"
	"strings"
	"testing"
)

// sampleSecret has the shape of `secret show` output.
var sampleSecret = map[string]any{
	"attributes": map[string]any{
		"created": "2026-01-02T03:04:05+00:00", "enabled": true, "expires": nil,
		"recoverableDays": 90, "recoveryLevel": "Recoverable+Purgeable",
	},
	"contentType": nil,
	"id":          "https://kv.vault.localhost:8443/secrets/s/abc",
	"name":        "s",
	"tags":        map[string]any{"file-encoding": "utf-8"},
	"value":       "mySecretValue",
}

var sampleList = []any{
	map[string]any{"name": "b", "location": "eastus", "id": "/x/b", "type": "T", "tags": map[string]any{}, "count": 2},
	map[string]any{"name": "a", "location": "westus2", "id": "/x/a", "type": "T", "tags": nil, "enabled": false},
}

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		data   any
		format string
		query  string
		want   string
	}{
		{
			name: "json sorted two-space", data: map[string]any{"b": 1, "a": []any{}, "c": map[string]any{}, "d": "<&>"},
			format: "json",
			want:   "{\n  \"a\": [],\n  \"b\": 1,\n  \"c\": {},\n  \"d\": \"<&>\"\n}\n",
		},
		{name: "json default format", data: []any{"x"}, want: "[\n  \"x\"\n]\n"},
		{name: "json null prints nothing", data: nil, format: "json", want: ""},
		{name: "query scalar json", data: sampleSecret, format: "json", query: "value", want: "\"mySecretValue\"\n"},
		{name: "query scalar tsv", data: sampleSecret, format: "tsv", query: "value", want: "mySecretValue\n"},
		{name: "query null prints nothing", data: sampleSecret, format: "tsv", query: "contentType", want: ""},
		{name: "query missing field", data: sampleSecret, format: "json", query: "nope", want: ""},
		{name: "query nested", data: sampleSecret, format: "tsv", query: "attributes.recoverableDays", want: "90\n"},
		{name: "tsv bool row lower-case", data: true, format: "tsv", want: "true\n"},
		{name: "tsv bool cell python-case", data: map[string]any{"a": true, "b": false}, format: "tsv", want: "True\tFalse\n"},
		{
			name: "tsv object: sorted values, containers and nulls", data: sampleSecret, format: "tsv",
			want: "\tNone\thttps://kv.vault.localhost:8443/secrets/s/abc\ts\t\tmySecretValue\n",
		},
		{
			name: "tsv list of objects", data: sampleList, format: "tsv", query: "[].{name:name, loc:location}",
			want: "b\teastus\na\twestus2\n",
		},
		{name: "tsv list of scalars", data: []any{"x", 1.5, 3}, format: "tsv", want: "x\n1.5\n3\n"},
		{name: "tsv nested list is its length", data: []any{[]any{"a", []any{1, 2}}}, format: "tsv", want: "a\t2\n"},
		{name: "tsv empty list", data: []any{}, format: "tsv", want: ""},
		{
			name: "table sorted scalar columns, id/type skipped", data: sampleList, format: "table",
			want: "Count    Location    Name    Enabled\n" +
				"-------  ----------  ------  ---------\n" +
				"2        eastus      b\n" +
				"         westus2     a       False\n",
		},
		{
			name: "table with query keeps hash order", data: sampleList, format: "table", query: "[].{Z:name, A:location}",
			want: "Z    A\n---  -------\nb    eastus\na    westus2\n",
		},
		{name: "table scalar", data: "hello", format: "table", want: "Result\n--------\nhello\n"},
		{name: "table empty list", data: []any{}, format: "table", want: "\n"},
		{
			name: "yaml", data: map[string]any{"b": []any{"x"}, "a": map[string]any{"k": 1}, "t": "2026-01-02T03:04:05+00:00"}, format: "yaml",
			want: "a:\n  k: 1\nb:\n  - x\nt: \"2026-01-02T03:04:05+00:00\"\n",
		},
		{name: "yaml scalar query", data: sampleSecret, format: "yaml", query: "name", want: "s\n"},
		{name: "none", data: sampleSecret, format: "none", want: ""},
		{name: "jsonc without a terminal is json", data: map[string]any{"a": 1}, format: "jsonc", want: "{\n  \"a\": 1\n}\n"},
		{name: "format is case-insensitive", data: "x", format: "TSV", want: "x\n"},
		{
			name: "query filter and projection", data: sampleList, format: "json", query: "[?location=='eastus'].name | [0]",
			want: "\"b\"\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			o := outputOptions{Format: tt.format, Query: tt.query}
			if err := render(&buf, tt.data, o, false); err != nil {
				t.Fatalf("render: %v", err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("render() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestRenderSDKModelsUseWireJSON(t *testing.T) {
	type model struct {
		Name    *string `json:"name,omitempty"`
		Created int     `json:"created"`
	}
	n := "x"
	var buf bytes.Buffer
	if err := render(&buf, []*model{{Name: &n, Created: 1700000000}}, outputOptions{Format: "json"}, false); err != nil {
		t.Fatal(err)
	}
	// Large integers must not turn into exponent notation.
	if want := "[\n  {\n    \"created\": 1700000000,\n    \"name\": \"x\"\n  }\n]\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestRenderJSONCColors(t *testing.T) {
	var buf bytes.Buffer
	if err := render(&buf, map[string]any{"k": "v", "n": 1}, outputOptions{Format: "jsonc"}, true); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{ansiKey + `"k"` + ansiReset, ansiString + `"v"` + ansiReset, ansiOther + "1" + ansiReset} {
		if !strings.Contains(out, want) {
			t.Errorf("jsonc output %q lacks %q", out, want)
		}
	}
}

func TestTableWithoutColumnsFails(t *testing.T) {
	var buf bytes.Buffer
	err := render(&buf, map[string]any{"id": "x", "tags": map[string]any{}}, outputOptions{Format: "table"}, false)
	if err == nil {
		t.Fatalf("render succeeded with %q, want an error", buf.String())
	}
}

func TestOutputOptionsValidate(t *testing.T) {
	tests := []struct {
		format, query string
		ok            bool
	}{
		{"json", "", true},
		{"JSON", "value", true},
		{"yaml", "[].{a:b}", true},
		{"xml", "", false},
		{"json", "a[", false},
	}
	for _, tt := range tests {
		o := outputOptions{Format: tt.format, Query: tt.query}
		err := o.validate()
		if (err == nil) != tt.ok {
			t.Errorf("validate(%q, %q) = %v, want ok=%v", tt.format, tt.query, err, tt.ok)
		}
		if err != nil && exitCode(err) != exitUsage {
			t.Errorf("validate(%q, %q): exit code %d, want %d", tt.format, tt.query, exitCode(err), exitUsage)
		}
	}
}

func TestQueryKeyOrders(t *testing.T) {
	got := queryKeyOrders("[].{name:name, \"rg\":resourceGroup, x: {b:b, a:a}}")
	want := [][]string{{"name", "rg", "x"}, {"b", "a"}}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if strings.Join(got[i], ",") != strings.Join(want[i], ",") {
			t.Errorf("order %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestFormatNumber(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 90: "90", -3: "-3", 1.5: "1.5", 1700000000: "1700000000", 1e-7: "1e-07"} {
		if got := formatNumber(in); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", in, got, want)
		}
	}
}
