package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	jmespath "github.com/jmespath-community/go-jmespath"
	"github.com/jmespath-community/go-jmespath/pkg/parsing"
	"gopkg.in/yaml.v3"
)

// Output formats accepted by --output, as az names them.
var outputFormats = []string{"json", "jsonc", "table", "tsv", "yaml", "yamlc", "none"}

// outputOptions are the global --output and --query flags.
type outputOptions struct {
	Format string
	Query  string
}

// validate checks the format name (case-insensitively, as az does) and compiles the query.
func (o *outputOptions) validate() error {
	o.Format = strings.ToLower(o.Format)
	if !slices.Contains(outputFormats, o.Format) {
		return usageErrorf("invalid --output value %q: choose from %s", o.Format, strings.Join(outputFormats, ", "))
	}
	if o.Query != "" {
		if _, err := jmespath.Compile(o.Query); err != nil {
			return usageErrorf("invalid --query value %q: %v", o.Query, oneLine(err.Error()))
		}
	}
	return nil
}

// render writes v in the chosen format after applying the query. v is anything encoding/json can
// marshal (SDK models marshal to their wire JSON). Like az, a null result prints nothing.
func render(w io.Writer, v any, o outputOptions, color bool) error {
	data, err := toGeneric(v)
	if err != nil {
		return err
	}
	var orders [][]string
	if o.Query != "" {
		jp, err := jmespath.Compile(o.Query)
		if err != nil {
			return usageErrorf("invalid --query value %q: %v", o.Query, oneLine(err.Error()))
		}
		if data, err = jp.Search(data); err != nil {
			return fmt.Errorf("applying --query: %w", err)
		}
		orders = queryKeyOrders(o.Query)
	}
	if data == nil {
		return nil
	}
	var out []byte
	switch strings.ToLower(o.Format) {
	case "", "json":
		out, err = formatJSON(data)
	case "jsonc":
		out, err = formatJSON(data)
		if err == nil && color {
			out = colorizeJSON(out)
		}
	case "yaml", "yamlc":
		out, err = formatYAML(data)
	case "tsv":
		out = formatTSV(data, orders)
	case "table":
		out, err = formatTable(data, orders, o.Query != "")
	case "none":
		return nil
	default:
		return usageErrorf("invalid --output value %q", o.Format)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// toGeneric turns v into the plain JSON data model (maps, slices, float64, string, bool, nil)
// that the query engine and the formatters work on.
func toGeneric(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding output: %w", err)
	}
	var data any
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, fmt.Errorf("encoding output: %w", err)
	}
	return data, nil
}

// formatJSON is az's json output: two-space indent, sorted keys, non-ASCII left as is.
func formatJSON(data any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(data); err != nil {
		return nil, fmt.Errorf("encoding output: %w", err)
	}
	return buf.Bytes(), nil
}

// formatYAML is az's yaml output (block style, sorted keys).
func formatYAML(data any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(data); err != nil {
		return nil, fmt.Errorf("encoding output: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding output: %w", err)
	}
	return buf.Bytes(), nil
}

// ANSI colors for jsonc, loosely after pygments' terminal JSON style.
const (
	ansiKey    = "\x1b[94m"
	ansiString = "\x1b[33m"
	ansiOther  = "\x1b[36m"
	ansiReset  = "\x1b[39m"
)

// colorizeJSON colors keys, strings and literals of indented JSON.
func colorizeJSON(in []byte) []byte {
	var out bytes.Buffer
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == '"':
			end := i + 1
			for end < len(in) && in[end] != '"' {
				if in[end] == '\\' {
					end++
				}
				end++
			}
			end = min(end+1, len(in))
			color := ansiString
			if j := skipSpaces(in, end); j < len(in) && in[j] == ':' {
				color = ansiKey
			}
			out.WriteString(color)
			out.Write(in[i:end])
			out.WriteString(ansiReset)
			i = end
		case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n':
			end := i
			for end < len(in) && !strings.ContainsRune(",]}\n ", rune(in[end])) {
				end++
			}
			out.WriteString(ansiOther)
			out.Write(in[i:end])
			out.WriteString(ansiReset)
			i = end
		default:
			out.WriteByte(c)
			i++
		}
	}
	return out.Bytes()
}

func skipSpaces(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// formatTSV follows knack's _TsvOutput: one line per list item (or one line for a non-list);
// a map's values in key order, nested lists as their length, nested maps as empty cells, null as
// "None" and booleans as True/False, except that a bare boolean row is lower-case.
func formatTSV(data any, orders [][]string) []byte {
	rows, ok := data.([]any)
	if !ok {
		rows = []any{data}
	}
	var b strings.Builder
	for _, row := range rows {
		switch r := row.(type) {
		case map[string]any:
			for i, k := range orderedKeys(r, orders) {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(tsvCell(r[k]))
			}
		case []any:
			for i, v := range r {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(tsvCell(v))
			}
		case bool:
			b.WriteString(strconv.FormatBool(r))
		default:
			b.WriteString(tsvCell(r))
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// tsvCell renders one value as Python's str() would, with knack's container rules.
func tsvCell(v any) string {
	switch x := v.(type) {
	case []any:
		return strconv.Itoa(len(x))
	case map[string]any:
		return ""
	default:
		return pyStr(x)
	}
}

// pyStr renders a scalar as Python's str() does for the value json.loads would produce.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		return formatNumber(x)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// formatNumber prints integral values without a fraction, as they were on the wire.
func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// tableSkipKeys are left out of automatic tables, as in knack.
var tableSkipKeys = map[string]bool{"id": true, "type": true, "etag": true}

// formatTable follows knack's _TableOutput with tabulate's "simple" format: one column per
// top-level scalar field (capitalized, id/type/etag skipped, null values left out), left-aligned,
// columns at least two wider than their header and two spaces apart.
func formatTable(data any, orders [][]string, queryActive bool) ([]byte, error) {
	rows, ok := data.([]any)
	if !ok {
		rows = []any{data}
	}
	cols, entries := tableEntries(rows, orders, queryActive)
	if len(rows) == 0 {
		return []byte("\n"), nil
	}
	if len(cols) == 0 {
		return nil, errors.New("table output unavailable: use the --query option to specify an appropriate query")
	}
	return renderTable(cols, entries), nil
}

// tableEntries returns the table's columns, in the order first seen, and each row's cells by
// column.
func tableEntries(rows []any, orders [][]string, queryActive bool) ([]string, []map[string]string) {
	var cols []string
	seen := map[string]bool{}
	entries := make([]map[string]string, 0, len(rows))
	for _, row := range rows {
		entry := map[string]string{}
		add := func(col, val string) {
			if !seen[col] {
				seen[col] = true
				cols = append(cols, col)
			}
			entry[col] = val
		}
		switch r := row.(type) {
		case map[string]any:
			keys := orderedKeys(r, orders)
			if !queryActive {
				keys = sortedKeys(r)
			}
			for _, k := range keys {
				v := r[k]
				if tableSkipKeys[k] || v == nil {
					continue
				}
				if _, isList := v.([]any); isList {
					continue
				}
				if _, isMap := v.(map[string]any); isMap {
					continue
				}
				add(capitalize(k), pyStr(v))
			}
		case []any:
			for i, v := range r {
				add(fmt.Sprintf("Column%d", i+1), tableValue(v))
			}
		default:
			add("Result", tableValue(r))
		}
		entries = append(entries, entry)
	}
	return cols, entries
}

// renderTable lays the table out: a header line, a line of dashes, one line per entry.
func renderTable(cols []string, entries []map[string]string) []byte {
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = utf8.RuneCountInString(c) + 2
		for _, e := range entries {
			widths[i] = max(widths[i], utf8.RuneCountInString(e[c]))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		var l strings.Builder
		for i, cell := range cells {
			if i > 0 {
				l.WriteString("  ")
			}
			l.WriteString(cell)
			l.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)))
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteByte('\n')
	}
	line(cols)
	dashes := make([]string, len(cols))
	for i, w := range widths {
		dashes[i] = strings.Repeat("-", w)
	}
	line(dashes)
	for _, e := range entries {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = e[c]
		}
		line(cells)
	}
	return []byte(b.String())
}

// tableValue renders a cell that is not a map field (tabulate prints None as empty).
func tableValue(v any) string {
	if v == nil {
		return ""
	}
	if _, ok := v.([]any); ok {
		b, _ := json.Marshal(v)
		return string(b)
	}
	if _, ok := v.(map[string]any); ok {
		b, _ := json.Marshal(v)
		return string(b)
	}
	return pyStr(v)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + s[n:]
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// orderedKeys returns m's keys in the order a query's multiselect hash listed them when m's keys
// are exactly that hash's keys (az keeps that order: its query results are OrderedDicts), and
// sorted otherwise.
func orderedKeys(m map[string]any, orders [][]string) []string {
	for _, order := range orders {
		if len(order) != len(m) {
			continue
		}
		all := true
		for _, k := range order {
			if _, ok := m[k]; !ok {
				all = false
				break
			}
		}
		if all {
			return order
		}
	}
	return sortedKeys(m)
}

// queryKeyOrders collects the key lists of every multiselect hash ({a: x, b: y}) in a query.
func queryKeyOrders(query string) [][]string {
	ast, err := parsing.NewParser().Parse(query)
	if err != nil {
		return nil
	}
	var orders [][]string
	var walk func(n parsing.ASTNode)
	walk = func(n parsing.ASTNode) {
		if n.NodeType == parsing.ASTMultiSelectHash {
			var keys []string
			for _, kv := range n.Children {
				if k, ok := kv.Value.(string); ok && !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
			orders = append(orders, keys)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(ast)
	return orders
}
