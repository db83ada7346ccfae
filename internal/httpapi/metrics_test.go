package httpapi

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/metrics"
	"github.com/strongroom/strongroom/internal/service"
)

// Every operation name this package's code gives a request (d.enter("X"), x.op = "X", op: "X")
// is in OperationNames, so no operation the server answers is counted as "Other" by mistake.
func TestOperationNames_CoverTheCode(t *testing.T) {
	known := OperationNames()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		check := func(e ast.Expr) {
			lit, ok := e.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return
			}
			op, _ := strconv.Unquote(lit.Value)
			if op == "" {
				return
			}
			found++
			if !slices.Contains(known, op) {
				t.Errorf("%s: operation %q is not in OperationNames", fset.Position(lit.Pos()), op)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "enter" && len(n.Args) == 1 {
					check(n.Args[0])
				}
			case *ast.AssignStmt:
				for i, lhs := range n.Lhs {
					if sel, ok := lhs.(*ast.SelectorExpr); ok && sel.Sel.Name == "op" && i < len(n.Rhs) {
						check(n.Rhs[i])
					}
				}
			case *ast.CompositeLit:
				// Only the request types' own op fields (graph_filter.go has an "op" of its own).
				if typ, ok := n.Type.(*ast.Ident); ok && (typ.Name == "armReq" || typ.Name == "dataReq") {
					for _, e := range n.Elts {
						if kv, ok := e.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "op" {
								check(kv.Value)
							}
						}
					}
				}
			}
			return true
		})
	}
	if found < len(dataPlaneOperations)-1 {
		t.Fatalf("found only %d operation literals: the scan is broken", found)
	}
	for _, op := range []string{"SecretGet", "VaultPut", "RoleAssignmentWrite", "MetadataGet"} {
		if !slices.Contains(known, op) {
			t.Errorf("OperationNames lacks %s", op)
		}
	}
}

func TestBearerFailureReason(t *testing.T) {
	cases := []struct {
		auth  string
		class int
		want  int
	}{
		{"", metrics.ClassData, metrics.AuthnMissingToken},
		{"Basic dXNlcjpwYXNz", metrics.ClassData, metrics.AuthnMissingToken},
		{"Bearer ", metrics.ClassARM, metrics.AuthnMissingToken},
		{"Bearer eyJ.x.y", metrics.ClassData, metrics.AuthnInvalidToken},
		{"Bearer eyJ.x.y", metrics.ClassGraph, metrics.AuthnInvalidToken},
		{"", metrics.ClassToken, metrics.AuthnOther},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "https://kv1.vault.localhost/secrets/x", nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		if got := bearerFailureReason(r, c.class); got != c.want {
			t.Errorf("%q (class %d): reason %s, want %s", c.auth, c.class, metrics.AuthnReasonName(got), metrics.AuthnReasonName(c.want))
		}
	}
}

// The issuer's failure texts (issuer.failureReason, assertionFailure, deviceFailure) map to a
// reason each; an unknown text is "other", never a label of its own.
func TestTokenFailureReason(t *testing.T) {
	cases := map[string]int{
		"token refused: source address locked out":                       metrics.AuthnLockedOut,
		"token refused: client id locked out":                            metrics.AuthnLockedOut,
		"token refused: unknown client id":                               metrics.AuthnUnknownClient,
		"token refused: unknown user":                                    metrics.AuthnUnknownClient,
		"token refused: unknown tenant":                                  metrics.AuthnUnknownClient,
		"token refused: wrong client secret":                             metrics.AuthnBadCredential,
		"token refused: wrong password":                                  metrics.AuthnBadCredential,
		"token refused: invalid client assertion":                        metrics.AuthnBadCredential,
		"token refused: client assertion replayed":                       metrics.AuthnBadCredential,
		"token refused: certificate not registered":                      metrics.AuthnBadCredential,
		"token refused: federated assertion from an unregistered issuer": metrics.AuthnBadCredential,
		"token refused: device code expired":                             metrics.AuthnBadCredential,
		"token refused: invalid authorization code":                      metrics.AuthnBadCredential,
		"token refused: user declined":                                   metrics.AuthnBadCredential,
		"token refused: principal disabled":                              metrics.AuthnDisabled,
		"device sign-in refused: user disabled":                          metrics.AuthnDisabled,
		"token refused: hash queue full":                                 metrics.AuthnOther,
		"token refused: server error":                                    metrics.AuthnOther,
		"token refused: invalid scope":                                   metrics.AuthnOther,
		"token refused: external issuer keys unavailable":                metrics.AuthnOther,
	}
	for text, want := range cases {
		if got := tokenFailureReason(text); got != want {
			t.Errorf("%q: reason %s, want %s", text, metrics.AuthnReasonName(got), metrics.AuthnReasonName(want))
		}
	}
}

func TestForbiddenReason(t *testing.T) {
	plain := httptest.NewRequest("GET", "https://kv1.vault.localhost/secrets/x", nil)
	byPolicy := plain.WithContext(service.WithDecisionSlot(context.Background()))
	service.DecisionFrom(byPolicy.Context()).ByPolicy = true
	cases := []struct {
		name string
		r    *http.Request
		body string
		want int
	}{
		{"firewall", plain, `{"error":{"code":"Forbidden","innererror":{"code":"ForbiddenByFirewall"}}}`, metrics.AuthzFirewall},
		{"public access off", plain, `{"error":{"code":"Forbidden","innererror":{"code":"ForbiddenByConnection"}}}`, metrics.AuthzFirewall},
		{"access policy", plain, `{"error":{"code":"Forbidden","innererror":{"code":"ForbiddenByPolicy"}}}`, metrics.AuthzAccessPolicy},
		{"data rbac", plain, `{"error":{"code":"Forbidden","innererror":{"code":"ForbiddenByRbac"}}}`, metrics.AuthzRBAC},
		{"arm rbac", plain, `{"error":{"code":"AuthorizationFailed","message":"..."}}`, metrics.AuthzRBAC},
		{"decided by policy", byPolicy, `{"error":{"code":"AuthorizationFailed"}}`, metrics.AuthzAccessPolicy},
		{"other", plain, `{"error":{"code":"Forbidden","message":"ForbiddenByRbac in a message only"}}`, metrics.AuthzOther},
	}
	for _, c := range cases {
		if got := forbiddenReason(c.r, []byte(c.body)); got != c.want {
			t.Errorf("%s: reason %s, want %s", c.name, metrics.AuthzReasonName(got), metrics.AuthzReasonName(c.want))
		}
	}
}

type downSink struct{}

func (downSink) Record(context.Context, audit.Event) error { return errors.New("down") }
func (downSink) Healthy() bool                             { return false }
func (downSink) Intend(context.Context, audit.Event) (audit.IntentToken, error) {
	return audit.IntentToken{}, errors.New("down")
}
func (downSink) IntentNote(audit.Event) (audit.IntentToken, []byte, error) {
	return audit.IntentToken{}, nil, errors.New("down")
}
func (downSink) Resolve(audit.IntentToken) {}

type noIssuer struct{}

func (noIssuer) Register(*http.ServeMux) {}

// A request refused because the audit log is down is a server error Availability counts.
func TestObserve_RefusedWhileAuditDown(t *testing.T) {
	m := metrics.New("vault.localhost")
	m.SetOperations(OperationNames())
	h := New(Config{PublicURL: "https://localhost:9", DNSSuffix: "vault.localhost", Metrics: m}, nil, nil, noIssuer{}, downSink{},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "https://localhost:9/subscriptions", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", rec.Code)
	}
	scrape := httptest.NewRecorder()
	m.Handler().ServeHTTP(scrape, httptest.NewRequest("GET", "/metrics", nil))
	want := `strongroom_api_requests_total{operation="Other",result="servererror",vault="_none"} 1`
	if !strings.Contains(scrape.Body.String(), want) {
		t.Fatalf("scrape lacks %s", want)
	}
}
