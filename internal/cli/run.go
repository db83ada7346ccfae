// Package cli implements Strongroom's az-style client commands on the official Azure SDKs for Go.
//
// Every command talks to the server only through azidentity, azsecrets, armkeyvault and
// armresources (plus the azcore ARM pipeline for the subscription list), so running the CLI is
// also a compatibility test of the server against Microsoft's own clients. Flag names, output
// shapes and output formats follow az so that az scripts carry over with the command renamed.
package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// ownCommands are the top-level commands defined here; only their arguments get az-style
// normalization, so the server's and the load generator's flags are left untouched.
var ownCommands = []string{"login", "logout", "account", "group", "keyvault", "role", "ad", "operator", "identity"}

// Run builds the root command with the given extra commands (the server and the load generator
// live in their own packages), executes it with args and returns the process exit code.
// Errors are printed by Run as one line on stderr.
func Run(args []string, extra ...*cobra.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a := &app{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		color:  isTerminal(os.Stdout),
		tty:    isTerminal(os.Stdin),
	}
	return a.run(ctx, args, extra...)
}

// app carries the streams and the global output flags to every command.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	color          bool // stdout is a terminal: jsonc may use colors
	tty            bool // stdin is a terminal: confirmations may prompt
	out            outputOptions
}

// run executes args and reports errors as one line.
func (a *app) run(ctx context.Context, args []string, extra ...*cobra.Command) int {
	root := a.rootCommand(extra...)
	if len(args) > 0 && slices.Contains(ownCommands, args[0]) {
		args = normalizeArgs(args)
	}
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(a.stderr, "strongroom: "+errorLine(err))
		return exitCode(err)
	}
	return 0
}

func (a *app) rootCommand(extra ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           "strongroom",
		Short:         "Strongroom: a self-hosted Azure Key Vault (secrets) server and its az-style client",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{msg: err.Error()}
	})
	// An extra command named "operator" contributes subcommands to the operator group.
	var opSubs []*cobra.Command
	for _, c := range extra {
		if c.Name() == "operator" {
			opSubs = append(opSubs, c.Commands()...)
		} else {
			root.AddCommand(c)
		}
	}
	for _, c := range []*cobra.Command{
		a.loginCommand(), a.logoutCommand(), a.accountCommand(), a.groupCommand(), a.keyvaultCommand(), a.roleCommand(a.roleEligibilityCommand(), a.roleActivateCommand(), a.roleDeactivateCommand(), a.roleApprovalCommand()), a.adCommand(), a.identityCommand(), a.monitorCommand(), a.eventgridCommand(), a.policyCommand(), a.operatorCommand(opSubs...), a.azConfigCommand(),
	} {
		a.addGlobalFlags(c)
		root.AddCommand(c)
	}
	// `strongroom run` prints nothing of its own; `strongroom agent` is `identity agent`, the
	// name to use when it also serves the secrets cache.
	root.AddCommand(a.runCommand(), a.identityAgentCommand())
	return root
}

// addGlobalFlags gives a top-level command az's global --output and --query flags.
func (a *app) addGlobalFlags(c *cobra.Command) {
	f := c.PersistentFlags()
	f.StringVarP(&a.out.Format, "output", "o", "json", "output format: "+strings.Join(outputFormats, ", "))
	f.StringVar(&a.out.Query, "query", "", "JMESPath query string applied to the result")
	f.Bool("only-show-errors", false, "accepted for az compatibility (warnings are never printed)")
	c.PersistentPreRunE = func(*cobra.Command, []string) error { return a.out.validate() }
}

// print writes a command's result in the chosen output format.
func (a *app) print(v any) error {
	return render(a.stdout, v, a.out, a.color)
}

// confirm asks a yes/no question on stdin as az does, refusing when nobody can answer it.
func (a *app) confirm(question string) error {
	if !a.tty {
		return usageErrorf("unable to prompt for confirmation as no tty is available: use --yes")
	}
	fmt.Fprint(a.stderr, question+" (y/n): ")
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("reading confirmation: %w", err)
	}
	if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
		return fmt.Errorf("operation cancelled")
	}
	return nil
}

// leaf sets up a command that takes flags only.
func leaf(c *cobra.Command) *cobra.Command {
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErrorf("unrecognized arguments: %s", strings.Join(args, " "))
		}
		return nil
	}
	return c
}

// group sets up a command that only holds subcommands; run bare, it prints its help.
func group(c *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return nil
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	c.AddCommand(subs...)
	return c
}

// isTerminal reports whether f looks like a terminal: a character device other than /dev/null
// (which is one too, and is what stdin often is in scripts and CI).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}
