package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/spf13/cobra"
)

// `strongroom run`: start a program with secrets in its environment, resolved at launch.
//
// The values live only in this process's memory and then in the program's environment: the
// program replaces this process (execve), so no parent lingers holding them, signals and the
// exit status are the program's own, and nothing is written to disk or put in any argv.

// secretRef is one kv:// reference: a secret of a vault, at a version or the latest.
type secretRef struct {
	vault   string // vault name; "" for a secret id until bindVaultHost names it
	host    string // a secret id's host[:port], lower case, which must be a vault host of the server
	name    string
	version string
}

var (
	refVault   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)
	refName    = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)
	refVersion = regexp.MustCompile(`^[0-9a-zA-Z]{1,64}$`)
	envName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// isSecretRef reports whether v is written as a reference (kv://, or a secret id URL).
func isSecretRef(v string) bool {
	return strings.HasPrefix(v, "kv://") || (strings.HasPrefix(v, "https://") && strings.Contains(v, "/secrets/"))
}

// parseSecretRef reads kv://<vault>/<name>[/<version>] or a secret id,
// https://<vault host>/secrets/<name>[/<version>]. Its errors never repeat v: an env file's
// value may be a secret, and a URL may carry a password.
func parseSecretRef(v string) (secretRef, error) {
	var r secretRef
	var rest string
	if s, ok := strings.CutPrefix(v, "kv://"); ok {
		vault, path, _ := strings.Cut(s, "/")
		if !validVaultName(vault) {
			return r, errors.New("the vault name must be 3-24 letters, digits and dashes")
		}
		r.vault, rest = vault, path
	} else {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return r, errors.New("want kv://<vault>/<name>[/<version>] or https://<vault host>/secrets/<name>[/<version>], with no user, query or fragment")
		}
		path, ok := strings.CutPrefix(u.Path, "/secrets/")
		if !ok {
			return r, errors.New("a secret id's path is /secrets/<name>[/<version>]")
		}
		r.host, rest = strings.ToLower(u.Host), path
	}
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	switch {
	case len(parts) > 2 || !refName.MatchString(parts[0]):
		return r, errors.New("want kv://<vault>/<name>[/<version>]; a secret name is 1-127 letters, digits and dashes")
	case len(parts) == 2 && !refVersion.MatchString(parts[1]):
		return r, errors.New("a secret version is 1-64 letters and digits")
	}
	r.name = parts[0]
	if len(parts) == 2 {
		r.version = parts[1]
	}
	return r, nil
}

// bindVaultHost accepts a secret id only at a vault host of the server, {vault}.{suffix} with
// suffix the server's keyVaultDns (host[:port]), compared case-blind with the port: the
// credential's token is sent to that host, so an env file must not be able to name another.
func (r *secretRef) bindVaultHost(suffix string) error {
	if r.host == "" {
		return nil
	}
	host, want := withoutHTTPSPort(r.host), withoutHTTPSPort(strings.ToLower(strings.TrimPrefix(suffix, ".")))
	vault, ok := strings.CutSuffix(host, "."+want)
	if !ok || want == "" || !validVaultName(vault) {
		return fmt.Errorf("a secret id must name a vault of the server, https://<vault>.%s/secrets/<name>[/<version>]", suffix)
	}
	r.vault = vault
	return nil
}

// withoutHTTPSPort drops an explicit :443, which names the same origin as none.
func withoutHTTPSPort(hostport string) string { return strings.TrimSuffix(hostport, ":443") }

// envEntry is one variable for the program: a plain value, or a reference to resolve.
type envEntry struct {
	name, value string
	ref         *secretRef
}

// parseEnvAssignment reads NAME=VALUE; a VALUE written as a reference is parsed. Errors name
// where and the variable, never the line or the value.
func parseEnvAssignment(s, where string) (envEntry, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || !envName.MatchString(name) {
		return envEntry{}, usageErrorf("%s: want NAME=VALUE, with NAME of letters, digits and underscores not starting with a digit", where)
	}
	e := envEntry{name: name, value: value}
	if isSecretRef(value) {
		r, err := parseSecretRef(value)
		if err != nil {
			return envEntry{}, usageErrorf("%s: %s: %v", where, name, err)
		}
		e.ref = &r
	}
	return e, nil
}

// parseEnvFile reads NAME=VALUE lines (blank lines and # comments skipped, an optional
// "export " prefix, one pair of surrounding quotes removed).
func parseEnvFile(path string) ([]envEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading --env-file: %w", err)
	}
	defer f.Close()
	var out []envEntry
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		if name, value, ok := strings.Cut(line, "="); ok && len(value) >= 2 &&
			(value[0] == '"' && value[len(value)-1] == '"' || value[0] == '\'' && value[len(value)-1] == '\'') {
			line = name + "=" + value[1:len(value)-1]
		}
		e, err := parseEnvAssignment(line, fmt.Sprintf("%s:%d", path, n))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading --env-file: %w", err)
	}
	return out, nil
}

// runOptions are `strongroom run`'s flags.
type runOptions struct {
	envs     []string
	envFiles []string
	identity bool
	clientID string
	server   string
	caFile   string
}

func (a *app) runCommand() *cobra.Command {
	var o runOptions
	c := &cobra.Command{
		Use:   "run [flags] -- program [args...]",
		Short: "Start a program with secrets from Strongroom in its environment",
		Long: "Resolve every kv://<vault>/<name>[/<version>] reference given with --env or in an --env-file, then start the\n" +
			"program with them in its environment. The program replaces this process (same PID, its own exit status and\n" +
			"signals); the values are never written to disk nor put in any command line. If any reference cannot be\n" +
			"resolved (missing, disabled, forbidden) nothing is started and the error names the variable.\n\n" +
			"Credentials: the logged-in profile (strongroom login), or with --identity a managed identity from the host's\n" +
			"identity agent (IDENTITY_ENDPOINT and IDENTITY_HEADER, or MSI_ENDPOINT), with --server and --ca-file naming\n" +
			"the server when there is no profile. Values in an --env-file that are not references are passed as they are.\n\n" +
			"A secret id (https://<vault host>/secrets/<name>[/<version>]) is accepted only at a vault host of that server,\n" +
			"https://<vault>.<its vault DNS suffix, with its port>/, the host a kv:// reference resolves to: any value that\n" +
			"starts with https:// and contains /secrets/ is read as a secret id, and one naming another host is an error\n" +
			"before any token is requested. Errors name the file, line and variable, never the value.",
		Example: "  strongroom run --env DB_PASSWORD=kv://myKeyVault/db-password -- ./app --port 8080\n" +
			"  strongroom run --identity --server https://kv.example.internal:8443 --env-file refs.env -- ./app",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runProgram(cmd.Context(), o, args)
		},
	}
	// Flags end at the program: its own flags are not ours.
	c.Flags().SetInterspersed(false)
	f := c.Flags()
	f.StringArrayVar(&o.envs, "env", nil, "NAME=kv://<vault>/<name>[/<version>] (repeatable)")
	f.StringArrayVar(&o.envFiles, "env-file", nil, "file of NAME=VALUE lines, where VALUE may be a kv:// reference (repeatable)")
	f.BoolVar(&o.identity, "identity", false, "authenticate with the host's managed identity (the identity agent's endpoint variables)")
	f.StringVar(&o.clientID, "client-id", "", "with --identity: the client id of a user-assigned identity, when the host has several")
	f.StringVar(&o.server, "server", "", "the server's public base URL (default: the logged-in profile's)")
	f.StringVar(&o.caFile, "ca-file", "", "PEM file of the CA that signed the server's certificate (default: the profile's, or system roots)")
	return c
}

// runProgram resolves the references and executes the program.
func (a *app) runProgram(ctx context.Context, o runOptions, args []string) error {
	var entries []envEntry
	for _, f := range o.envFiles {
		es, err := parseEnvFile(f)
		if err != nil {
			return err
		}
		entries = append(entries, es...)
	}
	for _, s := range o.envs {
		e, err := parseEnvAssignment(s, "--env")
		if err != nil {
			return err
		}
		if e.ref == nil {
			return usageErrorf("--env %s: the value is not a kv:// reference (plain values belong in the environment)", e.name)
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return usageErrorf("nothing to inject: give --env NAME=kv://<vault>/<name> or --env-file")
	}
	program, err := exec.LookPath(args[0])
	if err != nil {
		return fmt.Errorf("starting %s: %w", args[0], err)
	}
	s, err := runSession(ctx, o)
	if err != nil {
		return err
	}
	if err := resolveRefs(ctx, s, entries); err != nil {
		return err
	}
	env := os.Environ()
	for _, e := range entries {
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, e.name+"=") })
		env = append(env, e.name+"="+e.value)
	}
	if err := syscall.Exec(program, args, env); err != nil {
		return fmt.Errorf("starting %s: %w", args[0], err)
	}
	return nil
}

// runSession is the profile's session, or one on the managed identity with --identity.
func runSession(ctx context.Context, o runOptions) (*session, error) {
	if !o.identity {
		if o.clientID != "" {
			return nil, usageErrorf("--client-id needs --identity")
		}
		s, err := openSession()
		if err != nil {
			return nil, err
		}
		if o.server != "" && !strings.EqualFold(strings.TrimSuffix(o.server, "/"), s.profile.Server) {
			return nil, usageErrorf("--server %s is not the logged-in profile's server (%s): use --identity, or strongroom login", o.server, s.profile.Server)
		}
		return s, nil
	}
	p := &Profile{}
	if saved, err := loadProfile(); err == nil {
		p.Server, p.CAPEM = saved.Server, saved.CAPEM
	}
	if o.server != "" {
		u, err := url.Parse(strings.TrimSuffix(o.server, "/"))
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, usageErrorf("invalid --server value %q: expected an https URL such as %s", o.server, defaultServer)
		}
		p.Server, p.CAPEM = u.String(), ""
	}
	if p.Server == "" {
		return nil, usageErrorf("--identity needs --server (or a profile from strongroom login)")
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("reading ca file: %w", err)
		}
		p.CAPEM = string(pem)
	}
	hc, err := newHTTPClient([]byte(p.CAPEM))
	if err != nil {
		return nil, err
	}
	meta, err := fetchMetadata(ctx, hc, p.Server)
	if err != nil {
		return nil, err
	}
	applyMetadata(p, meta)
	s := &session{profile: p, hc: hc}
	opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: s.clientOptions()}
	if o.clientID != "" {
		opts.ID = azidentity.ClientID(o.clientID)
	}
	cred, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		return nil, fmt.Errorf("creating the managed identity credential: %w", err)
	}
	s.cred = cred
	return s, nil
}

// resolveRefs fetches every reference of entries (a few at a time) and fills in its value. The
// first failure, by the variables' order, is returned and names the variable.
func resolveRefs(ctx context.Context, s *session, entries []envEntry) error {
	// Every secret id is checked before any request: a token goes only to the server's vaults.
	for i := range entries {
		if r := entries[i].ref; r != nil {
			if err := r.bindVaultHost(s.profile.KeyVaultDNS); err != nil {
				return usageErrorf("%s: %v", entries[i].name, err)
			}
		}
	}
	clients := map[string]*azsecrets.Client{}
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range entries {
		e := &entries[i]
		if e.ref == nil {
			continue
		}
		vaultURL := s.vaultURL(e.ref.vault)
		c := clients[vaultURL]
		if c == nil {
			var err error
			if c, err = s.secretsClient(vaultURL); err != nil {
				return err
			}
			clients[vaultURL] = c
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			resp, err := c.GetSecret(ctx, e.ref.name, e.ref.version, nil)
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("%s: resolving %s: %s", e.name, e.value, refFailure(err))
			case resp.Value == nil:
				errs[i] = fmt.Errorf("%s: resolving %s: the secret has no value", e.name, e.value)
			default:
				e.value = *resp.Value
			}
		}()
	}
	wg.Wait()
	return errors.Join(slices.DeleteFunc(errs, func(err error) bool { return err == nil })...)
}

// refFailure says in one line why a secret could not be read.
func refFailure(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return describeResponseError(re)
	}
	return errorLine(err)
}
