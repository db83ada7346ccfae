package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// multiValueFlags take several space-separated values, as argparse's nargs='*' does for az.
var multiValueFlags = []string{"--tags", "--ids", "--scopes"}

// threeStateFlags are az's three-state booleans: "--flag", "--flag true" and "--flag false".
var threeStateFlags = []string{
	"--disabled", "--enabled", "--enable-purge-protection", "--enable-rbac-authorization",
	"--enabled-for-deployment", "--enabled-for-disk-encryption", "--enabled-for-template-deployment",
}

// normalizeArgs rewrites az-style arguments into what pflag understands:
// "--tags a=b c=d" becomes "--tags=a=b --tags=c=d" (a bare "--tags" clears the tags) and
// "--enabled false" becomes "--enabled=false". Arguments after "--" are left alone.
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case slices.Contains(multiValueFlags, a):
			n := 0
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				n++
				out = append(out, a+"="+args[i])
			}
			if n == 0 {
				out = append(out, a+"=")
			}
		case slices.Contains(threeStateFlags, a) && i+1 < len(args) && isBoolWord(args[i+1]):
			i++
			out = append(out, a+"="+strings.ToLower(args[i]))
		default:
			out = append(out, a)
		}
	}
	return out
}

func isBoolWord(s string) bool {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "1", "0", "t", "f":
		return true
	}
	return false
}

// parseTags parses az's "key[=value]" tag list. A lone empty value ("--tags ”") means an empty
// tag set, which clears the tags on update.
func parseTags(values []string) (map[string]*string, error) {
	tags := map[string]*string{}
	for _, v := range values {
		if v == "" {
			continue
		}
		k, val, _ := strings.Cut(v, "=")
		if k == "" {
			return nil, usageErrorf("invalid tag %q: expected key[=value]", v)
		}
		tags[k] = &val
	}
	return tags, nil
}

// dateLayouts are az's datetime_type formats (UTC, "Z" suffix) followed by full ISO-8601 forms.
var dateLayouts = []string{
	"2006-01-02T15:04:05Z",
	"2006-01-02T15:04Z",
	"2006-01-02T15Z",
	"2006-01-02",
	time.RFC3339Nano,
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
}

// parseDate parses --expires and --not-before values. Times without a zone are UTC, as in az.
func parseDate(flag, s string) (time.Time, error) {
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageErrorf("invalid %s value %q: expected a UTC datetime such as 2027-12-31T01:11:59Z", flag, s)
}

// secretEncodings are az's --encoding choices for "secret set --file".
var secretEncodings = []string{"utf-8", "ascii", "base64", "hex"}

// encodeSecretFile turns a file's bytes into a secret value as az does: utf-8 and ascii read the
// file as text (with Python's universal newlines), base64 and hex encode the raw bytes.
func encodeSecretFile(content []byte, encoding string) (string, error) {
	switch strings.ToLower(encoding) {
	case "utf-8", "utf8", "":
		if !utf8.Valid(content) {
			return "", fmt.Errorf("reading secret file: not valid utf-8 (use --encoding base64 or hex for binary files)")
		}
		return universalNewlines(content), nil
	case "ascii":
		for _, c := range content {
			if c >= 0x80 {
				return "", fmt.Errorf("reading secret file: not ascii (use --encoding utf-8, base64 or hex)")
			}
		}
		return universalNewlines(content), nil
	case "base64":
		return base64.StdEncoding.EncodeToString(content), nil
	case "hex":
		return hex.EncodeToString(content), nil
	}
	return "", usageErrorf("invalid --encoding value %q: choose from %s", encoding, strings.Join(secretEncodings, ", "))
}

// decodeSecretValue is the inverse of encodeSecretFile, for "secret download".
func decodeSecretValue(value, encoding string) ([]byte, error) {
	switch strings.ToLower(encoding) {
	case "utf-8", "utf8", "ascii", "":
		return []byte(value), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(value), ""))
		if err != nil {
			return nil, fmt.Errorf("decoding secret value as base64: %w", err)
		}
		return b, nil
	case "hex":
		b, err := hex.DecodeString(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("decoding secret value as hex: %w", err)
		}
		return b, nil
	}
	return nil, usageErrorf("invalid --encoding value %q: choose from %s", encoding, strings.Join(secretEncodings, ", "))
}

// universalNewlines converts \r\n and lone \r to \n, as Python's text-mode open() does.
func universalNewlines(b []byte) string {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return string(bytes.ReplaceAll(b, []byte("\r"), []byte("\n")))
}

// readSecretFile reads --file for "secret set".
func readSecretFile(path, encoding string) (string, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	return encodeSecretFile(content, encoding)
}
