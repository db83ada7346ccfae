package app

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
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/metrics"
	"github.com/strongroom/strongroom/internal/seal"
	"github.com/strongroom/strongroom/internal/store"
)

// core owns the seal state: while sealed it answers only health, seal status, init and unseal;
// once unsealed it hands every request to the API handler built from the root key.
type core struct {
	cfg    config.Config
	log    *slog.Logger
	st     store.Store
	audit  *audit.Log
	stdout io.Writer
	// metrics is the Prometheus registry served at /metrics (metrics.go).
	metrics *metrics.Registry

	draining atomic.Bool
	active   atomic.Pointer[unsealed]

	mu          sync.Mutex // serializes init, unseal and seal
	sealer      seal.Seal  // the seal, with the configuration the store records for it once initialized
	initialized bool

	stageMu sync.Mutex  // guards staged; taken after mu or alone (Raft's apply goroutine), never before mu
	staged  *stagedRoot // a rekey's new root key before its commit (rootkey.go)
}

// start reads the recorded seal, initializes a new data folder for auto-unsealing seals, and
// unseals them; a Shamir server stays sealed until operators present shares.
func (c *core) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.cfg.AdminCredentialFile; f != "" && insideDir(f, c.cfg.DataDir) {
		return fmt.Errorf("admin_credential_file: %s is inside the data folder %s; name a path outside it", f, c.cfg.DataDir)
	}
	if n := clusterNode(c.st); n != nil {
		n.SetRootKeyStager(c)
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
func (c *core) opensKeyring(ctx context.Context) seal.KeyCheck {
	return func(root []byte) (bool, error) {
		_, err := keyring.Load(ctx, c.st, root)
		if errors.Is(err, keyring.ErrWrongRootKey) {
			return false, nil
		}
		return err == nil, err
	}
}

func (c *core) sealed() bool { return c.active.Load() == nil }

// seal drops the unsealed state: keys leave memory (as far as Go allows) and every API request
// is refused until the next unseal.
func (c *core) seal() {
	c.dropStagedMemory()
	if u := c.active.Swap(nil); u != nil {
		u.close()
		c.log.Warn("strongroom sealed")
	}
}

// ServeHTTP routes by seal state.
func (c *core) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/sys/seal-status" && r.Method == http.MethodGet:
		c.writeJSON(w, http.StatusOK, c.status())
		return
	case r.URL.Path == "/sys/init" && r.Method == http.MethodPost:
		c.serveInit(w, r)
		return
	case r.URL.Path == "/sys/unseal" && r.Method == http.MethodPost:
		c.serveUnseal(w, r)
		return
	}
	if u := c.active.Load(); u != nil && !c.draining.Load() {
		u.handler.ServeHTTP(w, r)
		return
	}
	st := c.status()
	if r.URL.Path == "/health" {
		c.writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": st.state(), "sealed": st.Sealed, "initialized": st.Initialized})
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
	c.fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", msg)
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

func (c *core) status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Type: c.cfg.Seal.Type, Initialized: c.initialized, Sealed: c.sealed()}
	if c.sealer != nil {
		ss := c.sealer.Status()
		s.Type, s.Threshold, s.Shares = ss.Type, ss.Threshold, ss.Shares
		if s.Sealed {
			s.Progress = ss.Progress
		}
	}
	return s
}

func (c *core) writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

func (c *core) fail(w http.ResponseWriter, status int, code, msg string) {
	azkv.WriteError(w, status, azkv.NewError(code, msg, ""))
}

// serving reports whether this node may serve (and a cluster node forward) API requests.
func (c *core) serving() bool { return !c.sealed() && !c.draining.Load() }

// auditSys records an unauthenticated seal operation; failure to audit refuses it.
func (c *core) auditSys(r *http.Request, op string, status int) error {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	return c.auditLog().Record(r.Context(), audit.Event{Operation: op, Status: status, CallerIP: ip,
		URI: audit.HTTPSURI(r.Host, r.URL.RequestURI()), ClientInfo: r.UserAgent()})
}
