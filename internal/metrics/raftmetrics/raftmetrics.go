// Package raftmetrics exports a cluster node's Raft state as Prometheus gauges, read on each
// scrape: its role, term, commit, applied and log indexes, snapshot, leader contact and the
// configuration's size. Labels are fixed (the role names), never from requests.
package raftmetrics

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strongroom/strongroom/internal/cluster"
)

// New is a collector of cs's node's Raft state.
func New(cs *cluster.Store) prometheus.Collector { return &raftCollector{cs: cs} }

// raftCollector reads this node's Raft state on each scrape.
type raftCollector struct{ cs *cluster.Store }

var (
	raftRoles = []string{"leader", "follower", "candidate", "non-voter", "dr-replica", "shutdown"}
	descRole  = prometheus.NewDesc("strongroom_raft_role", "1 for this node's current Raft role, 0 for the others.", []string{"role"}, nil)
	descGauge = map[string]*prometheus.Desc{
		"term":          prometheus.NewDesc("strongroom_raft_term", "Current Raft term.", nil, nil),
		"commit":        prometheus.NewDesc("strongroom_raft_commit_index", "Highest log index this node knows to be committed.", nil, nil),
		"applied":       prometheus.NewDesc("strongroom_raft_applied_index", "Highest log index applied to this node's state machine file.", nil, nil),
		"last_log":      prometheus.NewDesc("strongroom_raft_last_log_index", "Highest index in this node's log.", nil, nil),
		"snapshot":      prometheus.NewDesc("strongroom_raft_last_snapshot_index", "Index of this node's newest Raft snapshot.", nil, nil),
		"last_contact":  prometheus.NewDesc("strongroom_raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader).", nil, nil),
		"peers":         prometheus.NewDesc("strongroom_raft_peers", "Members in the Raft configuration (voters and non-voters).", nil, nil),
		"voters":        prometheus.NewDesc("strongroom_raft_voters", "Voters in the Raft configuration.", nil, nil),
		"leader_known":  prometheus.NewDesc("strongroom_raft_leader_known", "1 when this node knows a leader.", nil, nil),
		"fsm_pending":   prometheus.NewDesc("strongroom_raft_fsm_pending", "Committed entries waiting to be applied on this node.", nil, nil),
		"snapshot_term": prometheus.NewDesc("strongroom_raft_last_snapshot_term", "Term of this node's newest Raft snapshot.", nil, nil),
	}
)

func (rc *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRole
	for _, d := range descGauge {
		ch <- d
	}
}

func (rc *raftCollector) Collect(ch chan<- prometheus.Metric) {
	st := rc.cs.Node().Status()
	for _, role := range raftRoles {
		ch <- prometheus.MustNewConstMetric(descRole, prometheus.GaugeValue, b2f(st.Role == role), role)
	}
	r := rc.cs.Store.Raft()
	stats := r.Stats()
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(descGauge[name], prometheus.GaugeValue, v)
	}
	gauge("term", float64(st.Term))
	gauge("commit", float64(st.CommitIndex))
	gauge("applied", float64(st.AppliedIndex))
	gauge("last_log", float64(r.LastIndex()))
	gauge("snapshot", float64(st.LastSnapshotIndex))
	gauge("snapshot_term", parseStat(stats["last_snapshot_term"]))
	gauge("fsm_pending", parseStat(stats["fsm_pending"]))
	gauge("last_contact", float64(st.LastContactMs)/1000)
	gauge("leader_known", b2f(st.Leader != ""))
	if f := r.GetConfiguration(); f.Error() == nil {
		voters := 0
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		gauge("peers", float64(len(f.Configuration().Servers)))
		gauge("voters", float64(voters))
	}
}

func parseStat(s string) float64 {
	var v float64
	for _, c := range s {
		if c < '0' || c > '9' {
			return v
		}
		v = v*10 + float64(c-'0')
	}
	return v
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
