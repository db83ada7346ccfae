package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/store/raftstore"
)

// Request headers of the forwarding protocol.
const (
	// HeaderConsistency: "stale" lets any node answer a GET or HEAD from its own copy.
	HeaderConsistency = "X-Strongroom-Consistency"
	// headerForwardedFor carries the client's address from the follower to the leader; the leader
	// trusts it only on the forward protocol of the cluster port (mutual TLS, current members).
	headerForwardedFor = "X-Strongroom-Forwarded-For"
	// HeaderServedBy names the node that executed the request.
	HeaderServedBy = "X-Strongroom-Node"
)

// Handler puts cluster behaviour in front of the public API handler: node-local paths are served
// here, stale reads locally, everything else by the leader (this node after a read barrier, or
// the leader through the cluster port's forward protocol). ready reports whether this node may
// serve the API (unsealed, not shutting down); a node that may not forwards nothing: api answers
// for it (503 sealed). Requests naming a node-to-node route in any spelling are never forwarded:
// api answers them here like any unknown path, so they are authenticated and audited as such.
func (n *Node) Handler(api http.Handler, ready func() bool) http.Handler {
	n.api.Store(&api)
	n.ready.Store(&ready)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "https"
			pr.Out.URL.Host = pr.In.Context().Value(leaderKey{}).(string)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(headerForwardedFor, pr.In.RemoteAddr)
		},
		Transport: n.forwarder,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			n.log.Warn("forwarding to the leader failed", "err", err)
			unavailable(w, "The cluster leader could not be reached; retry.")
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A client never sets the forwarding protocol's headers.
		r.Header.Del(headerForwardedFor)
		switch {
		case internalTarget(r):
			api.ServeHTTP(w, unknownPath(r))
			return
		case r.URL.Path == "/health" && r.Method == http.MethodGet:
			n.serveHealth(w, r, api)
			return
		case localPath(r.URL.Path), ready != nil && !ready():
			api.ServeHTTP(w, r)
			return
		case r.URL.Path == "/sys/cluster/join" && r.Method == http.MethodPost:
			if n.store.IsLeader() {
				n.serveJoin(w, r)
				return
			}
		case (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.EqualFold(r.Header.Get(HeaderConsistency), "stale"):
			w.Header().Set(HeaderServedBy, n.cfg.NodeID)
			api.ServeHTTP(w, r)
			return
		}
		if n.store.IsLeader() && n.serveLeader(w, r, true) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*n.cfg.ElectionTimeout+2*time.Second)
		addr, id, err := n.store.WaitLeader(ctx)
		cancel()
		if err != nil {
			unavailable(w, "The cluster has no leader; retry.")
			return
		}
		if string(id) == n.cfg.NodeID {
			if !n.serveLeader(w, r, true) {
				unavailable(w, "Leadership is changing; retry.")
			}
			return
		}
		proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), leaderKey{}, string(addr))))
	})
}

type leaderKey struct{}

// forwardHandler serves the cluster port's forward protocol: API requests a follower passes on
// for a client. It reaches the public API only, as that client: a request naming a node-to-node
// route is answered by the API like any unknown path.
func (n *Node) forwardHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fwd := r.Header.Get(headerForwardedFor); fwd != "" {
			r.RemoteAddr = fwd
		}
		r.Header.Del(headerForwardedFor)
		r.TLS = nil // the member's connection, not the client's
		if internalTarget(r) {
			if api := n.api.Load(); api != nil {
				(*api).ServeHTTP(w, unknownPath(r))
				return
			}
			http.NotFound(w, r)
			return
		}
		n.serveLeader(w, r, false)
	})
}

// internalTarget reports whether r names a node-to-node route (anything under /_cluster/) in
// any spelling: encoded (once or several times), with doubled slashes, backslashes or dot
// segments, in any case, or in an absolute-form request target.
func internalTarget(r *http.Request) bool {
	raw := r.RequestURI
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	return internalPath(r.URL.Path) || internalPath(r.URL.RawPath) || internalPath(raw)
}

// unknownPath is r with its path replaced by the one clean spelling of the internal prefix, which
// the public API does not route: it answers 404 (or 401) and audits the request with the target
// as sent, instead of redirecting an unclean spelling to a clean one.
func unknownPath(r *http.Request) *http.Request {
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = "/_cluster", ""
	return r2
}

func internalPath(p string) bool {
	if p == "" {
		return false
	}
	for range 4 { // undo nested percent-encoding
		u, err := url.PathUnescape(p)
		if err != nil || u == p {
			break
		}
		p = u
	}
	if i := strings.Index(p, "://"); i >= 0 { // absolute form: drop scheme and authority
		p = p[i+3:]
		if j := strings.IndexByte(p, '/'); j >= 0 {
			p = p[j:]
		} else {
			p = "/"
		}
	}
	p = path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
	p = strings.ToLower(p)
	return p == "/_cluster" || strings.HasPrefix(p, "/_cluster/")
}

// localPath lists the node-local routes: seal state belongs to each node. Any spelling the API
// would route there (case, trailing or doubled slashes) is local too, so that no spelling seals
// or unseals another node than the one addressed.
func localPath(p string) bool {
	switch strings.ToLower(path.Clean("/" + p)) {
	case "/sys/seal-status", "/sys/unseal", "/sys/init", "/sys/seal":
		return true
	}
	return false
}

// serveLeader executes r here after a read barrier. It returns false without writing when this
// node turned out not to lead and the caller may forward instead (canForward); a forwarded
// request is never forwarded again and gets 503.
func (n *Node) serveLeader(w http.ResponseWriter, r *http.Request, canForward bool) bool {
	api := n.api.Load()
	if api == nil {
		unavailable(w, "This node is starting; retry.")
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*n.cfg.ElectionTimeout+2*time.Second)
	err := n.store.ReadBarrier(ctx)
	cancel()
	if err != nil {
		if canForward && errors.Is(err, raftstore.ErrNotLeader) {
			return false
		}
		unavailable(w, "This node is not the cluster leader; retry.")
		return true
	}
	if r.URL.Path == "/sys/cluster/join" && r.Method == http.MethodPost {
		n.serveJoin(w, r)
		return true
	}
	w.Header().Set(HeaderServedBy, n.cfg.NodeID)
	(*api).ServeHTTP(w, r)
	return true
}

// serveHealth adds this node's cluster status to the API's health document. The answer is
// unauthenticated, so it names nodes but no cluster address.
func (n *Node) serveHealth(w http.ResponseWriter, r *http.Request, api http.Handler) {
	rec := &recorder{header: http.Header{}, status: 200}
	api.ServeHTTP(rec, r)
	doc := map[string]any{}
	if err := json.Unmarshal(rec.body.Bytes(), &doc); err != nil {
		doc = map[string]any{"status": http.StatusText(rec.status)}
	}
	st := n.Status()
	st.LeaderAddr = ""
	doc["cluster"] = st
	for k, v := range rec.header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	writeJSON(w, rec.status, doc)
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(s int)           { r.status = s }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	writeEnvelope(w, http.StatusServiceUnavailable, "ServiceUnavailable", msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
