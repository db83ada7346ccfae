package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/strongroom/strongroom/internal/pki"
)

// serverName is the DNS name every node certificate carries and every node verifies: nodes are
// identified by certificate (issued by the cluster CA, common name = node id), not by host name.
const serverName = "strongroom-cluster"

// Files in <data_dir>/cluster/ (folder 0700, keys 0600):
//
//	ca.pem        cluster CA certificate
//	ca-key.pem    cluster CA key (PKCS#8): only on the bootstrapping node (or a node of a cluster
//	              from before cakey.go), until it is first unsealed and moves the key into the store
//	node.pem      this node's certificate (client and server auth, CN and URI SAN = node id)
//	node-key.pem  this node's key (PKCS#8)
//	node.json     {"id", "region", "addr"}: what this folder was issued for
type material struct {
	dir     string
	caCert  *x509.Certificate
	caKey   *ecdsa.PrivateKey // nil unless cluster/ca-key.pem exists
	caPEM   []byte
	node    tls.Certificate
	nodeDoc nodeDoc
}

type nodeDoc struct {
	ID     string `json:"id"`
	Region string `json:"region"`
	Addr   string `json:"addr"`
}

// errNoMaterial means the node has not joined or bootstrapped a cluster yet.
var errNoMaterial = errors.New("no cluster certificates")

func loadMaterial(dir string) (*material, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoMaterial
	} else if err != nil {
		return nil, fmt.Errorf("reading cluster CA: %w", err)
	}
	m := &material{dir: dir, caPEM: caPEM}
	if m.caCert, err = parseCert(caPEM); err != nil {
		return nil, fmt.Errorf("reading cluster CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	switch {
	case errors.Is(err, os.ErrNotExist): // in the store (cakey.go)
	case err != nil:
		return nil, fmt.Errorf("reading cluster CA key: %w", err)
	default:
		if m.caKey, err = parseKey(keyPEM); err != nil {
			return nil, fmt.Errorf("reading cluster CA key: %w", err)
		}
	}
	if m.node, err = tls.LoadX509KeyPair(filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem")); err != nil {
		return nil, fmt.Errorf("reading node certificate: %w", err)
	}
	doc, err := os.ReadFile(filepath.Join(dir, "node.json"))
	if err != nil {
		return nil, fmt.Errorf("reading node.json: %w", err)
	}
	if err := json.Unmarshal(doc, &m.nodeDoc); err != nil {
		return nil, fmt.Errorf("parsing node.json: %w", err)
	}
	return m, nil
}

// newCA makes a cluster CA (ECDSA P-256, ten years).
func newCA() (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	cert, der, key, err := pki.NewCA(pkix.Name{CommonName: "Strongroom cluster CA"})
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// signNode issues a node certificate for pub naming id as its common name and URI SAN (two
// years).
func signNode(ca *x509.Certificate, caKey *ecdsa.PrivateKey, id string, pub any) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: pki.Serial(),
		Subject:      pkix.Name{CommonName: id},
		DNSNames:     []string{serverName},
		URIs:         []*url.URL{nodeURI(id)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("signing node certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// newNodeKey makes a node key and a CSR for it.
func newNodeKey(id string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id}}, key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

func parseCSR(p []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("checking request signature: %w", err)
	}
	return csr, nil
}

func parseCert(p []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("not a PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(p []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(p)
	if b == nil {
		return nil, fmt.Errorf("not a PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("not an ECDSA key")
	}
	return ek, nil
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeMaterial writes a complete cluster folder atomically enough for start-up: node.json, the
// file whose presence says the folder is complete, is written last.
func writeMaterial(dir string, caPEM, caKeyPEM, certPEM, nodeKeyPEM []byte, doc nodeDoc) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating cluster folder: %w", err)
	}
	docJSON, _ := json.MarshalIndent(doc, "", "  ")
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca-key.pem", caKeyPEM, 0o600},
		{"node-key.pem", nodeKeyPEM, 0o600},
		{"node.pem", certPEM, 0o644},
		{"ca.pem", caPEM, 0o644},
		{"node.json", append(docJSON, '\n'), 0o644},
	}
	for _, f := range files {
		if f.data == nil {
			continue // no CA key: a joiner never holds it
		}
		if err := writeSync(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("writing cluster %s: %w", f.name, err)
		}
	}
	return nil
}

func writeSync(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// bootstrapMaterial creates the CA and this node's certificate for a new cluster.
func bootstrapMaterial(dir string, doc nodeDoc) (*material, error) {
	ca, caKey, caPEM, err := newCA()
	if err != nil {
		return nil, fmt.Errorf("creating cluster CA: %w", err)
	}
	nodeKey, _, err := newNodeKey(doc.ID)
	if err != nil {
		return nil, err
	}
	certPEM, err := signNode(ca, caKey, doc.ID, &nodeKey.PublicKey)
	if err != nil {
		return nil, err
	}
	caKeyPEM, err := keyPEM(caKey)
	if err != nil {
		return nil, err
	}
	nkPEM, err := keyPEM(nodeKey)
	if err != nil {
		return nil, err
	}
	if err := writeMaterial(dir, caPEM, caKeyPEM, certPEM, nkPEM, doc); err != nil {
		return nil, err
	}
	return loadMaterial(dir)
}

// serverTLS accepts only peers presenting a certificate from the cluster CA; allowed (when not
// nil) further restricts peers to current members (see memberID).
func (m *material) serverTLS(protos []string, allowed func(c *x509.Certificate) error) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(m.caCert)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.node},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   protos,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("no client certificate")
			}
			if allowed != nil {
				return allowed(cs.PeerCertificates[0])
			}
			return nil
		},
	}
}

// clientTLS dials cluster peers with this node's certificate, verifying theirs.
func (m *material) clientTLS(proto string) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(m.caCert)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.node},
		RootCAs:      pool,
		ServerName:   serverName,
		NextProtos:   []string{proto},
	}
}
