package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

// adCommand is az's `ad`: the directory over Microsoft Graph (applications, service
// principals, users, groups), served by the Strongroom server at its origin.
func (a *app) adCommand() *cobra.Command {
	return group(&cobra.Command{Use: "ad", Short: "Manage the directory: applications, service principals, users and groups"},
		a.adAppCommand(), a.adSPCommand(), a.adUserCommand(), a.adGroupCommand())
}

// restClient calls the server's REST routes no SDK has a client for: Microsoft Graph, with a
// token for the server's origin, the audience the cloud metadata names as
// microsoftGraphResourceId (as az uses it), and the data plane's rotation routes (s.dataPlane).
type restClient struct {
	base string // origin or vault URL, no trailing "/"
	pl   runtime.Pipeline
}

func (s *session) graph() *restClient {
	base := strings.TrimSuffix(s.profile.Server, "/")
	opts := s.clientOptions()
	pl := runtime.NewPipeline("strongroom.cli", "v1.0.0", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(s.cred, []string{base + "/.default"}, nil)},
	}, &opts)
	return &restClient{base: base, pl: pl}
}

// restError is a Graph error answer, printed as az prints them.
type restError struct {
	status        int
	code, message string
}

func (e *restError) Error() string {
	if e.code == "" {
		return fmt.Sprintf("the server answered %d", e.status)
	}
	return e.code + ": " + e.message
}

func (e *restError) notFound() bool { return e.status == http.StatusNotFound }

// do sends one Graph request; out (if not nil) receives the JSON answer.
func (g *restClient) do(ctx context.Context, method, path string, body, out any) error {
	req, err := runtime.NewRequest(ctx, method, g.base+path)
	if err != nil {
		return err
	}
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(b)), "application/json"); err != nil {
			return err
		}
	}
	resp, err := g.pl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var env struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &env)
		ge := &restError{status: resp.StatusCode, code: env.Error.Code, message: env.Error.Message}
		if ge.notFound() { // az's exit code 3
			return &notFoundError{msg: ge.Error()}
		}
		return ge
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decoding the answer: %w", err)
		}
	}
	return nil
}

// list follows a Graph list and its @odata.nextLink pages.
func (g *restClient) list(ctx context.Context, path string) ([]map[string]any, error) {
	out := []map[string]any{}
	for pages := 0; path != "" && pages < 1000; pages++ {
		var page struct {
			Value    []map[string]any `json:"value"`
			NextLink string           `json:"@odata.nextLink"`
		}
		if err := g.do(ctx, http.MethodGet, path, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Value...)
		path = strings.TrimPrefix(page.NextLink, g.base)
	}
	return out, nil
}

// filterPath adds a $filter clause (OData-quoted value) to path.
func filterPath(path string, clauses ...string) string {
	var parts []string
	for _, c := range clauses {
		if c != "" {
			parts = append(parts, c)
		}
	}
	if len(parts) == 0 {
		return path
	}
	return path + "?$filter=" + url.QueryEscape(strings.Join(parts, " and "))
}

func odataQuote(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

func eqClause(prop, v string) string {
	if v == "" {
		return ""
	}
	return prop + " eq " + odataQuote(v)
}

func startsWithClause(prop, v string) string {
	if v == "" {
		return ""
	}
	return "startswith(" + prop + "," + odataQuote(v) + ")"
}

func isGUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// openGraph opens the session and its Graph client.
func openGraph() (*session, *restClient, error) {
	s, err := openSession()
	if err != nil {
		return nil, nil, err
	}
	return s, s.graph(), nil
}

// str reads a string property of a Graph object.
func str(o map[string]any, k string) string { s, _ := o[k].(string); return s }

// listFlags are the list commands' filters: az's --display-name and --filter.
type listFlags struct{ displayName, filter string }

func (f *listFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.displayName, "display-name", "", "object's display name or its prefix")
	c.Flags().StringVar(&f.filter, "filter", "", "OData filter, e.g. --filter \"displayname eq 'test'\"")
	c.Flags().Bool("all", false, "list all entities (every page is always listed)")
}

// singleFilter refuses a combination the server cannot answer (it takes one clause).
func singleFilter(clauses ...string) (string, error) {
	n := 0
	var one string
	for _, c := range clauses {
		if c != "" {
			n++
			one = c
		}
	}
	if n > 1 {
		return "", usageErrorf("use only one of the filtering arguments")
	}
	return one, nil
}
