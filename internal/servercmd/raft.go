package servercmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/cluster"
)

// NewOperatorRaftCommand returns `raft`, the cluster operator commands, to be mounted under
// `strongroom operator`. Except join, they talk to the node's operator socket in its data folder,
// so they run on a node's machine as the user that owns the data folder.
func NewOperatorRaftCommand() *cobra.Command {
	raft := &cobra.Command{Use: "raft", Short: "Manage the Raft cluster: join, peers, leadership, autopilot"}
	raft.AddCommand(raftJoinCommand(),
		socketCommand("join-token", "Create a one-time join token for a new node", "POST", "/v1/join-token", func(c *cobra.Command) func() any {
			ttl := c.Flags().Duration("ttl", time.Hour, "how long the token stays valid")
			return func() any { return map[string]string{"ttl": ttl.String()} }
		}),
		socketCommand("list-peers", "List the cluster's members", "GET", "/v1/peers", nil),
		removePeerCommand(),
		socketCommand("step-down", "Make the leader hand leadership to another voter", "POST", "/v1/step-down", nil),
		raftSnapshotCommand(),
	)
	autopilot := &cobra.Command{Use: "autopilot", Short: "Inspect autopilot (member health and promotion)"}
	autopilot.AddCommand(socketCommand("state", "Show the leader's view of member health", "GET", "/v1/autopilot", nil))
	raft.AddCommand(autopilot)
	return raft
}

func raftJoinCommand() *cobra.Command {
	var o cluster.JoinOptions
	var tokenFile, caFile string
	cmd := &cobra.Command{
		Use:   "join LEADER_API_URL",
		Short: "Join this (stopped) node's data folder to a cluster with a one-time join token",
		Long: "Join asks a member (any node; it is forwarded to the leader) to admit this node: the node gets a certificate " +
			"from the cluster CA and becomes a non-voting member that autopilot promotes once it has caught up. Start the " +
			"server afterwards with the same --data-dir, --node-id and --cluster-addr. The node needs the cluster's root key " +
			"(for the file seal, a copy of the seal key file) to unseal.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.LeaderURL = args[0]
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("reading --token-file: %w", err)
				}
				o.Token = string(b)
			}
			if o.Token == "" {
				o.Token = os.Getenv("STRONGROOM_JOIN_TOKEN")
			}
			if o.Token == "" || o.NodeID == "" || o.Addr == "" {
				return fmt.Errorf("joining: --token-file (or STRONGROOM_JOIN_TOKEN), --node-id and --cluster-addr are required")
			}
			if caFile != "" {
				b, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("reading --ca-file: %w", err)
				}
				o.LeaderCA = b
			}
			if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
				return fmt.Errorf("creating data folder: %w", err)
			}
			if err := cluster.Join(cmd.Context(), o); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "joined as %s; start it with: strongroom server --data-dir %s --node-id %s --cluster-addr %s\n", o.NodeID, o.DataDir, o.NodeID, o.Addr)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "./strongroom-data", "the joining node's data folder")
	f.StringVar(&o.NodeID, "node-id", "", "the joining node's id")
	f.StringVar(&o.Addr, "cluster-addr", "", "the address other nodes dial to reach the joining node (host:port; its --cluster-advertise when set, else its --cluster-addr)")
	f.StringVar(&o.Region, "region", "", "the joining node's region label")
	f.BoolVar(&o.NonVoter, "non-voter", false, "join as a disaster-recovery replica that is never promoted")
	f.StringVar(&tokenFile, "token-file", "", "file holding the join token (or set STRONGROOM_JOIN_TOKEN)")
	f.StringVar(&caFile, "ca-file", "", "CA certificate of the member's API (its <data-dir>/tls/ca.pem)")
	return cmd
}

func removePeerCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "remove-peer NODE_ID",
		Short: "Remove a member from the cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return socketCall(cmd, dataDir, "POST", "/v1/remove-peer", map[string]string{"id": args[0]})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./strongroom-data", "data folder of a running node")
	return cmd
}

// socketCommand builds a command that makes one operator-socket call; body, when given, adds
// flags and returns the request body builder.
func socketCommand(use, short, method, path string, body func(*cobra.Command) func() any) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	var build func() any
	if body != nil {
		build = body(cmd)
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var b any
		if build != nil {
			b = build()
		}
		return socketCall(cmd, dataDir, method, path, b)
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./strongroom-data", "data folder of a running node")
	return cmd
}

func socketCall(cmd *cobra.Command, dataDir, method, path string, body any) error {
	sock := cluster.SocketPath(dataDir)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, "http://node"+path, rd)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("calling the node's operator socket %s (is the server running in cluster mode?): %w", sock, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != 200 {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return fmt.Errorf("%s: HTTP %d: %s", strings.TrimPrefix(path, "/v1/"), resp.StatusCode, e.Error.Message)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(raw)
	}
	pretty.WriteByte('\n')
	_, err = cmd.OutOrStdout().Write(pretty.Bytes())
	return err
}

// NewOperatorExtensions returns an "operator" command whose subcommands (raft) the CLI mounts
// under its own `strongroom operator` group.
func NewOperatorExtensions() *cobra.Command {
	op := &cobra.Command{Use: "operator"}
	op.AddCommand(NewOperatorRaftCommand(), newOperatorDRCommand(), newOperatorSnapshotCommand())
	return op
}

// newOperatorDRCommand returns `dr`: disaster-recovery operations.
func newOperatorDRCommand() *cobra.Command {
	dr := &cobra.Command{Use: "dr", Short: "Disaster recovery: promote a DR replica when the primary cluster is lost"}
	var dataDir string
	promote := &cobra.Command{
		Use:   "promote",
		Short: "Make this stopped DR replica a new single-node cluster (the primary cluster is lost)",
		Long: "Promote rewrites the stopped replica's Raft state so that it is the only voter of a new cluster and applies " +
			"everything it had received. Writes the primary acknowledged after the replica's last replication point are " +
			"lost (docs/high-availability.md). Never run it while the primary cluster is alive: the two would diverge. " +
			"Then start the server without --non-voter and join new members with join tokens.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := cluster.PromoteDR(dataDir)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	promote.Flags().StringVar(&dataDir, "data-dir", "./strongroom-data", "the stopped replica's data folder")
	dr.AddCommand(promote)
	return dr
}
