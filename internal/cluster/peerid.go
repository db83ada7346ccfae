package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// A member's identity is its node id, carried in its certificate as the URI SAN
// "urn:strongroom:node:<id>" (certificates issued before the SAN existed: the common name), and
// pinned: the SHA-256 of the certificate a node joined (or bootstrapped) with is kept in its
// node record, and a certificate for that id with another fingerprint is refused, so a holder of
// the cluster CA key (a removed member, a stolen backup) cannot impersonate a current member.
const nodeURIPrefix = "urn:strongroom:node:"

// nodeURI is the URI SAN that names node id in its certificate.
func nodeURI(id string) *url.URL {
	u, _ := url.Parse(nodeURIPrefix + id)
	return u
}

// certNodeID is the node id a certificate names.
func certNodeID(c *x509.Certificate) string {
	for _, u := range c.URIs {
		if s := u.String(); strings.HasPrefix(s, nodeURIPrefix) {
			return strings.TrimPrefix(s, nodeURIPrefix)
		}
	}
	return c.Subject.CommonName
}

// certPin is the fingerprint a node record pins.
func certPin(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// memberID checks a peer certificate (already verified against the cluster CA) against the
// current configuration and the pinned fingerprint, and returns the node id it names.
func (n *Node) memberID(c *x509.Certificate) (string, error) {
	id := certNodeID(c)
	if !n.isMember(id) {
		return "", fmt.Errorf("node %q is not a cluster member", id)
	}
	if err := n.checkPin(id, c); err != nil {
		return "", err
	}
	return id, nil
}

// checkPin refuses a certificate for id whose fingerprint differs from the pinned one. A node
// record without a pin of this cluster's CA (a cluster from before pinning until the node
// restarts, or a record restored from another cluster's snapshot until the node re-records it)
// admits the certificate by id alone.
func (n *Node) checkPin(id string, c *x509.Certificate) error {
	st := n.member.Load()
	if st == nil {
		return nil // joining: no records yet
	}
	b, err := st.Get(context.Background(), nodePrefix+id)
	if err != nil {
		return nil
	}
	m, err := parseNodeMeta(b)
	if err != nil || m.CertSHA256 == "" || m.CA != certPin(n.mat.caCert.Raw) {
		return nil
	}
	if m.CertSHA256 != certPin(c.Raw) {
		return fmt.Errorf("the certificate presented for node %q is not the one it joined with", id)
	}
	return nil
}

// verifyAnswer checks, on an outbound connection to addr, that the node answering is the member
// the configuration lists at that address (any current member when none is listed there).
func (n *Node) verifyAnswer(addr string, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("cluster peer %s presented no certificate", addr)
	}
	c := cs.PeerCertificates[0]
	id := certNodeID(c)
	if want, ok := n.idAt(addr); ok && want != id {
		return fmt.Errorf("cluster peer at %s is node %q, but the configuration lists %q there", addr, id, want)
	}
	if n.member.Load() == nil {
		return nil // starting: Raft's configuration is not loaded yet
	}
	_, err := n.memberID(c)
	return err
}

// idAt is the node id the Raft configuration lists at addr.
func (n *Node) idAt(addr string) (string, bool) {
	st := n.member.Load()
	if st == nil {
		return "", false
	}
	f := st.Raft().GetConfiguration()
	if f.Error() != nil {
		return "", false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.Address) == addr {
			return string(s.ID), true
		}
	}
	return "", false
}

// dialTLS dials a member at addr with proto and checks who answered.
func (n *Node) dialTLS(ctx context.Context, d *net.Dialer, addr string, cfg *tls.Config) (net.Conn, error) {
	c := cfg.Clone()
	c.VerifyConnection = func(cs tls.ConnectionState) error { return n.verifyAnswer(addr, cs) }
	return (&tls.Dialer{NetDialer: d, Config: c}).DialContext(ctx, "tcp", addr)
}

// Caller is who made an operator call or sent a batch, for the audit record.
type Caller struct {
	// Node is the member whose certificate carried the call; "" for this node's own socket.
	Node string
	// Socket is true when the call came from an operator socket (this node's or Node's).
	Socket bool
	// UID is the local user that connected to that operator socket; -1 when unknown.
	UID int
}

func (c Caller) String() string {
	var b strings.Builder
	switch {
	case c.Socket && c.Node == "":
		b.WriteString("this node's operator socket")
	case c.Socket:
		b.WriteString("the operator socket of node " + c.Node)
	default:
		b.WriteString("cluster member " + c.Node)
	}
	if c.Socket && c.UID >= 0 {
		fmt.Fprintf(&b, " (uid %d)", c.UID)
	}
	return b.String()
}

type callerKey struct{}

func withCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom is the caller of the operator call or batch being audited.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

type peerKey struct{}

func withPeer(ctx context.Context, id string) context.Context {
	return context.WithValue(withCaller(ctx, Caller{Node: id, UID: -1}), peerKey{}, id)
}

func peerFrom(ctx context.Context) string {
	id, _ := ctx.Value(peerKey{}).(string)
	return id
}

// SocketConnContext is an operator socket server's ConnContext: calls on the connection are
// audited as the connecting local user.
func SocketConnContext(ctx context.Context, c net.Conn) context.Context {
	return withCaller(ctx, Caller{Socket: true, UID: SocketPeerUID(c)})
}
