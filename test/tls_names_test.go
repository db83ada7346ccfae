package test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// Vaults under a configured dns_suffix: the local certificate covers the suffix, and the
// official azsecrets client, verifying TLS against ca.pem and with the challenge-resource check
// on, reads and writes secrets at https://{vault}.<suffix>. Changing the suffix on the same data
// folder gets a certificate for the new suffix from the same CA.
func TestDNSSuffix_CertificateAndGoSDK(t *testing.T) {
	ctx := context.Background()
	roundTrip := func(t *testing.T, e *env, vault string) {
		t.Helper()
		want := "https://" + vault + "." + e.srv.DNSSuffix + ":" + strconv.Itoa(e.srv.Port) + "/"
		if got := e.srv.VaultURL(vault); got != want {
			t.Fatalf("vault URL %s, want %s", got, want)
		}
		c := e.srv.Secrets(vault, e.cred, e.hc)
		if _, err := c.SetSecret(ctx, "s1", azsecrets.SetSecretParameters{Value: to.Ptr("v-" + e.srv.DNSSuffix)}, nil); err != nil {
			t.Fatalf("SetSecret at %s: %v", want, err)
		}
		got, err := c.GetSecret(ctx, "s1", "", nil)
		if err != nil || *got.Value != "v-"+e.srv.DNSSuffix {
			t.Fatalf("GetSecret at %s: %v", want, err)
		}
		if got.ID.Name() != "s1" || !strings.HasPrefix(string(*got.ID), want) {
			t.Fatalf("secret id %s is not under %s", *got.ID, want)
		}
	}

	t.Run("a suffix outside localhost", func(t *testing.T) {
		e := newEnv(t, &testenv.Options{DNSSuffix: "kv.strongroom.test"})
		leaf := servedLeaf(t, e.srv.Port, caPoolFile(t, e.srv.APICAFile()), "myvault.kv.strongroom.test")
		for _, n := range []string{"*.kv.strongroom.test", "kv.strongroom.test", "localhost"} {
			if leaf.VerifyHostname(strings.Replace(n, "*", "x", 1)) != nil {
				t.Errorf("the certificate does not cover %s: %v", n, leaf.DNSNames)
			}
		}
		e.createVault(t, "rg-suffix", "suffixkv", nil)
		v, err := e.vaults.Get(ctx, "rg-suffix", "suffixkv", nil)
		if err != nil || *v.Properties.VaultURI != e.srv.VaultURL("suffixkv") {
			t.Fatalf("vaultUri = %v (%v), want %s", v.Properties.VaultURI, err, e.srv.VaultURL("suffixkv"))
		}
		roundTrip(t, e, "suffixkv")
	})

	t.Run("the suffix changed on an existing data folder", func(t *testing.T) {
		e := newEnv(t, &testenv.Options{DNSSuffix: "vault.localhost"})
		e.createVault(t, "rg-move", "movekv", nil)
		roundTrip(t, e, "movekv")
		ca, err := os.ReadFile(e.srv.APICAFile())
		if err != nil {
			t.Fatal(err)
		}
		before := servedLeaf(t, e.srv.Port, caPoolFile(t, e.srv.APICAFile()), "localhost")

		e.srv.DNSSuffix = "secrets.localhost"
		e.srv.Restart()
		after := servedLeaf(t, e.srv.Port, caPoolFile(t, e.srv.APICAFile()), "movekv.secrets.localhost")
		if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
			t.Fatal("the server kept the certificate of the old suffix")
		}
		if now, _ := os.ReadFile(e.srv.APICAFile()); string(now) != string(ca) {
			t.Fatal("the CA changed: clients that trust the old ca.pem would break")
		}
		e = envFor(t, e.srv) // new clients: tokens are for the vault resource the challenge names
		roundTrip(t, e, "movekv")
	})
}

// An operator certificate (tls.cert_file, tls.key_file) is served as given and re-read on
// SIGHUP without dropping the listener or open connections; a bad file on SIGHUP keeps the
// current certificate and logs an error that carries no key material.
func TestCustomCertificate_ReloadOnSIGHUP(t *testing.T) {
	ctx := context.Background()
	pki := newTestPKI(t)
	certFile, keyFile := pki.issue(t, "first")
	srv := testenv.Start(t, &testenv.Options{CAFile: pki.caFile, Extra: []string{"--tls-cert-file", certFile, "--tls-key-file", keyFile}})
	if _, err := os.Stat(filepath.Join(srv.DataDir, "tls")); !os.IsNotExist(err) {
		t.Fatalf("a local CA folder was made although a certificate was supplied (%v)", err)
	}
	e := envFor(t, srv)
	kv := e.createVault(t, "rg-cert", "certkv", nil)
	if _, err := kv.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("before")}, nil); err != nil {
		t.Fatal(err)
	}
	if got := servedLeaf(t, srv.Port, pki.pool, "certkv.vault.localhost"); !got.Equal(pki.leaves["first"]) {
		t.Fatalf("serving serial %x, want the operator's %x", got.SerialNumber, pki.leaves["first"].SerialNumber)
	}
	old := dialKeepAlive(t, srv.Port, pki.pool)

	// The files are replaced (a renewal); SIGHUP makes new handshakes get the new certificate.
	pki.issueInto(t, "second", certFile, keyFile)
	hangUp(t, srv)
	waitServed(t, srv.Port, pki.pool, pki.leaves["second"])
	if status := old.get(t, "/health"); status != http.StatusOK {
		t.Fatalf("the connection opened before the reload answers %d", status)
	}
	if !old.peer().Equal(pki.leaves["first"]) {
		t.Fatal("the old connection's certificate changed")
	}
	got, err := kv.GetSecret(ctx, "s", "", nil)
	if err != nil || *got.Value != "before" {
		t.Fatalf("GetSecret after the reload: %v", err)
	}

	// A key that does not match the certificate (a half-finished renewal), then garbage: the
	// second certificate stays, and the log names the failure but no key.
	bad := []struct {
		name       string
		cert, key  []byte
		wantLogged string
	}{
		{"a key that is not the certificate's", pki.pemOf(t, "third"), pki.keyPEMOf(t, "second"), "private key does not match public key"},
		{"a certificate file that is not PEM", []byte("-----BEGIN GARBAGE-----\nnope\n"), pki.keyPEMOf(t, "second"), "failed to find"},
	}
	for i, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, certFile, tc.cert)
			writeFile(t, keyFile, tc.key)
			hangUp(t, srv)
			waitLog(t, srv, "TLS certificate reload failed", i+1)
			if !strings.Contains(srv.Stderr.String(), tc.wantLogged) {
				t.Errorf("the failure log does not say %q:\n%s", tc.wantLogged, srv.Stderr.String())
			}
			if got := servedLeaf(t, srv.Port, pki.pool, "localhost"); !got.Equal(pki.leaves["second"]) {
				t.Fatalf("after a bad reload the server serves %x, want the previous %x", got.SerialNumber, pki.leaves["second"].SerialNumber)
			}
			if !srv.Healthy() {
				t.Fatal("the server is not healthy after a bad reload")
			}
		})
	}
	logs := srv.Stderr.String()
	for _, name := range []string{"first", "second", "third"} {
		// Any run of the key file's base64 body, or its armour, is key material.
		body := strings.Split(string(pki.keyPEMOf(t, name)), "\n")[1]
		if strings.Contains(logs, "PRIVATE KEY") || strings.Contains(logs, body[:32]) {
			t.Fatalf("the server log carries key material:\n%s", logs)
		}
	}
}

// Each cluster node's public listener serves the operator certificate and reloads it on SIGHUP.
func TestCluster_CustomCertificateReload(t *testing.T) {
	pki := newTestPKI(t)
	certFile, keyFile := pki.issue(t, "first")
	c := testenv.StartCluster(t, &testenv.ClusterOptions{Size: 2, CAFile: pki.caFile,
		Extra: []string{"--tls-cert-file", certFile, "--tls-key-file", keyFile}})
	for _, n := range c.Nodes {
		if got := servedLeaf(t, n.Port, pki.pool, "localhost"); !got.Equal(pki.leaves["first"]) {
			t.Fatalf("node on port %d serves %x, want the operator's certificate", n.Port, got.SerialNumber)
		}
	}
	pki.issueInto(t, "second", certFile, keyFile)
	for _, n := range c.Nodes {
		hangUp(t, n)
		waitServed(t, n.Port, pki.pool, pki.leaves["second"])
	}
	// The cluster still serves the official client through either node.
	hc := c.HTTPClient()
	leader := c.Leader(30 * time.Second)
	e := envFor(t, leader)
	e.hc, e.cred = hc, c.Credential(leader, hc)
	kv := e.createVault(t, "rg-ctls", "clustertls", nil)
	if _, err := kv.SetSecret(context.Background(), "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
}

// testPKI is an operator's CA and the leaves it issued, by name.
type testPKI struct {
	caFile string
	pool   *x509.CertPool
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	leaves map[string]*x509.Certificate
	keys   map[string]*ecdsa.PrivateKey
	dir    string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "operator test CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{ca: ca, caKey: key, pool: x509.NewCertPool(), leaves: map[string]*x509.Certificate{},
		keys: map[string]*ecdsa.PrivateKey{}, dir: t.TempDir()}
	p.pool.AddCert(ca)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	writeFile(t, p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return p
}

// leaf issues (once) a server certificate named name for localhost, the default vault suffix
// and the loopback address.
func (p *testPKI) leaf(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	if c, ok := p.leaves[name]; ok {
		return c, p.keys[name]
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "strongroom " + name},
		DNSNames: []string{"localhost", "*.vault.localhost", "vault.localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	p.leaves[name], p.keys[name] = c, key
	return c, key
}

func (p *testPKI) pemOf(t *testing.T, name string) []byte {
	c, _ := p.leaf(t, name)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func (p *testPKI) keyPEMOf(t *testing.T, name string) []byte {
	_, k := p.leaf(t, name)
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b})
}

// issue writes leaf name's certificate and key into new files and returns their paths.
func (p *testPKI) issue(t *testing.T, name string) (certFile, keyFile string) {
	certFile, keyFile = filepath.Join(p.dir, "server.pem"), filepath.Join(p.dir, "server-key.pem")
	p.issueInto(t, name, certFile, keyFile)
	return certFile, keyFile
}

func (p *testPKI) issueInto(t *testing.T, name, certFile, keyFile string) {
	t.Helper()
	writeFile(t, certFile, p.pemOf(t, name))
	writeFile(t, keyFile, p.keyPEMOf(t, name))
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func caPoolFile(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", path)
	}
	return pool
}

// servedLeaf is the certificate a new TLS connection to port gets for serverName, verified
// against pool.
func servedLeaf(t *testing.T, port int, pool *x509.CertPool, serverName string) *x509.Certificate {
	t.Helper()
	leaf, err := tryServedLeaf(port, pool, serverName)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func tryServedLeaf(port int, pool *x509.CertPool, serverName string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(port),
		&tls.Config{RootCAs: pool, ServerName: serverName})
	if err != nil {
		return nil, fmt.Errorf("TLS to port %d as %s: %w", port, serverName, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// waitServed waits until new connections to port get want.
func waitServed(t *testing.T, port int, pool *x509.CertPool, want *x509.Certificate) {
	t.Helper()
	var last *x509.Certificate
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		leaf, err := tryServedLeaf(port, pool, "localhost")
		if err == nil && leaf.Equal(want) {
			return
		}
		last = leaf
	}
	t.Fatalf("port %d still serves %v after SIGHUP, want serial %x", port, last.SerialNumber, want.SerialNumber)
}

func hangUp(t *testing.T, srv *testenv.Server) {
	t.Helper()
	if err := syscall.Kill(srv.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits until the server's log holds n lines containing msg.
func waitLog(t *testing.T, srv *testenv.Server, msg string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Count(srv.Stderr.String(), msg) >= n {
			return
		}
	}
	t.Fatalf("no %d× %q in the server log:\n%s", n, msg, srv.Stderr.String())
}

// keepAlive is one HTTP/1.1 connection kept open across requests.
type keepAlive struct {
	conn *tls.Conn
	r    *bufio.Reader
}

func dialKeepAlive(t *testing.T, port int, pool *x509.CertPool) *keepAlive {
	t.Helper()
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	k := &keepAlive{conn: conn, r: bufio.NewReader(conn)}
	if status := k.get(t, "/health"); status != http.StatusOK {
		t.Fatalf("GET /health: %d", status)
	}
	return k
}

func (k *keepAlive) get(t *testing.T, path string) int {
	t.Helper()
	if _, err := fmt.Fprintf(k.conn, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path); err != nil {
		t.Fatalf("writing on the kept connection: %v", err)
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		t.Fatalf("reading on the kept connection: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (k *keepAlive) peer() *x509.Certificate { return k.conn.ConnectionState().PeerCertificates[0] }
