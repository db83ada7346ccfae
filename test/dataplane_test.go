package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/strongroom/strongroom/internal/testenv"
)

// rawCall sends a data-plane request with the admin's token and returns status, headers, body.
func (e *env) rawCall(t *testing.T, method, vault, pathAndQuery string, body []byte, token bool) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, strings.TrimSuffix(e.srv.VaultURL(vault), "/")+pathAndQuery, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token {
		tok, err := e.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost:" + strconv.Itoa(e.srv.Port) + "/.default"}})
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.Token)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, pathAndQuery, b)
		}
	}
	return resp.StatusCode, resp.Header, m
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func innerCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	in, _ := e["innererror"].(map[string]any)
	c, _ := in["code"].(string)
	return c
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// dataPlaneTarget is what the data-plane suite (dataplane_suite_test.go) needs to know about the deployment behind its env
// beyond the API: how to restart it and which processes the canary scan inspects.
type dataPlaneTarget struct {
	// restart restarts the deployment's process(es) on their folders and returns an env on the
	// node the suite talks to.
	restart func(t *testing.T) *env
	// servers are every process of the deployment: the canary scan stops them all and checks
	// their output and data folders; at least one must hold SecretGet audit records.
	servers []*testenv.Server
}

func TestDataPlane_EndToEnd(t *testing.T) {
	e := newEnv(t, &testenv.Options{Extra: []string{"--vault-requests-per-10s=0"}})
	runDataPlaneSuite(t, e, dataPlaneTarget{
		restart: func(t *testing.T) *env { e.srv.Restart(); return envFor(t, e.srv) },
		servers: []*testenv.Server{e.srv},
	})
}

// The same suite against a 3-node cluster, every request sent to a follower (which forwards
// to the leader). Restart is a rolling restart of every node; the canary scan covers every
// node's output and folder (raft log, snapshots, state machine).
func TestDataPlane_EndToEnd_ClusterFollower(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	follower := c.Follower()
	e := clusterEnv(t, c, follower)
	runDataPlaneSuite(t, e, dataPlaneTarget{
		restart: func(t *testing.T) *env {
			for _, s := range c.Nodes {
				s.Restart()
			}
			c.Leader(30 * time.Second)
			return clusterEnv(t, c, follower)
		},
		servers: c.Nodes,
	})
}

func TestDataPlane_Throttling(t *testing.T) {
	e := newEnv(t, &testenv.Options{Extra: []string{"--vault-requests-per-10s=5"}})
	e.createVault(t, "rg", "kv-throttle", nil)
	saw429 := false
	for range 12 {
		st, h, m := e.rawCall(t, "GET", "kv-throttle", "/secrets?api-version=7.4", nil, true)
		if st == 429 {
			saw429 = true
			if errCode(m) != "Throttled" {
				t.Fatalf("429 code = %q", errCode(m))
			}
			if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("Retry-After = %q", h.Get("Retry-After"))
			}
		} else if st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	if !saw429 {
		t.Fatal("12 requests against a budget of 5 were never throttled")
	}
}
