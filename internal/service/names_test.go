package service

import (
	"regexp"
	"strings"
	"testing"
)

// The hand-written checks accept exactly what Key Vault's patterns accept.
func TestNameAndVersionChecks_MatchKeyVaultPatterns(t *testing.T) {
	nameRE := regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
	versionRE := regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	inputs := []string{
		"", "a", "A-1", "my-secret", "-", "a_b", "a.b", "a b", "é", "a\n", "\na", "a/b", "a%2Fb",
		strings.Repeat("x", 127), strings.Repeat("x", 128), strings.Repeat("x", 126) + "\x00",
		"0123456789abcdef0123456789ABCDEF", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdefa",
		"0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcde\n", "ffffffffffffffffffffffffffffffff",
	}
	for _, in := range inputs {
		if got, want := validSecretName(in), nameRE.MatchString(in); got != want {
			t.Errorf("validSecretName(%q) = %v, pattern says %v", in, got, want)
		}
		if got, want := validVersion(in), versionRE.MatchString(in); got != want {
			t.Errorf("validVersion(%q) = %v, pattern says %v", in, got, want)
		}
	}
}
