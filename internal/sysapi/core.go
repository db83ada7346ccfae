package sysapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/seal"
	"github.com/strongroom/strongroom/internal/store"
)

// Auditor is the audit log as the seal routes use it: they record through it and refuse to
// initialize while it cannot write (shares made then could not be handed out).
type Auditor interface {
	audit.Recorder
	Healthy() bool
}

// Options is what a Core is made of. The store is open; Node is this server's cluster node (nil
// for a single node), which stages root keys through the Core.
type Options struct {
	Config config.Config
	Log    *slog.Logger
	Store  store.Store
	Audit  Auditor
	Node   *cluster.Node
	// Stdout is where a new bootstrap credential is shown (admincred.go).
	Stdout io.Writer
	// Build makes the serving state once the root key is released; it runs with the seal lock
	// held, on every unseal and after a snapshot restore (Reload).
	Build func(ctx context.Context, u Unsealed) (*Serving, error)
}

// Unsealed is what the released root key opened.
type Unsealed struct {
	Keyring    *keyring.Keyring
	Identities *identity.Service
}

// Serving is everything that exists only while the root key is available (Options.Build).
type Serving struct {
	Unsealed
	// Handler serves every request but the seal routes.
	Handler http.Handler
	// AuthorizeMetrics checks that the caller in ctx may read /metrics.
	AuthorizeMetrics func(ctx context.Context) error
	// Erase asks for a compaction (after a purge, a rekey: freed pages held sealed records); nil
	// when the store does not compact.
	Erase func()
	// Close stops the serving state's background jobs; Core calls it when it seals or replaces it.
	Close func()
}

// Core owns the seal state: while sealed it answers only health, seal status, init and unseal;
// once unsealed it hands every request to the serving state built from the root key.
type Core struct {
	cfg    config.Config
	log    *slog.Logger
	st     store.Store
	audit  Auditor
	node   *cluster.Node
	stdout io.Writer
	build  func(ctx context.Context, u Unsealed) (*Serving, error)

	draining atomic.Bool
	active   atomic.Pointer[Serving]

	mu          sync.Mutex // serializes init, unseal and seal
	sealer      seal.Seal  // the seal, with the configuration the store records for it once initialized
	initialized bool

	stageMu sync.Mutex  // guards staged; taken after mu or alone (Raft's apply goroutine), never before mu
	staged  *stagedRoot // a rekey's new root key before its commit (rootkey.go)
}

// New makes a sealed Core; Start reads the recorded seal and unseals it if it can.
func New(o Options) *Core {
	return &Core{cfg: o.Config, log: o.Log, st: o.Store, audit: o.Audit, node: o.Node, stdout: o.Stdout, build: o.Build}
}

// Start reads the recorded seal, initializes a new data folder for auto-unsealing seals, and
// unseals them; a Shamir server stays sealed until operators present shares.
func (c *Core) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.cfg.AdminCredentialFile; f != "" && insideDir(f, c.cfg.DataDir) {
		return fmt.Errorf("admin_credential_file: %s is inside the data folder %s; name a path outside it", f, c.cfg.DataDir)
	}
	if c.node != nil {
		c.node.SetRootKeyStager(c)
	}
	rec, err := seal.LoadConfig(ctx, c.st)
	switch {
	case errors.Is(err, seal.ErrNoConfig):
		if c.sealer, err = seal.New(c.cfg.Seal, c.cfg.DataDir, nil, c.log); err != nil {
			return err
		}
		if c.sealer.Type() == seal.Shamir {
			c.log.Warn("strongroom is not initialized: run `strongroom operator init` to create the unseal shares")
			return nil
		}
		ch, err := c.sealer.Init(ctx, seal.Params{})
		if err != nil {
			return err
		}
		return c.unsealWith(ctx, ch.Root, &ch.Config)
	case err != nil:
		return err
	}
	if c.sealer, err = seal.New(c.cfg.Seal, c.cfg.DataDir, &rec, c.log); err != nil {
		return err
	}
	c.initialized = true
	root, err := c.sealer.Unseal(ctx, c.opensKeyring(ctx))
	if errors.Is(err, seal.ErrNeedsShares) {
		c.log.Warn("strongroom is sealed: present unseal shares with `strongroom operator unseal`", "threshold", rec.Threshold, "shares", rec.Shares)
		return nil
	}
	if err == nil {
		err = c.unsealWith(ctx, root, nil)
	}
	if err != nil {
		// Stay up and sealed: the HSM may come back, and `operator unseal` retries.
		c.log.Error("strongroom stays sealed: the "+string(rec.Type)+" seal could not release the root key", "err", err)
	}
	return nil
}

// opensKeyring is the seals' check that a root key opens this data folder's keyring.
func (c *Core) opensKeyring(ctx context.Context) seal.KeyCheck {
	return func(root []byte) (bool, error) {
		_, err := keyring.Load(ctx, c.st, root)
		if errors.Is(err, keyring.ErrWrongRootKey) {
			return false, nil
		}
		return err == nil, err
	}
}

// Sealed reports whether the root key is unavailable (sealed or not initialized).
func (c *Core) Sealed() bool { return c.active.Load() == nil }

// Serving is the current serving state, nil while sealed.
func (c *Core) Serving() *Serving { return c.active.Load() }

// Ready reports whether this node may serve (and a cluster node forward) API requests.
func (c *Core) Ready() bool { return !c.Sealed() && !c.draining.Load() }

// Drain refuses every request but the seal routes from now on (the server is shutting down).
func (c *Core) Drain() { c.draining.Store(true) }

// Seal drops the serving state: keys leave memory (as far as Go allows) and every API request
// is refused until the next unseal.
func (c *Core) Seal() {
	c.dropStagedMemory()
	if u := c.active.Swap(nil); u != nil {
		u.Close()
		c.log.Warn("strongroom sealed")
	}
}

// ServeHTTP routes by seal state.
func (c *Core) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/sys/seal-status" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, c.Status())
		return
	case r.URL.Path == "/sys/init" && r.Method == http.MethodPost:
		c.serveInit(w, r)
		return
	case r.URL.Path == "/sys/unseal" && r.Method == http.MethodPost:
		c.serveUnseal(w, r)
		return
	}
	if u := c.active.Load(); u != nil && !c.draining.Load() {
		u.Handler.ServeHTTP(w, r)
		return
	}
	st := c.Status()
	if r.URL.Path == "/health" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": st.state(), "sealed": st.Sealed, "initialized": st.Initialized})
		return
	}
	msg := fmt.Sprintf("Strongroom is sealed: unseal it with `strongroom operator unseal` (%d of %d shares entered).", st.Progress, st.Threshold)
	if !st.Initialized {
		msg = "Strongroom is not initialized: run `strongroom operator init`."
	} else if st.Type != seal.Shamir {
		msg = "Strongroom is sealed: restart it or run `strongroom operator unseal` to unseal it with its " + string(st.Type) + " seal."
	}
	if c.draining.Load() {
		msg = "Strongroom is shutting down."
	}
	w.Header().Set("Retry-After", "5")
	fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", msg)
}

// Status is the seal status document.
type Status struct {
	Type        seal.Type `json:"type"`
	Initialized bool      `json:"initialized"`
	Sealed      bool      `json:"sealed"`
	Threshold   int       `json:"t"`
	Shares      int       `json:"n"`
	Progress    int       `json:"progress"`
}

func (s Status) state() string {
	switch {
	case !s.Initialized:
		return "uninitialized"
	case s.Sealed:
		return "sealed"
	}
	return "ok"
}

// Status is the seal status (GET /sys/seal-status).
func (c *Core) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Type: c.cfg.Seal.Type, Initialized: c.initialized, Sealed: c.Sealed()}
	if c.sealer != nil {
		ss := c.sealer.Status()
		s.Type, s.Threshold, s.Shares = ss.Type, ss.Threshold, ss.Shares
		if s.Sealed {
			s.Progress = ss.Progress
		}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	azkv.WriteError(w, status, azkv.NewError(code, msg, ""))
}

// auditSys records an unauthenticated seal operation; failure to audit refuses it.
func (c *Core) auditSys(r *http.Request, op string, status int) error {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	return c.audit.Record(r.Context(), audit.Event{Operation: op, Status: status, CallerIP: ip,
		URI: audit.HTTPSURI(r.Host, r.URL.RequestURI()), ClientInfo: r.UserAgent()})
}
