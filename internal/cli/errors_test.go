package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// fakeResponse builds the kind of response the SDKs turn into errors.
func fakeResponse(status int, body string, header http.Header) *http.Response {
	u, _ := url.Parse("https://kv.vault.localhost:8443/secrets/x/?api-version=2026-04-01")
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{
		StatusCode: status,
		Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header:     header,
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    &http.Request{Method: http.MethodGet, URL: u},
	}
}

func TestErrorLine(t *testing.T) {
	notFound := runtime.NewResponseError(fakeResponse(404,
		`{"error":{"code":"SecretNotFound","message":"A secret with (name/id) x was not found in this key vault."}}`, nil))
	tests := []struct {
		name     string
		err      error
		want     string
		wantCode int
	}{
		{
			name:     "key vault 404 wrapped with context",
			err:      notFoundOr(notFound, "secret", "getting secret"),
			want:     "secret not found: (SecretNotFound) A secret with (name/id) x was not found in this key vault.",
			wantCode: exitNotFound,
		},
		{
			name: "enclosing resource named by the code",
			err: notFoundOr(runtime.NewResponseError(fakeResponse(404,
				`{"error":{"code":"VaultNotFound","message":"The vault 'v' was not found."}}`, nil)), "secret", "getting secret"),
			want:     "vault not found: (VaultNotFound) The vault 'v' was not found.",
			wantCode: exitNotFound,
		},
		{
			name: "error code from header, unwrapped body",
			err: fmt.Errorf("setting secret: %w", runtime.NewResponseError(fakeResponse(409,
				`{"code":"Conflict","message":"Secret x is currently in a deleted but recoverable state."}`,
				http.Header{"X-Ms-Error-Code": {"Conflict"}}))),
			want:     "setting secret: (Conflict) Secret x is currently in a deleted but recoverable state.",
			wantCode: exitError,
		},
		{
			name:     "no body",
			err:      fmt.Errorf("purging vault: %w", runtime.NewResponseError(fakeResponse(500, "", nil))),
			want:     "purging vault: the server answered 500 Internal Server Error",
			wantCode: exitError,
		},
		{
			name: "oauth error",
			err: fmt.Errorf("logging in: %w", &azidentity.AuthenticationFailedError{RawResponse: fakeResponse(401,
				`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`, nil)}),
			want:     "logging in: authentication failed: (invalid_client) AADSTS7000215: Invalid client secret provided.",
			wantCode: exitError,
		},
		{
			name:     "multi-line plain error",
			err:      errors.New("first line\n-----\n  second line\n"),
			want:     "first line second line",
			wantCode: exitError,
		},
		{name: "usage error", err: usageErrorf("bad --tags"), want: "bad --tags", wantCode: exitUsage},
		{name: "cobra usage error", err: errors.New(`required flag(s) "name" not set`), want: `required flag(s) "name" not set`, wantCode: exitUsage},
		{name: "lookup miss", err: &notFoundError{msg: "no deleted vault was found with name v"}, want: "no deleted vault was found with name v", wantCode: exitNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errorLine(tt.err)
			if got != tt.want {
				t.Errorf("errorLine() = %q, want %q", got, tt.want)
			}
			if strings.Contains(got, "\n") {
				t.Errorf("errorLine() spans lines: %q", got)
			}
			if c := exitCode(tt.err); c != tt.wantCode {
				t.Errorf("exitCode() = %d, want %d", c, tt.wantCode)
			}
		})
	}
}
