package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ALPN protocols on the cluster port. Raft's own framing runs on protoRaft; node-to-node calls
// (forwarded batches, status, operator calls, root-key staging) on protoRPC; API requests a
// follower forwards on behalf of a client on protoForward. The forward protocol has its own
// handler, which can reach nothing but the public API as that client (see forward.go): no
// spelling of a forwarded request can land on a node-to-node route.
const (
	protoRaft    = "strongroom-raft/1"
	protoRPC     = "strongroom-rpc/1"
	protoForward = "strongroom-fwd/1"
)

// mux accepts mutually authenticated TLS connections on the cluster port and hands each to the
// Raft stream layer or the RPC server according to its ALPN protocol.
type mux struct {
	ln   net.Listener
	raft *chanListener
	rpc  *chanListener
	fwd  *chanListener
	log  *slog.Logger
	wg   sync.WaitGroup
}

func newMux(addr string, cfg *tls.Config, log *slog.Logger) (*mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on cluster address %s: %w", addr, err)
	}
	m := &mux{ln: tls.NewListener(ln, cfg), raft: newChanListener(ln.Addr()), rpc: newChanListener(ln.Addr()), fwd: newChanListener(ln.Addr()), log: log}
	m.wg.Add(1)
	go m.serve()
	return m, nil
}

func (m *mux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				m.raft.Close()
				m.rpc.Close()
				m.fwd.Close()
				return
			}
			continue
		}
		go m.route(c.(*tls.Conn))
	}
}

func (m *mux) route(c *tls.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		m.log.Debug("cluster handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	switch c.ConnectionState().NegotiatedProtocol {
	case protoRaft:
		m.raft.deliver(c)
	case protoRPC:
		// net/http closes a *tls.Conn whose ALPN protocol it has no handler for; hide the type
		// and keep the connection state for the handler (see rpcConn).
		m.rpc.deliver(&rpcConn{Conn: c, state: c.ConnectionState()})
	case protoForward:
		m.fwd.deliver(&rpcConn{Conn: c, state: c.ConnectionState()})
	default:
		c.Close()
	}
}

func (m *mux) Close() error {
	err := m.ln.Close()
	m.wg.Wait()
	return err
}

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// streamLayer is Raft's transport over the mux: it accepts the Raft connections and dials peers
// with this node's certificate.
type streamLayer struct {
	*chanListener
	advertise net.Addr
	tls       *tls.Config
	source    *net.TCPAddr // local address of outbound connections; nil: the kernel's choice
	// verify checks which node answered at an address (Node.verifyAnswer).
	verify func(addr string, cs tls.ConnectionState) error
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.source != nil {
		d.LocalAddr = s.source
	}
	cfg := s.tls
	if s.verify != nil {
		cfg = cfg.Clone()
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return s.verify(string(address), cs) }
	}
	return tls.DialWithDialer(d, "tcp", string(address), cfg)
}

// sourceAddr is the local address outbound cluster connections use: the listen address's IP when
// it names one (so peers and firewalls see the node's cluster IP on multi-homed hosts), else nil.
func sourceAddr(listen string) *net.TCPAddr {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return nil
	}
	return &net.TCPAddr{IP: ip}
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

// rpcConn is a handshaken cluster connection served as plain HTTP/1.1; state is its TLS state.
type rpcConn struct {
	net.Conn
	state tls.ConnectionState
}
