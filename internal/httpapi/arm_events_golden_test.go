package httpapi_test

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"strings"

	"github.com/strongroom/strongroom/internal/outbound"
)

// goldenEvents is the event service of the test API: it checks endpoints as the server does,
// but without resolving names (tests run offline), so an address literal inside the server's
// network is refused and any name is accepted.
type goldenEvents struct{}

func (goldenEvents) CheckDestination(raw string) error {
	if u, err := url.Parse(raw); err == nil {
		if _, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err != nil {
			return nil
		}
	}
	return outbound.CheckURL(raw, outbound.Options{})
}

// eventsGoldenCalls records a golden response of every route of arm_events.go, and checks that
// no answer echoes the endpoint's query string.
func eventsGoldenCalls(g *goldenRun) {
	const av = "?api-version=2022-06-15"
	base := g.sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-audit/providers/Microsoft.EventGrid/eventSubscriptions"
	body := func(endpoint, types string) string {
		return `{"properties":{"destination":{"endpointType":"WebHook","properties":{"endpointUrl":"` + endpoint + `"}},
			"filter":{"includedEventTypes":[` + types + `],"subjectBeginsWith":"db-"},"eventDeliverySchema":"CloudEventSchemaV1_0",
			"retryPolicy":{"maxDeliveryAttempts":5,"eventTimeToLiveInMinutes":60},
			"deadLetterDestination":{"endpointType":"StorageBlob","properties":{"resourceId":"/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/dl","blobContainerName":"dead"}}}}`
	}
	hook := "https://user:pw@hooks.example.com/api/updates?code=s3cret-code"
	types := `"Microsoft.KeyVault.SecretNewVersionCreated","Microsoft.KeyVault.SecretNearExpiry"`
	var answers []map[string]any
	answers = append(answers,
		g.call("evsub-put-created", "PUT", base+"/sub-gold"+av, body(hook, types)),
		g.call("evsub-put-updated", "PUT", base+"/sub-gold"+av, body(hook, types)),
		g.call("evsub-put-minimal", "PUT", base+"/sub-min"+av, `{"properties":{"destination":{"endpointType":"WebHook","properties":{"endpointUrl":"https://hooks.example.com/min"}}}}`),
		g.call("evsub-put-bad-type", "PUT", base+"/sub-bad"+av, body(hook, `"Microsoft.KeyVault.KeyExpired"`)),
		g.call("evsub-put-refused-destination", "PUT", base+"/sub-bad"+av, body("https://127.0.0.1:9000/hook?code=s3cret-code", types)),
		g.call("evsub-put-http", "PUT", base+"/sub-bad"+av, body("http://hooks.example.com/hook?code=s3cret-code", types)),
		g.call("evsub-put-no-destination", "PUT", base+"/sub-bad"+av, `{"properties":{}}`),
		g.call("evsub-put-bad-name", "PUT", base+"/x"+av, body(hook, types)),
		g.call("evsub-get", "GET", base+"/sub-gold"+av, ""),
		g.call("evsub-get-missing", "GET", base+"/sub-nope"+av, ""),
		g.call("evsub-list", "GET", base+av, ""),
		g.call("evsub-deadletters", "GET", base+"/sub-gold/deadLetters"+av, ""),
		g.call("evsub-deadletters-replay", "POST", base+"/sub-gold/deadLetters/replay"+av, ""),
		g.call("evsub-deadletters-missing", "GET", base+"/sub-nope/deadLetters"+av, ""),
		g.call("evsub-delete", "DELETE", base+"/sub-gold"+av, ""),
		g.call("evsub-delete-missing", "DELETE", base+"/sub-gold"+av, ""),
	)
	for _, a := range answers {
		b, _ := json.Marshal(a)
		if strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "pw@") {
			g.t.Errorf("an answer echoes the endpoint's query or userinfo: %s", b)
		}
	}
}
