package cli

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// monitorAPIVersion is the api-version the Strongroom.Monitor routes document.
const monitorAPIVersion = "2026-01-01"

// monitorAlertCommand is "monitor alert": alert rules, fired alerts and honeytokens. Every call
// is an operator call (the Strongroom Operator role).
func (a *app) monitorAlertCommand() *cobra.Command {
	return group(&cobra.Command{Use: "alert", Short: "Manage alert rules and list fired alerts"},
		group(&cobra.Command{Use: "rule", Short: "Manage alert rules (built-in rules are named bruteForce, newPattern, rateSpike, honeytoken, auditSink)"},
			a.alertRuleCreate(), a.alertRuleList(), a.alertRuleShow(), a.alertRuleDelete()),
		a.alertList(),
		group(&cobra.Command{Use: "honeytoken", Short: "List or unmark a vault's honeytokens (mark one with `keyvault secret set --honeytoken`)"},
			a.honeytokenList(), a.honeytokenRemove()))
}

// monitorCall sends an ARM call to the logged-in server and returns its JSON answer.
func monitorCall(ctx context.Context, method, path string, body any) (map[string]any, error) {
	s, err := openSession()
	if err != nil {
		return nil, err
	}
	tok, err := s.armToken(ctx)
	if err != nil {
		return nil, fmt.Errorf("authenticating: %w", err)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return sysCall(ctx, s.hc, method, s.armEndpoint()+path+sep+"api-version="+monitorAPIVersion, tok, body)
}

func alertRulePath(name string) string {
	return "/providers/Strongroom.Monitor/alertRules/" + url.PathEscape(name)
}

// alertRuleFlags are the settings `rule create` sends; only the flags given are sent, so the
// others take the kind's defaults.
type alertRuleFlags struct {
	name, kind, window, learning string
	enabled                      bool
	threshold, minReads, max     int
	factor                       float64
}

func (a *app) alertRuleCreate() *cobra.Command {
	var rf alertRuleFlags
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create or replace an alert rule (a built-in rule's name overrides its configured settings on every node)",
		Long: "Kinds: BruteForce (--threshold failures, 401 or 403, from one caller or address within --window), " +
			"NewPattern (a caller reads a secret it never read from a /24 or /64 never seen for it, after --learning-period), " +
			"RateSpike (more than --threshold distinct secrets of one vault within --window, or more than --factor times the " +
			"caller's average reads per window and at least --min-reads), Honeytoken (every read of a honeytoken; --window merges " +
			"repeats), AuditSink (the audit log stopped writing; --window is how often it is checked), RotationFailure (a " +
			"secret rotation's step failed; one alert per rotation).",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rf.name == "" {
				return usageErrorf("the following arguments are required: --name")
			}
			props := map[string]any{}
			fl := cmd.Flags()
			set := func(flag, key string, v any) {
				if fl.Changed(flag) {
					props[key] = v
				}
			}
			set("kind", "kind", rf.kind)
			set("enabled", "enabled", rf.enabled)
			set("threshold", "threshold", rf.threshold)
			set("factor", "factor", rf.factor)
			set("min-reads", "minReads", rf.minReads)
			set("max-subjects", "maxSubjects", rf.max)
			for flag, v := range map[string]string{"window": rf.window, "learning-period": rf.learning} {
				if fl.Changed(flag) {
					if _, err := time.ParseDuration(v); err != nil {
						return usageErrorf("--%s: %q is not a duration such as 5m or 24h", flag, v)
					}
				}
			}
			set("window", "window", rf.window)
			set("learning-period", "learningPeriod", rf.learning)
			out, err := monitorCall(cmd.Context(), "PUT", alertRulePath(rf.name), map[string]any{"properties": props})
			if err != nil {
				return fmt.Errorf("creating alert rule: %w", err)
			}
			return a.print(out)
		},
	})
	f := c.Flags()
	f.StringVarP(&rf.name, "name", "n", "", "name of the rule")
	f.StringVar(&rf.kind, "kind", "", "BruteForce, NewPattern, RateSpike, Honeytoken or AuditSink (default: the built-in rule's, for its name)")
	f.BoolVar(&rf.enabled, "enabled", true, "whether the rule raises alerts")
	f.IntVar(&rf.threshold, "threshold", 0, "BruteForce: failures; RateSpike: distinct secrets")
	f.StringVar(&rf.window, "window", "", "the rule's window, e.g. 5m")
	f.StringVar(&rf.learning, "learning-period", "", "NewPattern: how long a new caller is only learned, e.g. 24h")
	f.Float64Var(&rf.factor, "factor", 0, "RateSpike: times the caller's average that alerts")
	f.IntVar(&rf.minReads, "min-reads", 0, "RateSpike: the fewest reads in a window that alert")
	f.IntVar(&rf.max, "max-subjects", 0, "callers and addresses remembered (least recently seen go first)")
	return c
}

func (a *app) alertRuleList() *cobra.Command {
	return leaf(&cobra.Command{
		Use:   "list",
		Short: "List the effective alert rules (configured, and set through the API)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := monitorCall(cmd.Context(), "GET", "/providers/Strongroom.Monitor/alertRules", nil)
			if err != nil {
				return fmt.Errorf("listing alert rules: %w", err)
			}
			return a.print(valueOf(out))
		},
	})
}

func (a *app) alertRuleShow() *cobra.Command {
	var name string
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show an alert rule",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageErrorf("the following arguments are required: --name")
			}
			out, err := monitorCall(cmd.Context(), "GET", alertRulePath(name), nil)
			if err != nil {
				return fmt.Errorf("showing alert rule: %w", err)
			}
			return a.print(out)
		},
	})
	c.Flags().StringVarP(&name, "name", "n", "", "name of the rule")
	return c
}

func (a *app) alertRuleDelete() *cobra.Command {
	var name string
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete an alert rule set through the API (a built-in rule returns to its configured settings)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageErrorf("the following arguments are required: --name")
			}
			if _, err := monitorCall(cmd.Context(), "DELETE", alertRulePath(name), nil); err != nil {
				return fmt.Errorf("deleting alert rule: %w", err)
			}
			return nil
		},
	})
	c.Flags().StringVarP(&name, "name", "n", "", "name of the rule")
	return c
}

func (a *app) alertList() *cobra.Command {
	var top int
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List the alerts the server fired, newest first (each node keeps its own)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/providers/Strongroom.Monitor/alerts"
			if top > 0 {
				path += "?$top=" + strconv.Itoa(top)
			}
			out, err := monitorCall(cmd.Context(), "GET", path, nil)
			if err != nil {
				return fmt.Errorf("listing alerts: %w", err)
			}
			return a.print(valueOf(out))
		},
	})
	c.Flags().IntVar(&top, "top", 0, "show at most this many")
	return c
}

// honeytokenPath is the vault's honeytokens route, or one name's.
func (a *app) honeytokenPath(ctx context.Context, vault, rg, secret string) (string, error) {
	_, rg, err := a.vaultAndGroup(ctx, vault, rg)
	if err != nil {
		return "", err
	}
	s, err := openSession()
	if err != nil {
		return "", err
	}
	p := "/subscriptions/" + url.PathEscape(s.profile.SubscriptionID) + "/resourceGroups/" + url.PathEscape(rg) +
		"/providers/Microsoft.KeyVault/vaults/" + url.PathEscape(vault) + "/providers/Strongroom.Monitor/honeytokens"
	if secret != "" {
		p += "/" + url.PathEscape(secret)
	}
	return p, nil
}

// markHoneytoken marks (or unmarks) a secret name of a vault as a honeytoken.
func (a *app) markHoneytoken(ctx context.Context, vault, secret string, on bool) error {
	p, err := a.honeytokenPath(ctx, vault, "", secret)
	if err != nil {
		return err
	}
	method := "PUT"
	if !on {
		method = "DELETE"
	}
	if _, err := monitorCall(ctx, method, p, map[string]any{}); err != nil {
		return fmt.Errorf("marking the honeytoken: %w", err)
	}
	return nil
}

func (a *app) honeytokenList() *cobra.Command {
	var vault, rg string
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List a vault's honeytokens",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if vault == "" {
				return usageErrorf("the following arguments are required: --vault-name")
			}
			p, err := a.honeytokenPath(cmd.Context(), vault, rg, "")
			if err != nil {
				return err
			}
			out, err := monitorCall(cmd.Context(), "GET", p, nil)
			if err != nil {
				return fmt.Errorf("listing honeytokens: %w", err)
			}
			return a.print(valueOf(out))
		},
	})
	c.Flags().StringVar(&vault, "vault-name", "", "name of the key vault")
	c.Flags().StringVarP(&rg, "resource-group", "g", "", "the vault's resource group (default: found by name)")
	return c
}

func (a *app) honeytokenRemove() *cobra.Command {
	var vault, name string
	c := leaf(&cobra.Command{
		Use:   "remove",
		Short: "Unmark a honeytoken (the secret stays)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if vault == "" || name == "" {
				return usageErrorf("the following arguments are required: --vault-name, --name")
			}
			return a.markHoneytoken(cmd.Context(), vault, name, false)
		},
	})
	c.Flags().StringVar(&vault, "vault-name", "", "name of the key vault")
	c.Flags().StringVarP(&name, "name", "n", "", "name of the secret")
	return c
}

// valueOf is a list answer's "value" array (empty when absent).
func valueOf(out map[string]any) any {
	if v, ok := out["value"]; ok && v != nil {
		return v
	}
	return []any{}
}
