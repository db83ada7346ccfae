package test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/testenv"
)

// Dead-server cleanup: with 4 voters and min_quorum 3, a killed follower is removed once it has
// been unhealthy for dead_server_after; a second killed follower is kept, because removing it
// would leave fewer than 3 voters.
func TestCluster_DeadServerCleanup_KeepsMinQuorum(t *testing.T) {
	const after = 2 * time.Second
	c := testenv.StartCluster(t, &testenv.ClusterOptions{Size: 4, Extra: []string{"--dead-server-after", after.String(), "--min-quorum", "3"}})
	leader := c.Leader(10 * time.Second)
	var followers []*testenv.Server
	var ids []string
	for i, s := range c.Nodes {
		if s != leader {
			followers, ids = append(followers, s), append(ids, c.IDs[i])
		}
	}
	followers[0].Kill()
	killed := time.Now()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		peers := c.Peers()
		if len(peers) == 3 && !hasPeer(peers, ids[0]) {
			t.Logf("dead voter %s removed %v after SIGKILL (dead_server_after %v)", ids[0], time.Since(killed).Round(100*time.Millisecond), after)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead voter not removed within 30s: %+v", peers)
		}
	}
	followers[1].Kill()
	// Wait until the leader has seen the second node unhealthy for well over dead_server_after.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var st struct {
			Servers []struct {
				ID             string    `json:"id"`
				UnhealthySince time.Time `json:"unhealthySince"`
			} `json:"servers"`
		}
		if err := json.Unmarshal(c.Operator(leader, "raft", "autopilot", "state"), &st); err != nil {
			t.Fatal(err)
		}
		seen := false
		for _, s := range st.Servers {
			seen = seen || (s.ID == ids[1] && !s.UnhealthySince.IsZero() && time.Since(s.UnhealthySince) > 2*after)
		}
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("autopilot never reported %s unhealthy for %v: %+v", ids[1], 2*after, st)
		}
	}
	peers := c.Peers()
	voters := 0
	for _, p := range peers {
		if p.Suffrage == "voter" {
			voters++
		}
	}
	if voters != 3 || !hasPeer(peers, ids[1]) {
		t.Fatalf("cleanup went below min_quorum 3: %+v", peers)
	}
}

func hasPeer(peers []testenv.Peer, id string) bool {
	for _, p := range peers {
		if p.ID == id {
			return true
		}
	}
	return false
}
