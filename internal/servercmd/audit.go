package servercmd

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/audit"
)

// auditVerifyFlags are `audit verify`'s options.
type auditVerifyFlags struct {
	dataDir, dir, file, publicKey, output string
}

// NewAuditCommand returns `audit verify`, which checks the audit log offline: the hash chain of
// every file, the signed checkpoints and the links between rotated files.
func NewAuditCommand() *cobra.Command {
	root := &cobra.Command{Use: "audit", Short: "Inspect the server's tamper-evident audit log"}
	var fl auditVerifyFlags
	verify := &cobra.Command{
		Use:   "verify [FILES...]",
		Short: "Verify the audit log's chain, signed checkpoints and rotation links; exits non-zero at the first broken record",
		Long: `Verify checks an ordered set of audit files: by default every file of <data-dir>/audit
(rotated files oldest first, then audit.log), or the folder --dir, or the FILES given (in the
order given, oldest first; the first may continue a file not given). It checks each record's hash chain, every checkpoint record (its
count and hash, and with a public key its Ed25519 signature), that each rotated file starts with
a link to the one before it, and the active file's checkpoint file. It names the first broken
record (file, record number, offset) and why, and says what it cannot prove.

Pin the signing key: copy <data-dir>/audit/audit-signing.pub somewhere the server's disk cannot
change and pass it with --public-key. Without it the key file next to the log is used (and the
output says it is not pinned); without either, signatures are not checked.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runAuditVerify(cmd, fl, args) },
	}
	f := verify.Flags()
	f.StringVar(&fl.dataDir, "data-dir", "./strongroom-data", "the server's data folder (its audit/ folder is verified)")
	f.StringVar(&fl.dir, "dir", "", "an audit folder to verify (overrides --data-dir)")
	f.StringVar(&fl.file, "file", "", "one audit log file (same as giving it as an argument)")
	f.StringVar(&fl.publicKey, "public-key", "", "the pinned public key file (PEM or hex Ed25519 keys)")
	f.StringVarP(&fl.output, "output", "o", "text", "output format: text or json")
	root.AddCommand(verify)
	return root
}

func runAuditVerify(cmd *cobra.Command, fl auditVerifyFlags, args []string) error {
	if fl.output != "text" && fl.output != "json" {
		return fmt.Errorf("--output: %q is not text or json", fl.output)
	}
	files, dir, err := auditFiles(fl, args)
	if err != nil {
		return err
	}
	keys, keyNote, err := auditKeys(fl.publicKey, dir)
	if err != nil {
		return err
	}
	partial := len(args) > 0 || fl.file != "" // a chosen part of the log, not its whole folder
	rep, verr := audit.VerifySet(files, audit.VerifyOptions{Keys: keys, Partial: partial})
	if keyNote != "" {
		rep.Notes = append([]string{keyNote}, rep.Notes...)
	}
	out := cmd.OutOrStdout()
	if fl.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printAuditReport(out, rep, verr)
	}
	if verr != nil {
		cmd.SilenceUsage = true
		var p *audit.Problem
		if errors.As(verr, &p) {
			return fmt.Errorf("audit log not intact: %w", verr)
		}
		return fmt.Errorf("verifying the audit log: %w", verr)
	}
	return nil
}

// auditFiles resolves which files to verify and the folder their key file would be in.
func auditFiles(fl auditVerifyFlags, args []string) ([]string, string, error) {
	if fl.file != "" {
		args = append(args, fl.file)
	}
	if len(args) > 0 {
		if fl.dir != "" {
			return nil, "", errors.New("give FILES or --dir, not both")
		}
		return args, filepath.Dir(args[len(args)-1]), nil
	}
	dir := fl.dir
	if dir == "" {
		dir = filepath.Join(fl.dataDir, "audit")
	}
	files, err := audit.FilesIn(dir)
	if err != nil {
		return nil, "", err
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("no audit files in %s", dir)
	}
	return files, dir, nil
}

// auditKeys reads the pinned keys, or the key file next to the log (noted as not pinned).
func auditKeys(pinned, dir string) ([]ed25519.PublicKey, string, error) {
	path, note := pinned, ""
	if path == "" {
		path = filepath.Join(dir, audit.PublicKeyFile)
		if _, err := os.Stat(path); err != nil {
			return nil, "", nil
		}
		note = fmt.Sprintf("signatures checked against %s, next to the log and not pinned: whoever can rewrite the log can replace it too; pass a copy kept elsewhere with --public-key", path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("--public-key: %w", err)
	}
	keys, err := audit.ParsePublicKeys(raw)
	if err != nil {
		return nil, "", fmt.Errorf("public key file %s: %w", path, err)
	}
	return keys, note, nil
}

func printAuditReport(w io.Writer, rep *audit.SetReport, verr error) {
	for _, f := range rep.Files {
		fmt.Fprintf(w, "%s: %d records, %d checkpoint records (%d validly signed)", f.File, f.Records, f.Checkpoints, f.Signed)
		if f.StartsAfter != "" {
			fmt.Fprintf(w, ", continues %s", f.StartsAfter)
		}
		fmt.Fprintln(w)
		if cp := f.CheckpointFile; cp != nil {
			fmt.Fprintf(w, "  checkpoint file at record %d (byte %d) matches the chain\n", cp.Records, cp.Offset)
		}
	}
	if verr != nil {
		fmt.Fprintf(w, "FAILED: %v\n", verr)
	} else {
		fmt.Fprintf(w, "OK: %d files, %d records, chain intact, last hash %s\n", len(rep.Files), rep.Records, rep.LastHash)
		if rep.SignaturesChecked {
			fmt.Fprintf(w, "%d signed checkpoints verify; %d records after the last one\n", rep.Signed, rep.UnsignedTail)
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
