package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/auditquery"
)

// auditAPIVersion is the api-version the audit query route documents.
const auditAPIVersion = "2026-01-01"

// monitorLogCommand is "monitor log": queries over the audit log.
func (a *app) monitorLogCommand() *cobra.Command {
	return group(&cobra.Command{Use: "log", Short: "Query the audit log"}, a.monitorLogQuery())
}

// logQuery holds `monitor log query`'s flags.
type logQuery struct {
	vault, secret, caller, result, since, until string
	operations                                  []string
	limit                                       int
	next                                        string
	dir, dnsSuffix                              string
	resourceGroup                               string
}

func (a *app) monitorLogQuery() *cobra.Command {
	var lq logQuery
	c := leaf(&cobra.Command{
		Use:   "query",
		Short: "Query audit records by vault, secret, operation, caller, result and time",
		Long: "Query audit records (Key Vault's AuditEvent shape; no record holds a secret value), oldest first.\n\n" +
			"With --dir, reads a server's audit folder directly (<data_dir>/audit; no server or login needed). " +
			"Without it, asks the logged-in server, which requires the Strongroom Audit Reader role (action " +
			"Strongroom/operator/auditRecords/read); with --resource-group and --vault the query is at that vault's scope. " +
			"In a cluster each node answers from its own log (the node that served a request recorded it).\n\n" +
			"--since and --until take an RFC 3339 time, a date, or a duration before now (15m, 24h, 7d); since is " +
			"inclusive, until exclusive. --output table shows one line per record.",
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runLogQuery(cmd.Context(), &lq) },
	})
	f := c.Flags()
	f.StringVar(&lq.vault, "vault", "", "only records about this vault")
	f.StringVar(&lq.secret, "secret", "", "only records about this secret (by name)")
	f.StringSliceVar(&lq.operations, "operation", nil, "only these operations (SecretGet, SecretSet, VaultPut, Authentication...); repeatable or comma-separated")
	f.StringVar(&lq.caller, "caller", "", "only records of this caller: object id, application id or user principal name")
	f.StringVar(&lq.result, "result", "", "success, failure, unknown (an outcome a crash lost), an HTTP status (403) or a result signature (Forbidden)")
	f.StringVar(&lq.since, "since", "", "only records at or after this time")
	f.StringVar(&lq.until, "until", "", "only records before this time")
	f.IntVar(&lq.limit, "limit", auditquery.DefaultLimit, "the most records to show (at most "+strconv.Itoa(auditquery.MaxLimit)+")")
	f.StringVar(&lq.next, "next-token", "", "continue a query that stopped at --limit (the token it printed)")
	f.StringVar(&lq.dir, "dir", "", "read this audit folder (<data_dir>/audit) instead of asking the server")
	f.StringVar(&lq.dnsSuffix, "dns-suffix", "vault.localhost", "with --dir: the server's dns_suffix, to recognise data-plane requests to vaults that did not exist")
	f.StringVarP(&lq.resourceGroup, "resource-group", "g", "", "without --dir: query at the scope of --vault in this resource group")
	return c
}

func (a *app) runLogQuery(ctx context.Context, lq *logQuery) error {
	if lq.limit < 1 || lq.limit > auditquery.MaxLimit {
		return usageErrorf("--limit must be from 1 to %d", auditquery.MaxLimit)
	}
	now := time.Now()
	since, err := auditquery.ParseTime(lq.since, now)
	if err != nil {
		return usageErrorf("--since: %v", err)
	}
	until, err := auditquery.ParseTime(lq.until, now)
	if err != nil {
		return usageErrorf("--until: %v", err)
	}
	if lq.resourceGroup != "" && (lq.vault == "" || lq.dir != "") {
		return usageErrorf("--resource-group needs --vault and no --dir")
	}
	flt := auditquery.Filter{Vault: lq.vault, Secret: lq.secret, Operations: lq.operations, Caller: lq.caller,
		Result: lq.result, Since: since, Until: until, VaultDNSSuffix: lq.dnsSuffix}
	if err := flt.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	var recs []json.RawMessage
	var next string
	if lq.dir != "" {
		recs, next, err = queryLocal(ctx, lq.dir, flt, lq.limit, lq.next)
	} else {
		var s *session
		if s, err = openSession(); err != nil {
			return err
		}
		flt.VaultDNSSuffix = s.profile.KeyVaultDNS
		recs, next, err = queryServer(ctx, s, lq, flt)
	}
	if err != nil {
		return err
	}
	if err := a.printRecords(recs, flt.VaultDNSSuffix); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(a.stderr, "More records match: continue with --next-token %s\n", next)
	}
	return nil
}

// queryLocal reads pages from the folder until limit records or its end.
func queryLocal(ctx context.Context, dir string, f auditquery.Filter, limit int, token string) ([]json.RawMessage, string, error) {
	var out []json.RawMessage
	for {
		p, err := auditquery.Run(ctx, dir, auditquery.Query{Filter: f, Limit: limit - len(out), MaxScan: -1, Token: token})
		if err != nil {
			return nil, "", fmt.Errorf("querying %s: %w", dir, err)
		}
		out = append(out, p.Records...)
		if p.Next == "" || len(out) >= limit {
			return out, p.Next, nil
		}
		token = p.Next
	}
}

// auditPage is the server's answer (its node field names the node whose log answered).
type auditPage struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"nextLink"`
}

// queryServer follows the server's pages until limit records or their end. A page may be
// short (the server bounds the lines one request reads), so short pages do not end the query.
func queryServer(ctx context.Context, s *session, lq *logQuery, f auditquery.Filter) ([]json.RawMessage, string, error) {
	tok, err := s.armToken(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("authenticating: %w", err)
	}
	path := "/subscriptions/" + url.PathEscape(s.profile.SubscriptionID)
	if lq.resourceGroup != "" {
		path += "/resourceGroups/" + url.PathEscape(lq.resourceGroup) + "/providers/Microsoft.KeyVault/vaults/" + url.PathEscape(lq.vault)
	}
	path += "/providers/Strongroom.Insights/auditRecords"
	v := url.Values{"api-version": {auditAPIVersion}}
	for k, val := range map[string]string{"vault": f.Vault, "secret": f.Secret, "caller": f.Caller, "result": f.Result,
		"operation": strings.Join(f.Operations, ",")} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if !f.Since.IsZero() {
		v.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		v.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	var out []json.RawMessage
	token := lq.next
	for {
		v.Set("limit", strconv.Itoa(lq.limit-len(out)))
		v.Del("$skipToken")
		if token != "" {
			v.Set("$skipToken", token)
		}
		p, err := getAuditPage(ctx, s.hc, s.armEndpoint()+path+"?"+v.Encode(), tok)
		if err != nil {
			return nil, "", err
		}
		out = append(out, p.Value...)
		// The link's host is the server's public URL; only its token is used, so the bearer
		// token goes nowhere but the profile's endpoint.
		token = ""
		if p.NextLink != "" {
			if u, err := url.Parse(p.NextLink); err == nil {
				token = u.Query().Get("$skipToken")
			}
		}
		if token == "" || len(out) >= lq.limit {
			return out, token, nil
		}
	}
}

func getAuditPage(ctx context.Context, hc *http.Client, u, token string) (auditPage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return auditPage{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return auditPage{}, fmt.Errorf("querying the audit log: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return auditPage{}, fmt.Errorf("querying the audit log: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			return auditPage{}, fmt.Errorf("querying the audit log: (%s) %s", e.Error.Code, e.Error.Message)
		}
		return auditPage{}, fmt.Errorf("querying the audit log: HTTP %d", resp.StatusCode)
	}
	var p auditPage
	if err := json.Unmarshal(raw, &p); err != nil {
		return auditPage{}, fmt.Errorf("querying the audit log: the answer is not a page of records: %w", err)
	}
	return p, nil
}

// printRecords prints the records as they are, or one summary row each for the table formats.
func (a *app) printRecords(recs []json.RawMessage, dnsSuffix string) error {
	if f := a.out.Format; (f == "table" || f == "tsv") && a.out.Query == "" {
		rows := make([]auditquery.Row, 0, len(recs))
		for _, r := range recs {
			row, err := auditquery.Summarize(r, dnsSuffix)
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		// The time first, as one reads a log (the table otherwise sorts its columns by name).
		o := a.out
		o.Query = "[].{Time:time,Operation:operation,Vault:vault,Secret:secret,Caller:caller,CallerIp:callerIp,Result:result,Status:status}"
		return render(a.stdout, rows, o, a.color)
	}
	if recs == nil {
		recs = []json.RawMessage{}
	}
	return a.print(recs)
}
