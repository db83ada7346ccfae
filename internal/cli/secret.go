package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/spf13/cobra"
)

const (
	secretIDHelp   = "full id of the secret: https://{vault}.{dns-suffix}/secrets/{name}[/{version}]"
	deletedIDHelp  = "recovery id of the deleted secret: https://{vault}.{dns-suffix}/deletedsecrets/{name}"
	vaultIDHelp    = "full URI of the vault, e.g. https://{vault}.{dns-suffix}/"
	maxResultsHelp = "maximum number of results to return"
)

func (a *app) secretCommand() *cobra.Command {
	return group(&cobra.Command{Use: "secret", Short: "Manage secrets in a key vault"},
		a.secretSetCommand(), a.secretShowCommand(), a.secretListCommand(), a.secretListVersionsCommand(),
		a.secretSetAttributesCommand(), a.secretDeleteCommand(), a.secretListDeletedCommand(),
		a.secretShowDeletedCommand(), a.secretRecoverCommand(), a.secretPurgeCommand(),
		a.secretBackupCommand(), a.secretRestoreCommand(), a.secretDownloadCommand(),
		a.secretRotationPolicyCommand(), a.secretRotateCommand(), a.secretRotationStatusCommand())
}

// secretClient opens the session and resolves the target to a client plus name and version.
func secretClient(t *secretTarget) (*azsecrets.Client, resolved, error) {
	s, err := openSession()
	if err != nil {
		return nil, resolved{}, err
	}
	r, err := t.resolve(s)
	if err != nil {
		return nil, resolved{}, err
	}
	c, err := s.secretsClient(r.vaultURL)
	return c, r, err
}

func (a *app) secretSetCommand() *cobra.Command {
	var t secretTarget
	var props secretProps
	var value, file, encoding string
	var disabled, honeytoken bool
	c := leaf(&cobra.Command{
		Use:   "set",
		Short: "Create a secret, or a new version of it",
		RunE: func(cmd *cobra.Command, _ []string) error {
			hasValue := cmd.Flags().Changed("value")
			if hasValue == (file != "") {
				return usageErrorf("usage error: --value VALUE | --file PATH")
			}
			if !cmd.Flags().Changed("file") && cmd.Flags().Changed("encoding") {
				return usageErrorf("--encoding applies to --file only")
			}
			tags, err := parseTags(props.tags)
			if err != nil {
				return err
			}
			if file != "" {
				if value, err = readSecretFile(file, encoding); err != nil {
					return err
				}
				// az records how the file was encoded, so `secret download` can undo it.
				tags["file-encoding"] = to.Ptr(encoding)
			}
			attrs, err := props.attributes()
			if err != nil {
				return err
			}
			attrs.Enabled = to.Ptr(!disabled)
			client, r, err := secretClient(&t)
			if err != nil {
				return err
			}
			params := azsecrets.SetSecretParameters{Value: &value, SecretAttributes: attrs}
			if len(tags) > 0 {
				params.Tags = tags
			}
			if props.contentType != "" {
				params.ContentType = &props.contentType
			}
			if honeytoken { // marked first, so that no read of it goes unalerted (monitor_alert.go)
				if err := a.markHoneytoken(cmd.Context(), t.vaultName, r.name, true); err != nil {
					return err
				}
			}
			resp, err := client.SetSecret(cmd.Context(), r.name, params, nil)
			if err != nil {
				return notFoundOr(err, "vault", "setting secret")
			}
			return a.print(newSecretOut(resp.Secret))
		},
	})
	f := c.Flags()
	t.register(f, true, false, "")
	_ = f.MarkHidden("id") // az's set has no --id
	f.StringVar(&value, "value", "", "value of the secret")
	f.StringVarP(&file, "file", "f", "", "read the value from this file")
	f.StringVarP(&encoding, "encoding", "e", "utf-8", "encoding of --file: utf-8, ascii, base64 or hex")
	f.BoolVar(&disabled, "disabled", false, "create the secret disabled")
	f.BoolVar(&honeytoken, "honeytoken", false, "mark the secret as a decoy whose every read alerts (an operator call); readers see a normal secret")
	props.register(f)
	return c
}

func (a *app) secretShowCommand() *cobra.Command {
	var t secretTarget
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show a secret and its value",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, r, err := secretClient(&t)
			if err != nil {
				return err
			}
			resp, err := client.GetSecret(cmd.Context(), r.name, r.version, nil)
			if err != nil {
				return notFoundOr(err, "secret", "getting secret")
			}
			return a.print(newSecretOut(resp.Secret))
		},
	})
	t.register(c.Flags(), true, true, secretIDHelp)
	return c
}

func (a *app) secretListCommand() *cobra.Command {
	var t secretTarget
	var maxResults int
	var includeManaged bool
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List the secrets in a vault (without values)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, _, err := secretClient(&t)
			if err != nil {
				return err
			}
			items, err := collectPages(cmd.Context(), client.NewListSecretPropertiesPager(nil),
				func(p azsecrets.ListSecretPropertiesResponse) []*azsecrets.SecretProperties { return p.Value },
				// Like az: certificate-backed secrets only with --include-managed.
				func(p *azsecrets.SecretProperties) bool { return includeManaged || p.Managed == nil || !*p.Managed },
				newSecretItemOut)
			if err != nil {
				return notFoundOr(err, "vault", "listing secrets")
			}
			return a.print(limit(items, maxResults))
		},
	})
	f := c.Flags()
	t.register(f, false, false, vaultIDHelp)
	f.IntVar(&maxResults, "maxresults", 0, maxResultsHelp)
	f.BoolVar(&includeManaged, "include-managed", false, "include secrets managed by certificates")
	return c
}

func (a *app) secretListVersionsCommand() *cobra.Command {
	var t secretTarget
	var maxResults int
	c := leaf(&cobra.Command{
		Use:   "list-versions",
		Short: "List the versions of a secret (without values)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, r, err := secretClient(&t)
			if err != nil {
				return err
			}
			items, err := collectPages(cmd.Context(), client.NewListSecretPropertiesVersionsPager(r.name, nil),
				func(p azsecrets.ListSecretPropertiesVersionsResponse) []*azsecrets.SecretProperties { return p.Value },
				nil, newSecretItemOut)
			if err != nil {
				return notFoundOr(err, "secret", "listing secret versions")
			}
			return a.print(limit(items, maxResults))
		},
	})
	t.register(c.Flags(), true, false, secretIDHelp)
	c.Flags().IntVar(&maxResults, "maxresults", 0, maxResultsHelp)
	return c
}

func (a *app) secretSetAttributesCommand() *cobra.Command {
	var t secretTarget
	var props secretProps
	var enabled bool
	c := leaf(&cobra.Command{
		Use:   "set-attributes",
		Short: "Update a secret version's attributes (not its value)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			tags, err := parseTags(props.tags)
			if err != nil {
				return err
			}
			attrs, err := props.attributes()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("enabled") {
				attrs.Enabled = to.Ptr(enabled)
			}
			client, r, err := secretClient(&t)
			if err != nil {
				return err
			}
			// Only what was given is sent, so everything else stays as it is.
			var params azsecrets.UpdateSecretPropertiesParameters
			if *attrs != (azsecrets.SecretAttributes{}) {
				params.SecretAttributes = attrs
			}
			if cmd.Flags().Changed("tags") {
				params.Tags = tags
			}
			if cmd.Flags().Changed("content-type") {
				params.ContentType = &props.contentType
			}
			resp, err := client.UpdateSecretProperties(cmd.Context(), r.name, r.version, params, nil)
			if err != nil {
				return notFoundOr(err, "secret", "updating secret")
			}
			return a.print(newSecretOut(resp.Secret))
		},
	})
	f := c.Flags()
	t.register(f, true, true, secretIDHelp)
	f.BoolVar(&enabled, "enabled", true, "enable or disable the secret (--enabled false)")
	props.register(f)
	return c
}

func (a *app) secretDeleteCommand() *cobra.Command {
	var t secretTarget
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete a secret with all its versions (soft delete)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, r, err := secretClient(&t)
			if err != nil {
				return err
			}
			if err := checkNoVersion(r, "delete"); err != nil {
				return err
			}
			resp, err := client.DeleteSecret(cmd.Context(), r.name, nil)
			if err != nil {
				return notFoundOr(err, "secret", "deleting secret")
			}
			return a.print(newDeletedSecretOut(resp.DeletedSecret))
		},
	})
	t.register(c.Flags(), true, false, secretIDHelp)
	return c
}

func (a *app) secretListDeletedCommand() *cobra.Command {
	var t secretTarget
	var maxResults int
	c := leaf(&cobra.Command{
		Use:   "list-deleted",
		Short: "List the deleted secrets in a vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, _, err := secretClient(&t)
			if err != nil {
				return err
			}
			items, err := collectPages(cmd.Context(), client.NewListDeletedSecretPropertiesPager(nil),
				func(p azsecrets.ListDeletedSecretPropertiesResponse) []*azsecrets.DeletedSecretProperties {
					return p.Value
				},
				nil, newDeletedSecretItemOut)
			if err != nil {
				return notFoundOr(err, "vault", "listing deleted secrets")
			}
			return a.print(limit(items, maxResults))
		},
	})
	t.register(c.Flags(), false, false, vaultIDHelp)
	c.Flags().IntVar(&maxResults, "maxresults", 0, maxResultsHelp)
	return c
}

func (a *app) secretShowDeletedCommand() *cobra.Command {
	var t secretTarget
	c := leaf(&cobra.Command{
		Use:   "show-deleted",
		Short: "Show a deleted secret",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, r, err := secretClient(&t)
			if err != nil {
				return err
			}
			resp, err := client.GetDeletedSecret(cmd.Context(), r.name, nil)
			if err != nil {
				return notFoundOr(err, "deleted secret", "getting deleted secret")
			}
			return a.print(newDeletedSecretOut(resp.DeletedSecret))
		},
	})
	t.register(c.Flags(), true, false, deletedIDHelp)
	return c
}

func (a *app) secretRecoverCommand() *cobra.Command {
	var t secretTarget
	c := leaf(&cobra.Command{
		Use:   "recover",
		Short: "Recover a deleted secret to its latest version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, r, err := secretClient(&t)
			if err != nil {
				return err
			}
			resp, err := client.RecoverDeletedSecret(cmd.Context(), r.name, nil)
			if err != nil {
				return notFoundOr(err, "deleted secret", "recovering secret")
			}
			return a.print(newSecretOut(resp.Secret))
		},
	})
	t.register(c.Flags(), true, false, deletedIDHelp)
	return c
}

func (a *app) secretPurgeCommand() *cobra.Command {
	var t secretTarget
	c := leaf(&cobra.Command{
		Use:   "purge",
		Short: "Permanently delete a deleted secret",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, r, err := secretClient(&t)
			if err != nil {
				return err
			}
			if _, err := client.PurgeDeletedSecret(cmd.Context(), r.name, nil); err != nil {
				return notFoundOr(err, "deleted secret", "purging secret")
			}
			return nil
		},
	})
	t.register(c.Flags(), true, false, deletedIDHelp)
	return c
}

func (a *app) secretBackupCommand() *cobra.Command {
	var t secretTarget
	var file string
	c := leaf(&cobra.Command{
		Use:   "backup",
		Short: "Back up all versions of a secret to a file",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, r, err := secretClient(&t)
			if err != nil {
				return err
			}
			if err := checkNoVersion(r, "backup"); err != nil {
				return err
			}
			resp, err := client.BackupSecret(cmd.Context(), r.name, nil)
			if err != nil {
				return notFoundOr(err, "secret", "backing up secret")
			}
			// The blob is the service's opaque (encrypted) format; keep it owner-only all the same.
			if err := os.WriteFile(file, resp.Value, 0o600); err != nil {
				return fmt.Errorf("writing backup file: %w", err)
			}
			return nil
		},
	})
	t.register(c.Flags(), true, false, secretIDHelp)
	c.Flags().StringVarP(&file, "file", "f", "", "file to write the backup blob to")
	_ = c.MarkFlagRequired("file")
	return c
}

func (a *app) secretRestoreCommand() *cobra.Command {
	var t secretTarget
	var file string
	c := leaf(&cobra.Command{
		Use:   "restore",
		Short: "Restore a backed-up secret into a vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			blob, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("reading backup file: %w", err)
			}
			client, _, err := secretClient(&t)
			if err != nil {
				return err
			}
			resp, err := client.RestoreSecret(cmd.Context(), azsecrets.RestoreSecretParameters{SecretBackup: blob}, nil)
			if err != nil {
				return notFoundOr(err, "vault", "restoring secret")
			}
			return a.print(newSecretOut(resp.Secret))
		},
	})
	t.register(c.Flags(), false, false, vaultIDHelp)
	c.Flags().StringVarP(&file, "file", "f", "", "backup file to restore from")
	_ = c.MarkFlagRequired("file")
	return c
}

func (a *app) secretDownloadCommand() *cobra.Command {
	var t secretTarget
	var file, encoding string
	c := leaf(&cobra.Command{
		Use:   "download",
		Short: "Download a secret's value to a new file",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, r, err := secretClient(&t)
			if err != nil {
				return err
			}
			resp, err := client.GetSecret(cmd.Context(), r.name, r.version, nil)
			if err != nil {
				return notFoundOr(err, "secret", "getting secret")
			}
			enc := encoding
			if !cmd.Flags().Changed("encoding") {
				// Undo what `secret set --file` did, as az does with the file-encoding tag.
				if tag := resp.Tags["file-encoding"]; tag != nil {
					enc = *tag
				}
			}
			data, err := decodeSecretValue(deref(resp.Value), enc)
			if err != nil {
				return err
			}
			return writeNewFile(file, data)
		},
	})
	t.register(c.Flags(), true, true, secretIDHelp)
	c.Flags().StringVarP(&file, "file", "f", "", "file to create with the secret's value")
	c.Flags().StringVarP(&encoding, "encoding", "e", "utf-8", "how to decode the value: utf-8, ascii, base64 or hex")
	_ = c.MarkFlagRequired("file")
	return c
}

// writeNewFile creates path with owner-only permissions, refusing to overwrite (as az does).
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("file or directory %s already exists", path)
	}
	if err != nil {
		return fmt.Errorf("writing secret file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing secret file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing secret file: %w", err)
	}
	return nil
}
