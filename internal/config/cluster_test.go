package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/config"
)

func TestClusterConfig_Validate(t *testing.T) {
	ok := func(c config.ClusterConfig) config.ClusterConfig { return c }
	base := config.ClusterConfig{Addr: "127.0.0.1:8201", NodeID: "n1"}
	with := func(f func(*config.ClusterConfig)) config.ClusterConfig { c := base; f(&c); return c }
	cases := []struct {
		name    string
		in      config.ClusterConfig
		wantErr string // "" means valid
	}{
		{"SingleNode", ok(config.ClusterConfig{}), ""},
		{"Minimal", base, ""},
		{"NodeIDWithoutAddr", config.ClusterConfig{NodeID: "n1"}, "cluster.addr"},
		{"WildcardAddr", with(func(c *config.ClusterConfig) { c.Addr = "0.0.0.0:8201" }), "cluster.addr"},
		{"NoPort", with(func(c *config.ClusterConfig) { c.Addr = "127.0.0.1" }), "cluster.addr"},
		{"BadNodeID", with(func(c *config.ClusterConfig) { c.NodeID = "n 1" }), "cluster.node_id"},
		{"MissingNodeID", with(func(c *config.ClusterConfig) { c.NodeID = "" }), "cluster.node_id"},
		{"BootstrapAndRetryJoin", with(func(c *config.ClusterConfig) {
			c.Bootstrap = true
			c.RetryJoin = []config.RetryJoin{{LeaderAPIAddr: "https://a:1", JoinTokenFile: "t"}}
		}), "cluster.bootstrap"},
		{"RetryJoinHTTP", with(func(c *config.ClusterConfig) {
			c.RetryJoin = []config.RetryJoin{{LeaderAPIAddr: "http://a:1", JoinTokenFile: "t"}}
		}), "leader_api_addr"},
		{"RetryJoinNoToken", with(func(c *config.ClusterConfig) { c.RetryJoin = []config.RetryJoin{{LeaderAPIAddr: "https://a:1"}} }), "join_token_file"},
		{"TinyElectionTimeout", with(func(c *config.ClusterConfig) { c.ElectionTimeout = time.Millisecond }), "election_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.in
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.wantErr)
			}
		})
	}
	c := base
	if err := c.Validate(); err != nil || c.Region != "default" || c.ElectionTimeout != time.Second || c.PromoteAfter != 10*time.Second {
		t.Fatalf("defaults not filled: %+v, %v", c, err)
	}
}
