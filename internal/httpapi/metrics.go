package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/held"
	"github.com/strongroom/strongroom/internal/metrics"
	"github.com/strongroom/strongroom/internal/service"
)

// The edge reports every answered request to the metrics (Config.Metrics) with the facts its
// audit record has: the vault (only one that exists), the operation name from the route tables,
// the status, and for refusals a reason from a fixed set. Nothing else from the request is
// passed on, so no secret name, principal or path reaches a label.

// dataPlaneOperations are the operation names the data-plane router (dataReq.route) gives.
var dataPlaneOperations = []string{
	"Authentication", "SecretList", "SecretRestore", "SecretListVersions", "SecretBackup", "SecretSet",
	"SecretGet", "SecretUpdate", "SecretDelete", "SecretListDeleted", "SecretGetDeleted", "SecretPurge", "SecretRecover",
	"SecretRotationPolicyGet", "SecretRotationPolicySet", "SecretRotate", "SecretRotationStatusGet", "SecretRotationPendingGet",
}

// extraOperations are names handlers set themselves, outside the route tables.
var extraOperations = []string{"VaultRecover", "IdentityHostRedeem", "IdentityHostToken",
	"PolicyStatesSummarize", "PolicyStatesQuery", "PolicyStatesTriggerEvaluation"}

// OperationNames is every operation name a request can be counted under: the data plane's, the
// management plane's route tables (ARM, Graph, role and elevation routes) and the names
// handlers set themselves. It is the metrics' "operation" label set (metrics.SetOperations).
func OperationNames() []string {
	names := append([]string(nil), dataPlaneOperations...)
	for _, r := range armRoutes {
		names = append(names, r.op)
	}
	for _, r := range authorizationRoutes {
		names = append(names, r.op)
	}
	names = append(names, issuerOperations...)
	return append(names, extraOperations...)
}

// ThrottleSaturation yields each vault's share of its request budget in use now (Key Vault's
// SaturationShoeBox): 0 with a full bucket, 1 when the next request would be throttled. It
// yields nothing when the budget is off. Only vaults that exist have a bucket (enter).
func (s *Server) ThrottleSaturation(yield func(vault string, used float64)) {
	t := s.throttle
	if t.perTen <= 0 {
		return
	}
	now := time.Now()
	t.mu.Lock()
	used := make(map[string]float64, len(t.byName))
	for name, l := range t.byName {
		// Lower case, as the request metrics label the vault (its host's spelling).
		used[strings.ToLower(name)] = 1 - l.TokensAt(now)/float64(t.perTen)
	}
	t.mu.Unlock()
	for name, u := range used {
		yield(name, u)
	}
}

// observe reports the answered request to the metrics; vault is the data-plane host's vault
// name ("" off the data plane).
func (s *Server) observe(r *http.Request, ri *reqInfo, vault string, a *held.Answer, start time.Time) {
	m := s.cfg.Metrics
	if m == nil {
		return
	}
	q := metrics.Request{Class: m.Class(r), Operation: ri.op, Status: a.Status(), Duration: time.Since(start)}
	if vault != "" {
		q.Vault = metrics.VaultUnknown
		if ri.resourceID != "" { // serveData sets it only for a vault that exists
			q.Vault = vault
		}
	}
	switch {
	case ri.tokenFailure != "":
		q.Authn = tokenFailureReason(ri.tokenFailure)
	case q.Status == http.StatusUnauthorized:
		q.Authn = bearerFailureReason(r, q.Class)
	case q.Status == http.StatusForbidden:
		q.Authz = forbiddenReason(r, a.Body)
	}
	m.ObserveRequest(q)
}

// observeRefusal counts a request refused before anything ran (the audit log is down): a
// server error that Availability counts, under an operation not yet known (Other).
func (s *Server) observeRefusal(r *http.Request, status int, start time.Time) {
	m := s.cfg.Metrics
	if m == nil {
		return
	}
	q := metrics.Request{Class: m.Class(r), Status: status, Duration: time.Since(start)}
	if name := s.vaultFromHost(r.Host); name != "" {
		q.Vault = metrics.VaultUnknown
		if s.svc.LookupVault(name).Found() {
			q.Vault = name
		}
	}
	m.ObserveRequest(q)
}

// bearerFailureReason is why a request was challenged: no bearer token, or one that did not
// verify. A 401 from the token endpoint without a noted failure is "other".
func bearerFailureReason(r *http.Request, class int) int {
	if class == metrics.ClassToken {
		return metrics.AuthnOther
	}
	v := r.Header["Authorization"]
	if len(v) == 0 {
		return metrics.AuthnMissingToken
	}
	raw, ok := strings.CutPrefix(v[0], "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		return metrics.AuthnMissingToken
	}
	return metrics.AuthnInvalidToken
}

// tokenFailureReason maps the issuer's fixed failure texts (issuer.failureReason and its
// siblings) to the metric's reasons.
func tokenFailureReason(failure string) int {
	switch {
	case strings.Contains(failure, "locked out"):
		return metrics.AuthnLockedOut
	case strings.Contains(failure, "disabled"):
		return metrics.AuthnDisabled
	case strings.Contains(failure, "unknown client"), strings.Contains(failure, "unknown user"), strings.Contains(failure, "unknown tenant"):
		return metrics.AuthnUnknownClient
	case strings.Contains(failure, "wrong "), strings.Contains(failure, "assertion"), strings.Contains(failure, "certificate"),
		strings.Contains(failure, " code"), strings.Contains(failure, "declined"):
		return metrics.AuthnBadCredential
	}
	return metrics.AuthnOther
}

var (
	innerFirewall     = []byte(`"ForbiddenByFirewall"`)
	innerConnection   = []byte(`"ForbiddenByConnection"`)
	innerPolicy       = []byte(`"ForbiddenByPolicy"`)
	innerRbac         = []byte(`"ForbiddenByRbac"`)
	codeAuthorization = []byte(`"AuthorizationFailed"`)
)

// forbiddenReason is why a 403 was answered, read from the error envelope's codes (Key Vault's
// inner codes and ARM's AuthorizationFailed) and the authorization decision.
func forbiddenReason(r *http.Request, body []byte) int {
	switch {
	case bytes.Contains(body, innerFirewall), bytes.Contains(body, innerConnection):
		return metrics.AuthzFirewall
	case bytes.Contains(body, innerPolicy):
		return metrics.AuthzAccessPolicy
	case bytes.Contains(body, innerRbac), bytes.Contains(body, codeAuthorization):
		if d := service.DecisionFrom(r.Context()); d != nil && d.ByPolicy {
			return metrics.AuthzAccessPolicy
		}
		return metrics.AuthzRBAC
	}
	return metrics.AuthzOther
}
