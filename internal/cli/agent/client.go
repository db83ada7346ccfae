package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The server's agent routes and the host assertion they check (see the server's
// identity.VerifyHostAssertion for the format; this is the signing side).
const (
	registerPath    = "/providers/Strongroom.Identity/hostAgent/register"
	tokenPath       = "/providers/Strongroom.Identity/hostAgent/token"
	assertionHeader = "X-Strongroom-Host-Assertion"
	assertionAud    = "urn:strongroom:host-agent"
	assertionType   = "host-assertion+jwt"
	assertionLife   = 2 * time.Minute
	tokenPrefix     = "srh1."
)

// Files of the data directory.
const (
	keyFile  = "host.key" // the host's private key (PKCS#8 PEM), 0600
	certFile = "host.crt" // its certificate, 0600
	caFile   = "host-ca.pem"
	hostFile = "host.json"
)

type serverClient struct {
	base *url.URL
	http *http.Client
	now  func() time.Time
	tls  *tls.Config // the server's trust, for the mTLS client

	// mtls, when set, is the server's host-agent listener: token requests go there over mutual
	// TLS with the host certificate (mtlsHTTP) instead of to base with a host assertion.
	mtls     *url.URL
	mtlsHTTP *http.Client

	host   string
	key    *ecdsa.PrivateKey
	certID string // hex SHA-256 of the certificate DER
}

func newServerClient(server, caFile string, now func() time.Time) (*serverClient, error) {
	u, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want https://host[:port]", server)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading --ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	return &serverClient{base: u, now: now, tls: tc, http: &http.Client{Timeout: 30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// register redeems a one-time registration token: it makes a key here, sends a certificate
// request for it and stores the key and the certificate the server signed.
func (c *serverClient) register(ctx context.Context, dir, token string) error {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	dot := strings.LastIndexByte(rest, '.')
	if !ok || dot <= 0 {
		return errors.New("the registration token is malformed (it starts with srh1.)")
	}
	host := rest[:dot]
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the host key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: host}}, key)
	if err != nil {
		return fmt.Errorf("making the certificate request: %w", err)
	}
	body, _ := json.Marshal(map[string]string{"registrationToken": token, "csr": base64.StdEncoding.EncodeToString(csr)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+registerPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("registering with %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("registering: %s", serverMessage(resp.StatusCode, raw))
	}
	var out struct {
		Host, HostID, Certificate, CA string
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Certificate == "" {
		return errors.New("registering: the server's answer holds no certificate")
	}
	b, _ := pem.Decode([]byte(out.Certificate))
	if b == nil {
		return errors.New("registering: the server's certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return fmt.Errorf("registering: %w", err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("registering: the certificate is not for the key sent")
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	meta, _ := json.Marshal(map[string]string{"host": out.Host, "hostId": out.HostID, "server": c.base.String()})
	for _, f := range []struct {
		name string
		data []byte
	}{
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		{certFile, []byte(out.Certificate)},
		{caFile, []byte(out.CA)},
		{hostFile, meta},
	} {
		if err := writePrivate(filepath.Join(dir, f.name), f.data); err != nil {
			return err
		}
	}
	clear(keyDER)
	return nil
}

// loadCredential reads the host key and certificate from dir.
func (c *serverClient) loadCredential(dir string) error {
	keyPEM, err := os.ReadFile(filepath.Join(dir, keyFile))
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("this host is not registered: run the agent once with --registration-token (from `strongroom identity host register`)")
	}
	if err != nil {
		return fmt.Errorf("reading the host key: %w", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, keyFile)); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", keyFile, fi.Mode().Perm())
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return fmt.Errorf("%s is not PEM", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return fmt.Errorf("parsing the host key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return errors.New("the host key is not an ECDSA key")
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, certFile))
	if err != nil {
		return fmt.Errorf("reading the host certificate: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil {
		return fmt.Errorf("%s is not PEM", certFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return fmt.Errorf("parsing the host certificate: %w", err)
	}
	sum := sha256.Sum256(cb.Bytes)
	c.key, c.certID, c.host = key, hex.EncodeToString(sum[:]), cert.Subject.CommonName
	if c.mtls != nil {
		tc := c.tls.Clone()
		tc.Certificates = []tls.Certificate{{Certificate: [][]byte{cb.Bytes}, PrivateKey: key, Leaf: cert}}
		c.mtlsHTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return nil
}

// useMTLS sends token requests to the server's host-agent listener at raw (https://host:port).
func (c *serverClient) useMTLS(raw string) error {
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("--mtls-server %q: want https://host:port", raw)
	}
	c.mtls = u
	return nil
}

// assertion signs a host assertion for body.
func (c *serverClient) assertion(body []byte) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	bh := sha256.Sum256(body)
	now := c.now()
	claims, _ := json.Marshal(map[string]any{"iss": c.host, "sub": c.host, "aud": assertionAud, "iat": now.Unix(),
		"exp": now.Add(assertionLife).Unix(), "jti": hex.EncodeToString(jti), "bh": base64.RawURLEncoding.EncodeToString(bh[:])})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: c.key, KeyID: c.certID}},
		(&jose.SignerOptions{}).WithType(assertionType))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// token asks the server for a token (at its host-agent listener over mutual TLS when one is
// configured, else at the main listener with a host assertion); status is 0 when no answer came
// (a network error).
func (c *serverClient) token(ctx context.Context, r request, current string) (tokenAnswer, int, error) {
	body, _ := json.Marshal(map[string]string{"resource": r.resource, "clientId": r.clientID, "objectId": r.objectID,
		"miResId": r.miResID, "current": current})
	target, hc := c.base.String()+tokenPath, c.http
	if c.mtls != nil {
		target, hc = c.mtls.String()+"/token", c.mtlsHTTP
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return tokenAnswer{}, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.mtls == nil {
		assertion, err := c.assertion(body)
		if err != nil {
			return tokenAnswer{}, 0, err
		}
		req.Header.Set(assertionHeader, assertion)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return tokenAnswer{}, 0, fmt.Errorf("asking %s for a token: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return tokenAnswer{}, resp.StatusCode, errors.New(serverMessage(resp.StatusCode, raw))
	}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   int64  `json:"expires_on"`
		Resource    string `json:"resource"`
		ClientID    string `json:"client_id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.AccessToken == "" {
		return tokenAnswer{}, http.StatusBadGateway, errors.New("the server's answer holds no token")
	}
	return tokenAnswer{AccessToken: out.AccessToken, ExpiresOn: strconv.FormatInt(out.ExpiresOn, 10), Resource: r.resource,
		TokenType: "Bearer", ClientID: out.ClientID}, http.StatusOK, nil
}

// serverMessage is the message of an ARM-shaped error answer.
func serverMessage(status int, raw []byte) string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return fmt.Sprintf("%s (%d %s)", e.Error.Message, status, e.Error.Code)
	}
	return fmt.Sprintf("the server answered %d", status)
}
