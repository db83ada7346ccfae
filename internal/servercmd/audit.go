package servercmd

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/audit"
)

// NewAuditCommand returns `audit verify`, which checks the audit log's hash chain offline.
func NewAuditCommand() *cobra.Command {
	root := &cobra.Command{Use: "audit", Short: "Inspect the server's tamper-evident audit log"}
	var dataDir, file string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log's hash chain; exits non-zero at the first broken record",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				file = filepath.Join(dataDir, "audit", "audit.log")
			}
			res, err := audit.Verify(file)
			if err != nil {
				return fmt.Errorf("verifying %s: %w", file, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit log %s: %d records, chain intact, last hash %s\n", file, res.Records, res.LastHash)
			if cp := res.Checkpoint; cp != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "checkpoint at record %d (byte %d) matches the chain\n", cp.Records, cp.Offset)
			}
			return nil
		},
	}
	verify.Flags().StringVar(&dataDir, "data-dir", "./strongroom-data", "the server's data folder")
	verify.Flags().StringVar(&file, "file", "", "an audit log file (overrides --data-dir)")
	root.AddCommand(verify)
	return root
}
