package audit_test

import (
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
)

func TestRedactURI(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://kv.vault.localhost/secrets/a?api-version=7.4", "https://kv.vault.localhost/secrets/a?api-version=7.4"},
		{"/secrets/a", "/secrets/a"},
		{"/secrets?api-version=7.4&maxresults=2&$skiptoken=abc&$skipToken=d", "/secrets?api-version=7.4&maxresults=2&$skiptoken=abc&$skipToken=d"},
		{"/t/oauth2/v2.0/token?client_secret=hunter2&client_id=app", "/t/oauth2/v2.0/token?client_secret=REDACTED&client_id=REDACTED"},
		{"/x?API-VERSION=1&Client_Secret=s3&unknown=v", "/x?API-VERSION=1&Client_Secret=REDACTED&unknown=REDACTED"},
		{"/x?client%5Fsecret=s3&api%2Dversion=7.4", "/x?client%5Fsecret=REDACTED&api%2Dversion=7.4"},
		{"/x?api-version=7.4;client_secret=s3", "/x?api-version=REDACTED"},
		{"/x?a;client_secret=s3&api-version=1", "/x?REDACTED&api-version=1"},
		{"/x?bare-token-s3&api-version", "/x?REDACTED&api-version"},
		{"/x?" + long + "=v", "/x?REDACTED"},
		{"/x?&&api-version=1&", "/x?&&api-version=1&"},
		{"/x?a=1&&b=2", "/x?a=REDACTED&&b=REDACTED"},
		{"/x?api-version=1#frag-s3", "/x?api-version=1#REDACTED"},
		{"/x#frag-s3", "/x#REDACTED"},
		{"/x?", "/x?"},
		{"/x?secret=", "/x?secret=REDACTED"},
		{"/subscriptions/s/resources?$filter=resourceType+eq+'Microsoft.KeyVault/vaults'&$top=5&$expand=x&$select=y&api-version=2015-11-01",
			"/subscriptions/s/resources?$filter=resourceType+eq+'Microsoft.KeyVault/vaults'&$top=5&$expand=x&$select=y&api-version=2015-11-01"},
		{"/common/discovery/instance?api-version=1.1&authorization_endpoint=https://h/t/oauth2/v2.0/authorize",
			"/common/discovery/instance?api-version=1.1&authorization_endpoint=https://h/t/oauth2/v2.0/authorize"},
		{"/t/oauth2/v2.0/token?client-request-id=c&x-client-SKU=MSAL.Go&x-client-Ver=1", "/t/oauth2/v2.0/token?client-request-id=c&x-client-SKU=MSAL.Go&x-client-Ver=1"},
	}
	for _, c := range cases {
		if got := audit.RedactURI(c.in); got != c.want {
			t.Errorf("RedactURI(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
	}
}

var long = strings.Repeat("k", 65) // longer than any parameter name

// The common case (only allowlisted parameters) costs nothing.
func TestRedactURI_NoAllocationWhenClean(t *testing.T) {
	uri := "https://kv.vault.localhost:8443/secrets/a/?api-version=7.4"
	if n := testing.AllocsPerRun(100, func() { _ = audit.RedactURI(uri) }); n != 0 {
		t.Fatalf("%v allocations per clean URI", n)
	}
}

func BenchmarkRedactURI(b *testing.B) {
	for _, c := range []struct{ name, uri string }{
		{"clean", "https://kv.vault.localhost:8443/secrets/a/?api-version=7.4"},
		{"secret", "https://localhost:8443/t/oauth2/v2.0/token?client_secret=s3&client-request-id=c&x=1"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = audit.RedactURI(c.uri)
			}
		})
	}
}
