package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// The operator commands talk to the server's /sys endpoints. init, unseal and status work on a
// sealed server without a login (the shares are the credential), so they take --server and
// --ca-file; the rest use the logged-in profile's ARM token.

type operatorTarget struct {
	server, caFile string
}

func (t *operatorTarget) flags(c *cobra.Command) {
	c.Flags().StringVar(&t.server, "server", "", "server URL (default: the logged-in profile's, else "+defaultServer+")")
	c.Flags().StringVar(&t.caFile, "ca-file", "", "CA certificate to trust (default: the logged-in profile's)")
}

// client returns the base URL and an HTTP client for an unauthenticated operator call.
func (t *operatorTarget) client() (string, *http.Client, error) {
	server, caPEM := t.server, []byte(nil)
	if p, err := loadProfile(); err == nil {
		if server == "" {
			server = p.Server
		}
		caPEM = []byte(p.CAPEM)
	}
	if server == "" {
		server = defaultServer
	}
	if t.caFile != "" {
		b, err := os.ReadFile(t.caFile)
		if err != nil {
			return "", nil, fmt.Errorf("reading --ca-file: %w", err)
		}
		caPEM = b
	}
	hc, err := newHTTPClient(caPEM)
	return strings.TrimSuffix(server, "/"), hc, err
}

// sysCall sends method path with an optional JSON body and decodes the JSON answer.
func sysCall(ctx context.Context, hc *http.Client, method, url, token string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("calling %s: HTTP %d with a non-JSON body", url, resp.StatusCode)
		}
	}
	if resp.StatusCode >= 400 {
		e, _ := out["error"].(map[string]any)
		return nil, fmt.Errorf("(%v) %v", e["code"], e["message"])
	}
	return out, nil
}

func (a *app) operatorCommand(extra ...*cobra.Command) *cobra.Command {
	op := group(&cobra.Command{Use: "operator", Short: "Operate the server: seal, unseal, keyring rotation, compaction"},
		a.operatorInit(), a.operatorUnseal(), a.operatorStatus(), a.operatorSeal(),
		group(&cobra.Command{Use: "keyring", Short: "Inspect and rotate the keyring"},
			a.operatorAuthed("status", "Show the keyring's terms and backup keys", "GET", "/sys/keyring", nil),
			a.operatorAuthed("rotate", "Add a keyring term that all new writes use", "POST", "/sys/keyring/rotate", nil),
			a.operatorRewrap(),
			a.operatorAuthed("retire", "Destroy keyring terms no record uses any more", "POST", "/sys/keyring/retire", nil)),
		group(&cobra.Command{Use: "backup-key", Short: "Rotate or revoke the deployment's backup keys"},
			a.operatorAuthed("rotate", "Add a backup key that new backups use", "POST", "/sys/backup-keys/rotate", nil),
			a.operatorRevokeBackupKey()),
		a.operatorAuthed("compact", "Rewrite the store so freed (purged) pages leave the data folder", "POST", "/sys/compact", nil),
		a.operatorRekey(),
		a.operatorPrincipal(),
		group(&cobra.Command{Use: "signing-key", Short: "Rotate the token signing key"},
			a.operatorAuthed("rotate", "Sign new tokens with a new key; the old one verifies until its tokens expire, then is dropped", "POST", "/sys/signing-keys/rotate", nil)),
	)
	op.AddCommand(extra...)
	return op
}

func (a *app) operatorInit() *cobra.Command {
	var t operatorTarget
	var shares, threshold int
	var recipients []string
	c := leaf(&cobra.Command{
		Use:   "init",
		Short: "Initialize a server that uses the shamir seal; prints the unseal shares and the admin credential once",
		RunE: func(cmd *cobra.Command, _ []string) error {
			base, hc, err := t.client()
			if err != nil {
				return err
			}
			out, err := sysCall(cmd.Context(), hc, "POST", base+"/sys/init", "", map[string]any{"secret_shares": shares, "secret_threshold": threshold, "age_recipients": recipients})
			if err != nil {
				return fmt.Errorf("initializing: %w", err)
			}
			return a.print(out)
		},
	})
	t.flags(c)
	c.Flags().IntVar(&shares, "key-shares", 5, "number of unseal shares to create")
	c.Flags().IntVar(&threshold, "key-threshold", 3, "number of shares needed to unseal")
	c.Flags().StringSliceVar(&recipients, "age-recipients", nil, "age public keys (age1...), one per share, comma-separated: each share is returned encrypted to its operator")
	return c
}

func (a *app) operatorUnseal() *cobra.Command {
	var t operatorTarget
	var reset bool
	c := &cobra.Command{
		Use:   "unseal [SHARE]",
		Short: "Enter one unseal share (read from stdin when not given); auto-unsealing seals need none",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			base, hc, err := t.client()
			if err != nil {
				return err
			}
			body := map[string]any{"reset": reset}
			if len(args) == 1 {
				body["key"] = args[0]
			} else if !reset {
				st, err := sysCall(cmd.Context(), hc, "GET", base+"/sys/seal-status", "", nil)
				if err != nil {
					return fmt.Errorf("reading seal status: %w", err)
				}
				if st["type"] == "shamir" && st["sealed"] == true {
					line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
					if err != nil && line == "" {
						return usageErrorf("give the unseal share as an argument or on stdin")
					}
					body["key"] = strings.TrimSpace(line)
				}
			}
			out, err := sysCall(cmd.Context(), hc, "POST", base+"/sys/unseal", "", body)
			if err != nil {
				return fmt.Errorf("unsealing: %w", err)
			}
			return a.print(out)
		},
	}
	t.flags(c)
	c.Flags().BoolVar(&reset, "reset", false, "forget the shares entered so far")
	return c
}

func (a *app) operatorStatus() *cobra.Command {
	var t operatorTarget
	c := leaf(&cobra.Command{
		Use:   "status",
		Short: "Show whether the server is initialized and sealed, and the unseal progress",
		RunE: func(cmd *cobra.Command, _ []string) error {
			base, hc, err := t.client()
			if err != nil {
				return err
			}
			out, err := sysCall(cmd.Context(), hc, "GET", base+"/sys/seal-status", "", nil)
			if err != nil {
				return fmt.Errorf("reading seal status: %w", err)
			}
			return a.print(out)
		},
	})
	t.flags(c)
	return c
}

// operatorSeal is `operator seal`, with `operator seal migrate` beneath it.
func (a *app) operatorSeal() *cobra.Command {
	c := a.operatorAuthed("seal", "Seal the server: it drops its keys and refuses requests until unsealed", "POST", "/sys/seal", nil)
	c.AddCommand(a.operatorSealMigrate())
	return c
}

// operatorSealMigrate is `operator seal migrate`.
func (a *app) operatorSealMigrate() *cobra.Command {
	var to string
	var shares, threshold int
	c := leaf(&cobra.Command{
		Use:   "migrate",
		Short: "Move the data folder to another seal type (file, shamir, pkcs11) in one atomic step",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.authedCall(cmd.Context(), "POST", "/sys/seal/migrate", map[string]any{"to": to, "secret_shares": shares, "secret_threshold": threshold})
		},
	})
	c.Flags().StringVar(&to, "to", "", "the new seal type: file, shamir or pkcs11 (pkcs11 uses the server config's seal.pkcs11)")
	_ = c.MarkFlagRequired("to")
	c.Flags().IntVar(&shares, "key-shares", 5, "shamir: number of shares")
	c.Flags().IntVar(&threshold, "key-threshold", 3, "shamir: shares needed to unseal")
	return c
}

func (a *app) operatorRekey() *cobra.Command {
	var shares, threshold int
	c := leaf(&cobra.Command{
		Use:   "rekey",
		Short: "Replace the root key: new Shamir shares, a new key file, or a new HSM key (the old one is destroyed)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.authedCall(cmd.Context(), "POST", "/sys/rekey", map[string]int{"secret_shares": shares, "secret_threshold": threshold})
		},
	})
	c.Flags().IntVar(&shares, "key-shares", 0, "shamir: number of new shares (default: as before)")
	c.Flags().IntVar(&threshold, "key-threshold", 0, "shamir: shares needed to unseal (default: as before)")
	return c
}

func (a *app) operatorRewrap() *cobra.Command {
	var limit int
	var background, status bool
	c := leaf(&cobra.Command{
		Use:   "rewrap",
		Short: "Move records onto the newest keyring term; resumes where an interrupted run stopped",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status {
				return a.authedCall(cmd.Context(), "GET", "/sys/keyring/rewrap", nil)
			}
			return a.authedCall(cmd.Context(), "POST", "/sys/keyring/rewrap", map[string]any{"limit": limit, "background": background})
		},
	})
	c.Flags().IntVar(&limit, "limit", 0, "stop after this many records (0: all)")
	c.Flags().BoolVar(&background, "background", false, "run to completion in the server's background; check with --status")
	c.Flags().BoolVar(&status, "status", false, "show the background rewrap's progress")
	return c
}

func (a *app) operatorRevokeBackupKey() *cobra.Command {
	var id uint32
	c := leaf(&cobra.Command{
		Use:   "revoke",
		Short: "Destroy a backup key: backups made under it can no longer be restored",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if yes, _ := cmd.Flags().GetBool("yes"); !yes {
				if err := a.confirm(fmt.Sprintf("Backups made under backup key %d will never restore again. Continue?", id)); err != nil {
					return err
				}
			}
			return a.authedCall(cmd.Context(), "DELETE", fmt.Sprintf("/sys/backup-keys/%d", id), nil)
		},
	})
	c.Flags().Uint32Var(&id, "id", 0, "the backup key id (see `operator keyring status`)")
	_ = c.MarkFlagRequired("id")
	c.Flags().BoolP("yes", "y", false, "do not prompt for confirmation")
	return c
}

func (a *app) operatorAuthed(use, short, method, path string, body any) *cobra.Command {
	return leaf(&cobra.Command{
		Use:   use,
		Short: short,
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.authedCall(cmd.Context(), method, path, body) },
	})
}

func (a *app) authedCall(ctx context.Context, method, path string, body any) error {
	s, err := openSession()
	if err != nil {
		return err
	}
	tok, err := s.armToken(ctx)
	if err != nil {
		return fmt.Errorf("authenticating: %w", err)
	}
	out, err := sysCall(ctx, s.hc, method, strings.TrimSuffix(s.profile.Server, "/")+path, tok, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", strings.ToLower(method), path, err)
	}
	if out == nil {
		return nil
	}
	return a.print(out)
}

// operatorPrincipal is `operator principal`: inspect, disable, enable or delete a service
// principal and rotate or remove its client secrets. PRINCIPAL is an object id or client id.
// Every change that revokes takes effect on the next request on every node.
func (a *app) operatorPrincipal() *cobra.Command {
	byID := func(use, short, method, suffix string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " PRINCIPAL",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.authedCall(cmd.Context(), method, "/sys/principals/"+url.PathEscape(args[0])+suffix, nil)
			},
		}
	}
	var replace bool
	rotate := &cobra.Command{
		Use:   "rotate PRINCIPAL",
		Short: "Add a new client secret (printed once); with --replace the others are removed and their tokens revoked",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.authedCall(cmd.Context(), "POST", "/sys/principals/"+url.PathEscape(args[0])+"/secrets", map[string]bool{"replace": replace})
		},
	}
	rotate.Flags().BoolVar(&replace, "replace", false, "remove the principal's other secrets in the same step")
	var keyID string
	remove := &cobra.Command{
		Use:   "remove PRINCIPAL",
		Short: "Remove a client secret by key id; every token it minted is refused from the next request on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.authedCall(cmd.Context(), "DELETE", "/sys/principals/"+url.PathEscape(args[0])+"/secrets/"+url.PathEscape(keyID), nil)
		},
	}
	remove.Flags().StringVar(&keyID, "key-id", "", "the secret's key id (see `operator principal show`)")
	_ = remove.MarkFlagRequired("key-id")
	del := byID("delete", "Delete a principal; its tokens are refused from the next request on", "DELETE", "")
	del.Flags().BoolP("yes", "y", false, "do not prompt for confirmation")
	inner := del.RunE
	del.RunE = func(cmd *cobra.Command, args []string) error {
		if yes, _ := cmd.Flags().GetBool("yes"); !yes {
			if err := a.confirm(fmt.Sprintf("Principal %s and its credentials will be deleted for good. Continue?", args[0])); err != nil {
				return err
			}
		}
		return inner(cmd, args)
	}
	var displayName string
	create := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create a service principal (no role yet); prints its client secret once",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.authedCall(cmd.Context(), "POST", "/sys/principals", map[string]string{"displayName": displayName})
		},
	})
	create.Flags().StringVar(&displayName, "display-name", "", "the principal's display name")
	_ = create.MarkFlagRequired("display-name")
	return group(&cobra.Command{Use: "principal", Short: "Create, disable, enable or delete service principals and rotate their client secrets"},
		create,
		byID("show", "Show a principal and its client secrets' key ids", "GET", ""),
		byID("disable", "Disable a principal: its tokens are refused from the next request on, and it gets no new ones", "POST", "/disable"),
		byID("enable", "Enable a disabled principal (tokens from before the disable stay revoked)", "POST", "/enable"),
		del,
		group(&cobra.Command{Use: "secret", Short: "Rotate or remove a principal's client secrets"}, rotate, remove))
}
