package testenv

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Partitioner sits between the nodes of a cluster on loopback so a test can cut a node off in
// both directions. Every node listens on its own loopback IP (127.0.0.11, .12, ...; Linux
// routes all of 127/8 to lo) and advertises a proxy on 127.0.0.1 instead; nodes dial peers from
// their own IP (the server binds outbound cluster connections to its --cluster-addr IP). The
// proxy of node i forwards to i's real address unless i or the dialing node (known by the
// connection's source IP) is isolated.
type Partitioner struct {
	t       testing.TB
	mu      sync.Mutex
	proxies []*nodeProxy
	cut     map[string]bool // isolated node IPs
}

type nodeProxy struct {
	ln     net.Listener
	target string              // the node's real cluster address
	ip     string              // the node's own IP
	conns  map[net.Conn]string // accepted connection -> its source IP
	p      *Partitioner
}

// NewPartitioner makes an empty partitioner; AddNode gives each node its addresses.
func NewPartitioner(t testing.TB) *Partitioner {
	p := &Partitioner{t: t, cut: map[string]bool{}}
	t.Cleanup(p.close)
	return p
}

// AddNode allocates node i's (0-based) own cluster address and its proxy; the server must be
// started with --cluster-addr listen --cluster-advertise advertise.
func (p *Partitioner) AddNode(i int) (listen, advertise string) {
	p.t.Helper()
	ip := net.IPv4(127, 0, 0, byte(11+i)).String()
	l, err := net.Listen("tcp", ip+":0") // the node's IP must be routable
	if err != nil {
		p.t.Fatalf("listening on %s (needs the 127/8 loopback route): %v", ip, err)
	}
	l.Close()
	listen = net.JoinHostPort(ip, strconv.Itoa(reservePort(p.t, ip)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	np := &nodeProxy{ln: ln, target: listen, ip: ip, conns: map[net.Conn]string{}, p: p}
	p.mu.Lock()
	p.proxies = append(p.proxies, np)
	p.mu.Unlock()
	go np.serve()
	return listen, ln.Addr().String()
}

// Isolate cuts node i off from every other node: its open cluster connections are closed and
// new ones in either direction are refused until Heal.
func (p *Partitioner) Isolate(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ip := p.proxies[i].ip
	p.cut[ip] = true
	for _, np := range p.proxies {
		for c, src := range np.conns {
			if np.ip == ip || src == ip {
				c.Close()
				delete(np.conns, c)
			}
		}
	}
}

// Heal lets node i talk to the others again.
func (p *Partitioner) Heal(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cut, p.proxies[i].ip)
}

func (p *Partitioner) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, np := range p.proxies {
		np.ln.Close()
		for c := range np.conns {
			c.Close()
		}
	}
}

func (np *nodeProxy) serve() {
	for {
		c, err := np.ln.Accept()
		if err != nil {
			return
		}
		src, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		np.p.mu.Lock()
		if np.p.cut[np.ip] || np.p.cut[src] {
			np.p.mu.Unlock()
			c.Close()
			continue
		}
		np.conns[c] = src
		np.p.mu.Unlock()
		go np.pipe(c)
	}
}

func (np *nodeProxy) pipe(c net.Conn) {
	defer func() {
		np.p.mu.Lock()
		delete(np.conns, c)
		np.p.mu.Unlock()
		c.Close()
	}()
	up, err := net.Dial("tcp", np.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); up.Close(); done <- struct{}{} }()
	go func() { io.Copy(c, up); c.Close(); done <- struct{}{} }()
	<-done
}
