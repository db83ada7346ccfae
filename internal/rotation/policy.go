// Package rotation holds what secret rotation means, without the store or the network: the
// rotation policy a secret carries (Key Vault's key rotation policy, byte for byte, plus one
// "rotator" object), its validation, when a policy makes a rotation or a notice due, the value
// generator, and the Rotator contract that the built-in rotators (package rotators) implement.
// The service keeps the policies and runs the crash-safe state machine (docs/rotation.md).
package rotation

import (
	"fmt"
	"strings"
	"time"
)

// Action types of a lifetime action, as Key Vault spells them (compared case-insensitively).
const (
	ActionRotate = "Rotate"
	ActionNotify = "Notify"
)

// Rotator kinds.
const (
	KindGenerate = "generate"
	KindWebhook  = "webhook"
	KindPostgres = "postgres"
)

// Strategies of the database rotators.
const (
	StrategySingleUser       = "single-user"
	StrategyAlternatingUsers = "alternating-users"
)

// DefaultNotifyLead is when a secret without a Notify action is announced as near expiry: 30
// days before exp, as Key Vault does.
const DefaultNotifyLead = "P30D"

// Policy is a secret's rotation policy, on the wire and as stored.
type Policy struct {
	ID              string           `json:"id,omitempty"`
	LifetimeActions []LifetimeAction `json:"lifetimeActions"`
	Attributes      Attributes       `json:"attributes"`
	Rotator         *RotatorSpec     `json:"rotator,omitempty"`
}

// LifetimeAction is one trigger and what it does.
type LifetimeAction struct {
	Trigger Trigger `json:"trigger"`
	Action  Action  `json:"action"`
}

// Trigger names when an action runs: a time after the latest version was created, or before
// it expires.
type Trigger struct {
	TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
	TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
}

// Action is what a lifetime action does.
type Action struct {
	Type string `json:"type"`
}

// Attributes are the policy's attributes: expiryTime is the lifetime a version made by
// rotation gets (its exp); created and updated are set by the server.
type Attributes struct {
	ExpiryTime string `json:"expiryTime,omitempty"`
	Created    *int64 `json:"created,omitempty"`
	Updated    *int64 `json:"updated,omitempty"`
}

// RotatorSpec names what changes the credential a secret holds, and how (our extension).
type RotatorSpec struct {
	Kind string `json:"kind"`
	// Generator shapes a new random value (generate; the password of postgres).
	Generator *Generator `json:"generator,omitempty"`
	// URL is the webhook's HTTPS endpoint (webhook).
	URL string `json:"url,omitempty"`
	// Strategy is single-user or alternating-users (postgres).
	Strategy string `json:"strategy,omitempty"`
	// ConnectionSecret is the id of the secret holding an administrator's connection document
	// (postgres, alternating-users; single-user may name one too).
	ConnectionSecret string `json:"connectionSecret,omitempty"`
	// SigningSecret is the id of the secret whose value keys the HMAC-SHA256 signature of each
	// webhook call (webhook).
	SigningSecret string `json:"signingSecret,omitempty"`
	// Statements replace the default password statement (postgres), with {{username}} and
	// {{password}} filled in, quoted.
	Statements []string `json:"statements,omitempty"`
}

// Limits are the floors a policy must respect: Key Vault's by default (rotation at least 7
// days after creation and before expiry, versions living at least 28 days); a dev profile may
// lower them so tests can use minutes.
type Limits struct {
	MinRotate time.Duration
	MinExpiry time.Duration
}

// DefaultLimits are Key Vault's floors.
var DefaultLimits = Limits{MinRotate: 7 * 24 * time.Hour, MinExpiry: 28 * 24 * time.Hour}

// FieldError is a policy that fails validation: Field names the offending field as in the
// JSON ("lifetimeActions[0].trigger.timeAfterCreate").
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return "Invalid value for " + e.Field + ": " + e.Problem }

func bad(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// spanRef is the instant spans are measured from, so that months and years compare the same
// way every time.
var spanRef = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

func span(d Duration) time.Duration { return d.After(spanRef).Sub(spanRef) }

// Plan is a validated policy in the form the scheduler uses.
type Plan struct {
	// RotateAfterCreate or RotateBeforeExpiry is set when the policy has a Rotate action.
	RotateAfterCreate, RotateBeforeExpiry *Duration
	// NotifyBeforeExpiry is set when the policy has a Notify action.
	NotifyBeforeExpiry *Duration
	// Expiry is the lifetime of a version made by rotation (nil: no exp).
	Expiry *Duration
}

// Rotates reports whether the policy rotates by itself.
func (p Plan) Rotates() bool { return p.RotateAfterCreate != nil || p.RotateBeforeExpiry != nil }

// RotationDue is when a version created at created (Unix seconds) and expiring at exp (nil:
// never) is due for rotation; ok is false when the policy does not rotate it.
func (p Plan) RotationDue(created int64, exp *int64) (at time.Time, ok bool) {
	switch {
	case p.RotateAfterCreate != nil:
		return p.RotateAfterCreate.After(time.Unix(created, 0)), true
	case p.RotateBeforeExpiry != nil && exp != nil:
		return p.RotateBeforeExpiry.Before(time.Unix(*exp, 0)), true
	}
	return time.Time{}, false
}

// NewExpiry is the exp a version made by rotation at now gets (nil: none).
func (p Plan) NewExpiry(now time.Time) *int64 {
	if p.Expiry == nil {
		return nil
	}
	exp := p.Expiry.After(now).Unix()
	return &exp
}

// Validate checks p against Key Vault's rules and lim, normalizes the action types' spelling
// ("rotate" becomes "Rotate") and returns its plan. Rules: at most one Rotate and one Notify
// action; each trigger names exactly one time; Notify triggers before expiry; a trigger before
// expiry needs attributes.expiryTime and must be shorter than it; the floors of lim.
func Validate(p *Policy, lim Limits) (Plan, error) {
	var plan Plan
	if p.Attributes.ExpiryTime != "" {
		d, err := ParseDuration(p.Attributes.ExpiryTime)
		if err != nil {
			return plan, bad("attributes.expiryTime", "%v", err)
		}
		if span(d) < lim.MinExpiry {
			return plan, bad("attributes.expiryTime", "%s is shorter than the minimum of %s", d, days(lim.MinExpiry))
		}
		plan.Expiry = &d
	}
	if len(p.LifetimeActions) > 2 {
		return plan, bad("lifetimeActions", "at most two actions are allowed (one Rotate and one Notify); %d were given", len(p.LifetimeActions))
	}
	for i := range p.LifetimeActions {
		a := &p.LifetimeActions[i]
		field := fmt.Sprintf("lifetimeActions[%d]", i)
		switch {
		case strings.EqualFold(a.Action.Type, ActionRotate):
			a.Action.Type = ActionRotate
			if plan.Rotates() {
				return plan, bad(field+".action.type", "only one Rotate action is allowed")
			}
		case strings.EqualFold(a.Action.Type, ActionNotify):
			a.Action.Type = ActionNotify
			if plan.NotifyBeforeExpiry != nil {
				return plan, bad(field+".action.type", "only one Notify action is allowed")
			}
		default:
			return plan, bad(field+".action.type", "%q is not Rotate or Notify", a.Action.Type)
		}
		t := a.Trigger
		if (t.TimeAfterCreate == "") == (t.TimeBeforeExpiry == "") {
			return plan, bad(field+".trigger", "exactly one of timeAfterCreate and timeBeforeExpiry must be set")
		}
		if t.TimeAfterCreate != "" {
			if a.Action.Type == ActionNotify {
				return plan, bad(field+".trigger.timeAfterCreate", "a Notify action triggers only before expiry (timeBeforeExpiry)")
			}
			d, err := ParseDuration(t.TimeAfterCreate)
			if err != nil {
				return plan, bad(field+".trigger.timeAfterCreate", "%v", err)
			}
			if span(d) < lim.MinRotate {
				return plan, bad(field+".trigger.timeAfterCreate", "%s is shorter than the minimum of %s", d, days(lim.MinRotate))
			}
			if plan.Expiry != nil && span(d) >= span(*plan.Expiry) {
				return plan, bad(field+".trigger.timeAfterCreate", "%s is not shorter than attributes.expiryTime %s: versions would expire before they rotate", d, plan.Expiry)
			}
			plan.RotateAfterCreate = &d
			continue
		}
		d, err := ParseDuration(t.TimeBeforeExpiry)
		if err != nil {
			return plan, bad(field+".trigger.timeBeforeExpiry", "%v", err)
		}
		if plan.Expiry == nil {
			return plan, bad(field+".trigger.timeBeforeExpiry", "a trigger before expiry needs attributes.expiryTime")
		}
		if span(d) >= span(*plan.Expiry) {
			return plan, bad(field+".trigger.timeBeforeExpiry", "%s is not shorter than attributes.expiryTime %s", d, plan.Expiry)
		}
		if a.Action.Type == ActionRotate {
			if span(d) < lim.MinRotate {
				return plan, bad(field+".trigger.timeBeforeExpiry", "%s is shorter than the minimum of %s", d, days(lim.MinRotate))
			}
			plan.RotateBeforeExpiry = &d
		} else {
			plan.NotifyBeforeExpiry = &d
		}
	}
	if p.Rotator != nil {
		if err := validateRotator(p.Rotator); err != nil {
			return plan, err
		}
	} else if plan.Rotates() {
		return plan, bad("rotator", "a policy with a Rotate action must name its rotator (kind generate, webhook or postgres)")
	}
	return plan, nil
}

// PlanOf is the plan of a policy that passed Validate once (a stored one): the floors are not
// applied again, so a policy stays valid when they are raised.
func PlanOf(p *Policy) (Plan, error) {
	q := *p
	q.LifetimeActions = append([]LifetimeAction(nil), p.LifetimeActions...)
	return Validate(&q, Limits{})
}

func days(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("P%dD", d/(24*time.Hour))
	}
	return d.String()
}

func validateRotator(r *RotatorSpec) error {
	switch r.Kind {
	case KindGenerate:
		if r.URL != "" || r.Strategy != "" || r.ConnectionSecret != "" || r.SigningSecret != "" || len(r.Statements) > 0 {
			return bad("rotator", "kind generate takes only a generator")
		}
	case KindWebhook:
		if !strings.HasPrefix(strings.ToLower(r.URL), "https://") && !strings.HasPrefix(strings.ToLower(r.URL), "http://") {
			return bad("rotator.url", "a webhook rotator needs an https URL")
		}
		if r.SigningSecret == "" {
			return bad("rotator.signingSecret", "a webhook rotator needs the id of a secret whose value signs its calls")
		}
		if r.Strategy != "" || r.ConnectionSecret != "" || len(r.Statements) > 0 {
			return bad("rotator", "kind webhook takes url, signingSecret and generator only")
		}
	case KindPostgres:
		switch r.Strategy {
		case "":
			r.Strategy = StrategySingleUser
		case StrategySingleUser, StrategyAlternatingUsers:
		default:
			return bad("rotator.strategy", "%q is not single-user or alternating-users", r.Strategy)
		}
		if r.URL != "" || r.SigningSecret != "" {
			return bad("rotator", "kind postgres takes strategy, connectionSecret, statements and generator only")
		}
		if r.Strategy == StrategyAlternatingUsers && r.ConnectionSecret == "" {
			return bad("rotator.connectionSecret", "alternating-users needs the id of a secret holding an administrator's connection document")
		}
		for i, st := range r.Statements {
			if !strings.Contains(st, "{{password}}") {
				return bad(fmt.Sprintf("rotator.statements[%d]", i), "a statement must set {{password}}")
			}
		}
	case "":
		return bad("rotator.kind", "the rotator's kind is required (generate, webhook or postgres)")
	default:
		return bad("rotator.kind", "%q is not generate, webhook or postgres", r.Kind)
	}
	if r.Generator != nil {
		if err := r.Generator.validate(); err != nil {
			return err
		}
	}
	return nil
}
