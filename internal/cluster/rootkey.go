package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Root-key staging is phase 1 of a cluster-wide rekey or seal migration: before the leader
// commits the keyring re-sealed under a new root key, it hands that key to every member over the
// cluster port (TLS 1.3, mutual certificates, current members only), and each member keeps it
// where its seal needs it (docs/security-model.md). Phase 2 is the Raft commit itself: a member
// whose root key no longer opens the keyring tries the staged one. A voter that cannot stage
// stops the rekey before anything is committed.

// RootKeyStage is one staged root key. Key is secret: it is never logged or put in an error.
type RootKeyStage struct {
	// ID names this rekey, so a drop never removes a later stage.
	ID string `json:"id"`
	// Key is the new 32-byte root key.
	Key []byte `json:"key"`
	// Seal is the seal configuration recorded with the new keyring (JSON of seal.Config; no key
	// material: for pkcs11 the HSM-wrapped key and its label).
	Seal json.RawMessage `json:"seal"`
}

// RootKeyStager is a member's seal side of staging (sysapi.Core).
type RootKeyStager interface {
	// StageRootKey keeps s where this node's seal needs it, durably when its seal unseals from a
	// file; an error means this node could not unseal under the new key and refuses it.
	StageRootKey(ctx context.Context, s RootKeyStage) error
	// DropRootKey forgets the stage id (the rekey was abandoned before its commit).
	DropRootKey(id string)
}

type stagerBox struct{ s RootKeyStager }

// SetRootKeyStager registers the node's stager; calls arriving before it are refused. It is the
// one thing set after Start, because the cycle is real: the seal-state machine reads its seal
// configuration from the store this node opens, and the node stages keys into that machine.
func (n *Node) SetRootKeyStager(s RootKeyStager) {
	n.stagerBox.Store(&stagerBox{s})
}

func (n *Node) stager() RootKeyStager {
	if b := n.stagerBox.Load(); b != nil {
		return b.s
	}
	return nil
}

// StageError says which members did not stage a root key; Voters non-empty means the rekey must
// not be committed.
type StageError struct {
	Voters    map[string]string // node id -> reason
	NonVoters map[string]string
}

func (e *StageError) Error() string {
	return "the new root key could not be staged on " + describe(e.Voters, "voter") + describe(e.NonVoters, "non-voter")
}

func describe(m map[string]string, role string) string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%s %s (%s); ", role, id, m[id])
	}
	return b.String()
}

// stageTimeout bounds one member's staging call (a file write and fsync, or an HSM round trip).
const stageTimeout = 30 * time.Second

// StageRootKey sends s to every other member of the current configuration, voters and
// non-voters, in parallel. It returns nil when all staged it; otherwise a *StageError, whose
// Voters field is empty when only non-voters missed it (the caller may then commit: a
// non-voter that missed it re-joins the new key by restart with the new seal material).
func (n *Node) StageRootKey(ctx context.Context, s RootKeyStage) error {
	f := n.store.Raft().GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("staging root key: reading the configuration: %w", err)
	}
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	defer clear(body)
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		bad = &StageError{Voters: map[string]string{}, NonVoters: map[string]string{}}
	)
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == n.cfg.NodeID {
			continue
		}
		wg.Add(1)
		go func(srv raft.Server) {
			defer wg.Done()
			if err := n.rootKeyCall(ctx, string(srv.Address), "stage", body); err != nil {
				mu.Lock()
				if srv.Suffrage == raft.Voter {
					bad.Voters[string(srv.ID)] = err.Error()
				} else {
					bad.NonVoters[string(srv.ID)] = err.Error()
				}
				mu.Unlock()
			}
		}(srv)
	}
	wg.Wait()
	if len(bad.Voters)+len(bad.NonVoters) > 0 {
		return bad
	}
	return nil
}

// DropRootKey asks every other member to forget stage id (best effort: a stage that is never
// committed opens nothing).
func (n *Node) DropRootKey(ctx context.Context, id string) {
	f := n.store.Raft().GetConfiguration()
	if f.Error() != nil {
		return
	}
	body, _ := json.Marshal(map[string]string{"id": id})
	var wg sync.WaitGroup
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == n.cfg.NodeID {
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			if err := n.rootKeyCall(ctx, addr, "drop", body); err != nil {
				n.log.Warn("dropping a staged root key", "peer", addr, "err", err)
			}
		}(string(srv.Address))
	}
	wg.Wait()
}

func (n *Node) rootKeyCall(ctx context.Context, addr, op string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, stageTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+rpcPrefix+"rootkey/"+op, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.peers.Do(req)
	if err != nil {
		return fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		return errors.New(e.Error.Message)
	}
	return fmt.Errorf("HTTP %d", resp.StatusCode)
}

// registerRootKeyRPC serves the two staging calls. Only the current leader may stage or drop:
// members are authenticated by memberOnly, and a stage from anyone else is refused.
func (n *Node) registerRootKeyRPC(mux *http.ServeMux) {
	mux.HandleFunc("POST "+rpcPrefix+"rootkey/stage", func(w http.ResponseWriter, r *http.Request) {
		s, ok := n.rootKeyCaller(w, r)
		if !ok {
			return
		}
		var st RootKeyStage
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		defer clear(b)
		if err != nil || json.Unmarshal(b, &st) != nil || st.ID == "" || len(st.Key) != 32 {
			opFail(w, http.StatusBadRequest, errors.New("malformed root-key stage"))
			return
		}
		defer clear(st.Key)
		if err := s.StageRootKey(r.Context(), st); err != nil {
			n.log.Error("refusing a new root key", "stage", st.ID, "err", err)
			opFail(w, http.StatusConflict, fmt.Errorf("node %s: %w", n.cfg.NodeID, err))
			return
		}
		n.log.Warn("staged a new root key for a rekey by the leader", "stage", st.ID, "leader", peerFrom(r.Context()))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+rpcPrefix+"rootkey/drop", func(w http.ResponseWriter, r *http.Request) {
		s, ok := n.rootKeyCaller(w, r)
		if !ok {
			return
		}
		var req struct {
			ID string `json:"id"`
		}
		if json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&req) != nil || req.ID == "" {
			opFail(w, http.StatusBadRequest, errors.New("malformed root-key drop"))
			return
		}
		s.DropRootKey(req.ID)
		w.WriteHeader(http.StatusNoContent)
	})
}

// rootKeyCaller admits a staging call from the current leader to a node with a stager.
func (n *Node) rootKeyCaller(w http.ResponseWriter, r *http.Request) (RootKeyStager, bool) {
	if _, leader := n.store.Raft().LeaderWithID(); peerFrom(r.Context()) == "" || string(leader) != peerFrom(r.Context()) {
		opFail(w, http.StatusForbidden, errors.New("only the cluster leader stages root keys"))
		return nil, false
	}
	s := n.stager()
	if s == nil {
		opFail(w, http.StatusServiceUnavailable, fmt.Errorf("node %s is starting", n.cfg.NodeID))
		return nil, false
	}
	return s, true
}
