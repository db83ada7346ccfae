package issuer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/strongroom/strongroom/internal/identity"
)

// FederationCAFileEnv names an extra PEM CA bundle trusted, besides the system roots, when the
// server fetches external OpenID Connect issuers' discovery documents and keys (workload
// identity federation with a private issuer, and tests).
const FederationCAFileEnv = "STRONGROOM_FEDERATION_CA_FILE"

const (
	// maxFetchBytes bounds discovery documents and key sets.
	maxFetchBytes = 1 << 20
	fetchTimeout  = 10 * time.Second
)

// OIDCFetcher fetches external issuers' signing keys for identity's workload identity
// federation: {iss}/.well-known/openid-configuration (whose issuer must be iss exactly), then
// its jwks_uri, both over HTTPS only (redirects too), within 10 seconds and 1 MiB each.
type OIDCFetcher struct {
	once   sync.Once
	caFile string
	client *http.Client
	err    error
}

// NewOIDCFetcher trusts the system roots plus the PEM bundle caFile ("" for none); the file is
// read on first use, so a bad one fails federated sign-ins (with ErrFederationFetch), not the
// server's start.
func NewOIDCFetcher(caFile string) *OIDCFetcher { return &OIDCFetcher{caFile: caFile} }

func (f *OIDCFetcher) httpClient() (*http.Client, error) {
	f.once.Do(func() { f.client, f.err = federationClient(f.caFile) })
	return f.client, f.err
}

// federationClient is an HTTPS-only client trusting the system roots plus caFile's.
func federationClient(caFile string) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading federation CA file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading federation CA file %s: no PEM certificates", caFile)
		}
	}
	tr := &http.Transport{
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		Proxy:                 http.ProxyFromEnvironment,
		TLSHandshakeTimeout:   fetchTimeout,
		ResponseHeaderTimeout: fetchTimeout,
		MaxIdleConnsPerHost:   2,
	}
	return &http.Client{Transport: tr, Timeout: fetchTimeout, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if r.URL.Scheme != "https" || len(via) >= 3 {
			return errors.New("refusing redirect")
		}
		return nil
	}}, nil
}

// FetchIssuerKeys implements identity.IssuerKeyFetcher.
func (f *OIDCFetcher) FetchIssuerKeys(ctx context.Context, iss string) (jose.JSONWebKeySet, error) {
	hc, err := f.httpClient()
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: %v", identity.ErrFederationFetch, err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, hc, strings.TrimSuffix(iss, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	if doc.Issuer != iss {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: the discovery document names another issuer", identity.ErrFederationFetch)
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, hc, doc.JWKSURI, &set); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return set, nil
}

func getJSON(ctx context.Context, hc *http.Client, raw string, v any) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%w: %q is not an https URL", identity.ErrFederationFetch, echo(raw))
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %v", identity.ErrFederationFetch, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", identity.ErrFederationFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered HTTP %d", identity.ErrFederationFetch, u.Host, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBytes+1))
	if err != nil || len(body) > maxFetchBytes {
		return fmt.Errorf("%w: reading %s", identity.ErrFederationFetch, u.Host)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %s answered malformed JSON", identity.ErrFederationFetch, u.Host)
	}
	return nil
}
