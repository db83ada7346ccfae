package audit

import (
	"net/http"
	"testing"
	"time"
)

// The record's resultSignature must read as net/http would write it, for every status.
func TestStatusText_MatchesNetHTTP(t *testing.T) {
	for code := 100; code < 600; code++ {
		if got, want := statusText(code), http.StatusText(code); got != want {
			t.Errorf("statusText(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestNewRecord(t *testing.T) {
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	yes := true
	cases := []struct {
		name  string
		event Event
		check func(t *testing.T, r *Record)
	}{
		{"failure with redacted query and upper-cased resource", Event{
			Time: at, Start: at.Add(-1500 * time.Millisecond), Operation: "SecretGet", Status: 403,
			ResourceID: "/subscriptions/s/resourceGroups/rg", URI: "https://v.vault.localhost/secrets/a?api-version=7.4&sig=hunter2",
			TLSVersion: 0x0304, Caller: &Claims{ObjectID: "oid"}, Authorized: &yes, AssignmentID: "as1",
		}, func(t *testing.T, r *Record) {
			if r.ResultType != "Failure" || r.ResultSignature != "Forbidden" || r.DurationMs != 1500 {
				t.Errorf("outcome = %s %s %d ms", r.ResultType, r.ResultSignature, r.DurationMs)
			}
			if r.ResourceID != "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG" {
				t.Errorf("resourceId = %q", r.ResourceID)
			}
			if r.Properties.RequestURI != RedactURI(cases0URI) || r.Properties.RequestURI == cases0URI {
				t.Errorf("requestUri = %q, not redacted", r.Properties.RequestURI)
			}
			if r.Properties.TLSVersion != "TLS1_3" || r.Identity == nil || r.Identity.Claim.ObjectID != "oid" ||
				r.Properties.IsRbacAuthorized == nil || r.Properties.AppliedAssignmentID != "as1" {
				t.Errorf("properties = %+v identity = %+v", r.Properties, r.Identity)
			}
			if r.RequestID == "" {
				t.Error("no request id generated")
			}
		}},
		{"success, resource already upper-cased, given request id", Event{
			Time: at, Operation: "Unseal", Status: 200, ResourceID: "/x/y", ResourceIDUpper: true, RequestID: "rid",
		}, func(t *testing.T, r *Record) {
			if r.ResultType != "Success" || r.ResultSignature != "OK" || r.ResourceID != "/x/y" || r.RequestID != "rid" ||
				r.Identity != nil || r.DurationMs != 0 || r.Properties.TLSVersion != "" || r.Time != FormatTime(at) {
				t.Errorf("record = %+v", r)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t, NewRecord(c.event)) })
	}
}

const cases0URI = "https://v.vault.localhost/secrets/a?api-version=7.4&sig=hunter2"

func TestSafeHost(t *testing.T) {
	for in, want := range map[string]string{
		"v.vault.localhost:8443": "v.vault.localhost:8443",
		"evil/?sig=x":            "evil",
		"a@b":                    "a",
		"a b":                    "a",
		`a\b`:                    "a",
	} {
		if got := SafeHost(in); got != want {
			t.Errorf("SafeHost(%q) = %q, want %q", in, got, want)
		}
	}
}
