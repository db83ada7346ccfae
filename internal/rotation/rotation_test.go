package rotation_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/rotation"
)

func TestParseDuration(t *testing.T) {
	at := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time // at moved forward; zero: refused
	}{
		{"P90D", at.AddDate(0, 0, 90)},
		{"P3M", at.AddDate(0, 3, 0)},
		{"PT3M", at.Add(3 * time.Minute)},
		{"PT48H", at.Add(48 * time.Hour)},
		{"P1Y10D", at.AddDate(1, 0, 10)},
		{"P2W", at.AddDate(0, 0, 14)},
		{"P1DT2H30M15S", at.AddDate(0, 0, 1).Add(2*time.Hour + 30*time.Minute + 15*time.Second)},
		{"", time.Time{}}, {"P", time.Time{}}, {"PT", time.Time{}}, {"90D", time.Time{}}, {"3M", time.Time{}},
		{"P1.5D", time.Time{}}, {"PD", time.Time{}}, {"P1D1Y", time.Time{}}, {"P1DT", time.Time{}}, {"P1H", time.Time{}},
		{"PT1D", time.Time{}}, {"P1M1M", time.Time{}}, {"P999999D", time.Time{}}, {"p1d", time.Time{}},
	}
	for _, c := range cases {
		d, err := rotation.ParseDuration(c.in)
		if c.want.IsZero() {
			if err == nil {
				t.Errorf("%q: accepted", c.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := d.After(at); !got.Equal(c.want) {
			t.Errorf("%q: after = %v, want %v", c.in, got, c.want)
		}
		if got := d.Before(d.After(at)); c.in != "P3M" && !got.Equal(at) { // months do not invert at month ends
			t.Errorf("%q: before(after) = %v, want %v", c.in, got, at)
		}
		if d.String() != c.in {
			t.Errorf("%q: String = %q", c.in, d.String())
		}
	}
}

func action(typ string, t rotation.Trigger) rotation.LifetimeAction {
	return rotation.LifetimeAction{Trigger: t, Action: rotation.Action{Type: typ}}
}

func gen() *rotation.RotatorSpec { return &rotation.RotatorSpec{Kind: rotation.KindGenerate} }

func TestValidate(t *testing.T) {
	after := func(d string) rotation.Trigger { return rotation.Trigger{TimeAfterCreate: d} }
	before := func(d string) rotation.Trigger { return rotation.Trigger{TimeBeforeExpiry: d} }
	cases := []struct {
		name  string
		p     rotation.Policy
		field string // "" = valid
	}{
		{"key policy file", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", after("P90D")), action("Notify", before("P30D"))},
			Attributes: rotation.Attributes{ExpiryTime: "P2Y"}, Rotator: gen()}, ""},
		{"notify only", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("notify", before("P30D"))}, Attributes: rotation.Attributes{ExpiryTime: "P1Y"}}, ""},
		{"empty", rotation.Policy{}, ""},
		{"bad duration", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", after("3M"))}, Rotator: gen()}, "lifetimeActions[0].trigger.timeAfterCreate"},
		{"bad expiry", rotation.Policy{Attributes: rotation.Attributes{ExpiryTime: "PT"}}, "attributes.expiryTime"},
		{"two rotates", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", after("P30D")), action("rotate", after("P40D"))}, Rotator: gen()}, "lifetimeActions[1].action.type"},
		{"two notifies", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Notify", before("P30D")), action("Notify", before("P20D"))},
			Attributes: rotation.Attributes{ExpiryTime: "P1Y"}}, "lifetimeActions[1].action.type"},
		{"three actions", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", after("P30D")), action("Notify", before("P20D")), action("Notify", before("P10D"))}}, "lifetimeActions"},
		{"unknown type", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Delete", after("P30D"))}}, "lifetimeActions[0].action.type"},
		{"both times", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", rotation.Trigger{TimeAfterCreate: "P30D", TimeBeforeExpiry: "P7D"})}, Rotator: gen()}, "lifetimeActions[0].trigger"},
		{"no time", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", rotation.Trigger{})}, Rotator: gen()}, "lifetimeActions[0].trigger"},
		{"before expiry without expiryTime", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", before("P30D"))}, Rotator: gen()}, "lifetimeActions[0].trigger.timeBeforeExpiry"},
		{"notify after create", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Notify", after("P30D"))}}, "lifetimeActions[0].trigger.timeAfterCreate"},
		{"rotate below floor", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", after("P6D"))}, Rotator: gen()}, "lifetimeActions[0].trigger.timeAfterCreate"},
		{"rotate before expiry below floor", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", before("PT1H"))},
			Attributes: rotation.Attributes{ExpiryTime: "P90D"}, Rotator: gen()}, "lifetimeActions[0].trigger.timeBeforeExpiry"},
		{"expiry below floor", rotation.Policy{Attributes: rotation.Attributes{ExpiryTime: "P27D"}}, "attributes.expiryTime"},
		{"before expiry not shorter", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Notify", before("P90D"))}, Attributes: rotation.Attributes{ExpiryTime: "P3M"}}, "lifetimeActions[0].trigger.timeBeforeExpiry"},
		{"rotates after it expires", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", after("P60D"))}, Attributes: rotation.Attributes{ExpiryTime: "P30D"}, Rotator: gen()}, "lifetimeActions[0].trigger.timeAfterCreate"},
		{"rotate without rotator", rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", after("P30D"))}}, "rotator"},
		{"unknown kind", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "lambda"}}, "rotator.kind"},
		{"no kind", rotation.Policy{Rotator: &rotation.RotatorSpec{}}, "rotator.kind"},
		{"webhook without url", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "webhook"}}, "rotator.url"},
		{"webhook without signing secret", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "webhook", URL: "https://h.example/r"}}, "rotator.signingSecret"},
		{"webhook", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "webhook", URL: "https://h.example/r", SigningSecret: "k"}}, ""},
		{"postgres with a url", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "postgres", URL: "https://h.example/r"}}, "rotator"},
		{"postgres strategy", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "postgres", Strategy: "triple"}}, "rotator.strategy"},
		{"alternating without admin", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "postgres", Strategy: "alternating-users"}}, "rotator.connectionSecret"},
		{"statement without password", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "postgres", Statements: []string{"SELECT 1"}}}, "rotator.statements[0]"},
		{"generator too short", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "generate", Generator: &rotation.Generator{Length: 4}}}, "rotator.generator.length"},
		{"generator class", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "generate", Generator: &rotation.Generator{Classes: []string{"emoji"}}}}, "rotator.generator.classes[0]"},
		{"generator excludes all", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "generate", Generator: &rotation.Generator{Classes: []string{"digit"}, Exclude: "0123456789"}}}, "rotator.generator.exclude"},
		{"generator bytes and length", rotation.Policy{Rotator: &rotation.RotatorSpec{Kind: "generate", Generator: &rotation.Generator{Bytes: 32, Length: 10}}}, "rotator.generator"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := rotation.Validate(&c.p, rotation.DefaultLimits)
			var fe *rotation.FieldError
			switch {
			case c.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
				t.Fatalf("err = %v, want one naming %s", err, c.field)
			}
		})
	}
	// A dev floor admits minutes.
	p := rotation.Policy{LifetimeActions: []rotation.LifetimeAction{action("Rotate", after("PT2M"))}, Attributes: rotation.Attributes{ExpiryTime: "PT10M"}, Rotator: gen()}
	plan, err := rotation.Validate(&p, rotation.Limits{MinRotate: time.Minute, MinExpiry: time.Minute})
	if err != nil || p.LifetimeActions[0].Action.Type != "Rotate" {
		t.Fatalf("dev floor: %v", err)
	}
	at, ok := plan.RotationDue(1000, nil)
	if !ok || at.Unix() != 1120 || *plan.NewExpiry(time.Unix(2000, 0)) != 2600 {
		t.Fatalf("plan: due %v %v", at, ok)
	}
}

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		v, err := (&rotation.Generator{Length: 12}).Generate()
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != 12 || strings.ContainsAny(v, rotation.DefaultExclude) || !strings.ContainsAny(v, "0123456789") ||
			!strings.ContainsAny(v, "abcdefghijklmnopqrstuvwxyz") || !strings.ContainsAny(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("value %q breaks the spec", v)
		}
		seen[v] = true
	}
	if len(seen) != 50 {
		t.Fatalf("%d distinct values of 50", len(seen))
	}
	v, err := (*rotation.Generator)(nil).Generate()
	if err != nil || len(v) != rotation.DefaultLength {
		t.Fatalf("default: %q %v", v, err)
	}
	v, err = (&rotation.Generator{Bytes: 32}).Generate()
	if err != nil || len(v) != 44 {
		t.Fatalf("bytes: %q %v", v, err)
	}
	v, err = (&rotation.Generator{Length: 16, Classes: []string{"digit"}}).Generate()
	if err != nil || strings.Trim(v, "0123456789") != "" {
		t.Fatalf("digits: %q %v", v, err)
	}
	if got := rotation.Scrub("login with hunter22 failed; hunter22 again", "hunter22", ""); got != "login with [redacted] failed; [redacted] again" {
		t.Fatalf("scrub: %q", got)
	}
}
