package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Kind is what a rule detects.
type Kind string

// The built-in rule kinds. A built-in rule is named after its kind in lower camel case
// (BuiltInName); rules set through the API may add more rules of a kind under other names.
const (
	KindBruteForce Kind = "BruteForce"      // failed authentications or authorizations
	KindNewPattern Kind = "NewPattern"      // a new secret from a new network, after learning
	KindRateSpike  Kind = "RateSpike"       // reads far above the caller's baseline, or of many secrets
	KindHoneytoken Kind = "Honeytoken"      // any read of a honeytoken secret
	KindAuditSink  Kind = "AuditSink"       // the audit log stopped writing
	KindRotation   Kind = "RotationFailure" // a secret rotation's step failed
)

// Kinds lists every kind, in the order rules are listed.
var Kinds = []Kind{KindBruteForce, KindNewPattern, KindRateSpike, KindHoneytoken, KindAuditSink, KindRotation}

// BuiltInName is the name of the built-in rule of kind k ("bruteForce").
func BuiltInName(k Kind) string {
	if k == "" {
		return ""
	}
	return string(bytes.ToLower([]byte(k[:1]))) + string(k[1:])
}

// Rule is one rule's settings. Fields a kind does not use are zero.
type Rule struct {
	Name    string `json:"-"`
	Kind    Kind   `json:"kind"`
	Enabled bool   `json:"enabled"`
	// Threshold: BruteForce, failures from one caller or address within Window; RateSpike,
	// distinct secrets of one vault one caller reads within Window (more alerts).
	Threshold int `json:"threshold,omitempty"`
	// Window: BruteForce and RateSpike, the sliding window, which is also how long an incident
	// stays open after its last matching request (one alert per incident); Honeytoken, how long
	// repeated reads of one decoy by one caller from one address share an alert (0: every read
	// alerts); AuditSink, how often the sink is checked.
	Window Duration `json:"window,omitempty"`
	// LearningPeriod (NewPattern): how long after a caller is first seen its reads are only
	// learned.
	LearningPeriod Duration `json:"learningPeriod,omitempty"`
	// Factor and MinReads (RateSpike): reads in one Window above Factor times the caller's own
	// average per window (an EWMA) alert, once they are at least MinReads.
	Factor   float64 `json:"factor,omitempty"`
	MinReads int     `json:"minReads,omitempty"`
	// MaxSubjects bounds the callers and addresses remembered (least recently seen go first).
	MaxSubjects int `json:"maxSubjects,omitempty"`
}

// Duration is a time.Duration written as Go's duration text ("5m0s") in JSON.
type Duration time.Duration

// MarshalJSON writes d as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads text such as "90s" or "5m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is text such as \"5m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"5m\"", s)
	}
	*d = Duration(v)
	return nil
}

// D is d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default is the built-in rule of kind k with its default settings.
func Default(k Kind) Rule {
	r := Rule{Name: BuiltInName(k), Kind: k, Enabled: true, MaxSubjects: 10000}
	switch k {
	case KindBruteForce:
		r.Threshold, r.Window = 10, Duration(5*time.Minute)
	case KindNewPattern:
		r.LearningPeriod = Duration(24 * time.Hour)
	case KindRateSpike:
		r.Threshold, r.Window, r.Factor, r.MinReads = 50, Duration(5*time.Minute), 10, 100
	case KindHoneytoken:
		r.Window = 0
	case KindAuditSink:
		r.Window = Duration(10 * time.Second)
	}
	return r
}

var ruleName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)

// ValidName reports whether name can name a rule (1-64 letters, digits and dashes).
func ValidName(name string) bool { return ruleName.MatchString(name) }

// ParseRule reads an API rule's properties: its kind (or the built-in rule's, when name is a
// built-in name), then settings over that kind's defaults. Errors name the field.
func ParseRule(name string, props []byte) (Rule, error) {
	if !ValidName(name) {
		return Rule{}, fmt.Errorf("name: %q must be 1-64 letters, digits and dashes, starting with a letter", name)
	}
	var head struct {
		Kind Kind `json:"kind"`
	}
	if err := json.Unmarshal(props, &head); err != nil {
		return Rule{}, fmt.Errorf("properties: %v", err)
	}
	if head.Kind == "" {
		for _, k := range Kinds {
			if BuiltInName(k) == name {
				head.Kind = k
			}
		}
	}
	if !knownKind(head.Kind) {
		return Rule{}, fmt.Errorf("properties.kind: %q is not one of BruteForce, NewPattern, RateSpike, Honeytoken, AuditSink, RotationFailure", head.Kind)
	}
	r := Default(head.Kind)
	dec := json.NewDecoder(bytes.NewReader(props))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Rule{}, fmt.Errorf("properties: %v", err)
	}
	r.Name, r.Kind = name, head.Kind
	return r, r.Validate()
}

func knownKind(k Kind) bool {
	for _, known := range Kinds {
		if k == known {
			return true
		}
	}
	return false
}

// Validate checks the settings the rule's kind uses; the error names the JSON field.
func (r Rule) Validate() error {
	if !knownKind(r.Kind) {
		return fmt.Errorf("kind: %q is not a rule kind", r.Kind)
	}
	if r.MaxSubjects < 1 || r.MaxSubjects > 1_000_000 {
		return fmt.Errorf("maxSubjects: must be between 1 and 1000000")
	}
	switch r.Kind {
	case KindBruteForce:
		if r.Threshold < 1 {
			return fmt.Errorf("threshold: must be at least 1")
		}
		if r.Window.D() < time.Second {
			return fmt.Errorf("window: must be at least 1s")
		}
	case KindNewPattern:
		if r.LearningPeriod.D() < 0 {
			return fmt.Errorf("learningPeriod: must not be negative")
		}
	case KindRateSpike:
		if r.Threshold < 1 {
			return fmt.Errorf("threshold: must be at least 1")
		}
		if r.Window.D() < time.Second {
			return fmt.Errorf("window: must be at least 1s")
		}
		if r.Factor <= 1 {
			return fmt.Errorf("factor: must be more than 1")
		}
		if r.MinReads < 1 {
			return fmt.Errorf("minReads: must be at least 1")
		}
	case KindHoneytoken:
		if r.Window.D() < 0 {
			return fmt.Errorf("window: must not be negative")
		}
	case KindAuditSink:
		if r.Window.D() < time.Second {
			return fmt.Errorf("window: must be at least 1s")
		}
	}
	return nil
}
