package rotation

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
)

// Generator shapes a random value: Length characters drawn from the classes (lower, upper,
// digit, symbol; all four by default) minus Exclude, with at least one of each class when
// RequireEach is set (the default); or, with Bytes set, that many random bytes in base64.
type Generator struct {
	Length      int      `json:"length,omitempty"`
	Classes     []string `json:"classes,omitempty"`
	Exclude     string   `json:"exclude,omitempty"`
	RequireEach *bool    `json:"requireEach,omitempty"`
	Bytes       int      `json:"bytes,omitempty"`
}

// Generator defaults and bounds.
const (
	DefaultLength = 32
	MaxLength     = 4096
	MaxBytes      = 4096
	// DefaultExclude are the characters AWS's and Vault's generators leave out of passwords,
	// because connection strings and shells give them meaning.
	DefaultExclude = ":/@\"'\\"
)

var classChars = map[string]string{
	"lower":  "abcdefghijklmnopqrstuvwxyz",
	"upper":  "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
	"digit":  "0123456789",
	"symbol": "!#$%&()*+,-.;<=>?[]^_{|}~",
}

var allClasses = []string{"lower", "upper", "digit", "symbol"}

func (g *Generator) validate() error {
	if g.Bytes != 0 {
		if g.Bytes < 16 || g.Bytes > MaxBytes {
			return bad("rotator.generator.bytes", "must be between 16 and %d", MaxBytes)
		}
		if g.Length != 0 || len(g.Classes) > 0 || g.Exclude != "" {
			return bad("rotator.generator", "bytes cannot be combined with length, classes or exclude")
		}
		return nil
	}
	if g.Length != 0 && (g.Length < 8 || g.Length > MaxLength) {
		return bad("rotator.generator.length", "must be between 8 and %d", MaxLength)
	}
	for i, c := range g.Classes {
		if _, ok := classChars[c]; !ok {
			return bad(fmt.Sprintf("rotator.generator.classes[%d]", i), "%q is not lower, upper, digit or symbol", c)
		}
	}
	sets := g.sets()
	if len(sets) == 0 {
		return bad("rotator.generator.exclude", "excludes every character of the chosen classes")
	}
	if g.requireEach() && len(sets) > g.length() {
		return bad("rotator.generator.length", "is shorter than the number of classes each value must include")
	}
	return nil
}

func (g *Generator) length() int {
	if g.Length == 0 {
		return DefaultLength
	}
	return g.Length
}

func (g *Generator) requireEach() bool { return g.RequireEach == nil || *g.RequireEach }

// sets are the classes' characters without the excluded ones (empty classes dropped).
func (g *Generator) sets() []string {
	classes := g.Classes
	if len(classes) == 0 {
		classes = allClasses
	}
	exclude := g.Exclude
	if exclude == "" {
		exclude = DefaultExclude
	}
	var out []string
	for _, c := range classes {
		s := strings.Map(func(r rune) rune {
			if strings.ContainsRune(exclude, r) {
				return -1
			}
			return r
		}, classChars[c])
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Generate returns a new random value shaped by g (nil: the defaults).
func (g *Generator) Generate() (string, error) {
	if g == nil {
		g = &Generator{}
	}
	if err := g.validate(); err != nil {
		return "", err
	}
	if g.Bytes != 0 {
		b := make([]byte, g.Bytes)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("generating a value: %w", err)
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}
	sets := g.sets()
	all := strings.Join(sets, "")
	out := make([]byte, g.length())
	for {
		for i := range out {
			c, err := pick(all)
			if err != nil {
				return "", err
			}
			out[i] = c
		}
		if !g.requireEach() || hasEach(out, sets) {
			return string(out), nil
		}
		// Rejection keeps every value equally likely among those that qualify.
	}
}

func pick(chars string) (byte, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(chars))))
	if err != nil {
		return 0, fmt.Errorf("generating a value: %w", err)
	}
	return chars[n.Int64()], nil
}

func hasEach(v []byte, sets []string) bool {
	for _, s := range sets {
		if !strings.ContainsAny(string(v), s) {
			return false
		}
	}
	return true
}

// Generated is the built-in "generate" rotator: the pending value is a new random value and
// there is no target to change.
type Generated struct{}

// Prepare draws the new value.
func (Generated) Prepare(_ context.Context, spec *RotatorSpec, _ Input) (string, error) {
	return spec.Generator.Generate()
}

// Apply has no target to change.
func (Generated) Apply(context.Context, *RotatorSpec, Input) error { return nil }

// Test has nothing to probe.
func (Generated) Test(context.Context, *RotatorSpec, Input) error { return nil }
