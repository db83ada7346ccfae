package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// listPageSize is the page size the list figures use (maxresults).
const listPageSize = 25

// listWarmup is how many unmeasured requests precede each page kind's samples.
const listWarmup = 3

// LatencyStats summarizes sequential requests of one kind, in milliseconds.
type LatencyStats struct {
	Samples int     `json:"samples"`
	MeanMs  float64 `json:"mean_ms"`
	P50Ms   float64 `json:"p50_ms"`
	P95Ms   float64 `json:"p95_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// ListStats is one list measurement of vault 0: its first page and a page from its middle,
// each requested ListSamples times in a row on one connection, with the log state at the time.
type ListStats struct {
	VaultSecrets    int           `json:"vault_secrets"`     // secrets in the listed vault
	PendingLogBytes int64         `json:"pending_log_bytes"` // write-ahead log payload not yet checkpointed
	PendingLogOps   int64         `json:"pending_log_ops"`   // writes (puts, deletes) in it
	First           LatencyStats  `json:"first_page"`
	Middle          *LatencyStats `json:"middle_page,omitempty"`
	MiddleNote      string        `json:"middle_note,omitempty"` // why the middle page is missing
}

type listPage struct {
	names []string
	next  string
}

// measureList times list pages of vault 0, which holds inVault secrets.
func (s *scaleRun) measureList(ctx context.Context, inVault int) (ListStats, error) {
	st := ListStats{VaultSecrets: inVault}
	var err error
	if st.PendingLogBytes, st.PendingLogOps, err = walPending(s.cfg.DataDir); err != nil {
		return st, err
	}
	s.progress("timing list pages of %s (%d secrets, %d log writes pending)", s.lay.vaultName(0), inVault, st.PendingLogOps)
	tr := newTransport(s.roots, false)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	first := fmt.Sprintf("https://%s/secrets?%s&maxresults=%d", s.lay.host(0), s.lay.query, listPageSize)
	page, lat, err := s.timePage(ctx, hc, first)
	if err != nil {
		return st, err
	}
	st.First = lat
	if len(page.names) != min(listPageSize, inVault) {
		return st, fmt.Errorf("listing %s: first page has %d names, want %d", s.lay.vaultName(0), len(page.names), min(listPageSize, inVault))
	}
	cursor := middleCursor(inVault)
	middle, note := middleLink(page, cursor)
	if middle == "" {
		st.MiddleNote = note
		return st, nil
	}
	mpage, mlat, err := s.timePage(ctx, hc, middle)
	if err != nil {
		return st, err
	}
	if len(mpage.names) == 0 || mpage.names[0] <= cursor {
		st.MiddleNote = "the middle page did not start after its cursor " + cursor
	}
	st.Middle = &mlat
	return st, nil
}

// timePage requests u listWarmup times unmeasured and then ListSamples times measured, and
// returns the last page and the latencies (request sent to body read).
func (s *scaleRun) timePage(ctx context.Context, hc *http.Client, u string) (listPage, LatencyStats, error) {
	var page listPage
	lat := make([]int64, 0, s.cfg.ListSamples)
	for i := range listWarmup + s.cfg.ListSamples {
		t0 := time.Now()
		body, err := s.get(ctx, hc, u)
		d := time.Since(t0)
		if err != nil {
			return page, LatencyStats{}, fmt.Errorf("listing %s: %w", s.lay.vaultName(0), err)
		}
		if i >= listWarmup {
			lat = append(lat, d.Nanoseconds())
		}
		if page, err = parseListPage(body); err != nil {
			return page, LatencyStats{}, fmt.Errorf("listing %s: %w", s.lay.vaultName(0), err)
		}
	}
	o := summarize(lat, 1)
	return page, LatencyStats{Samples: len(lat), MeanMs: o.MeanMs, P50Ms: o.P50Ms, P95Ms: o.P95Ms, MaxMs: o.MaxMs}, nil
}

// get sends an authorized GET and returns the body of a 200 reply.
func (s *scaleRun) get(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	return do(hc, req, http.StatusOK)
}

// parseListPage reads the secret names and the nextLink of a list reply.
func parseListPage(body []byte) (listPage, error) {
	var reply struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
		NextLink *string `json:"nextLink"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return listPage{}, fmt.Errorf("parsing list reply: %w", err)
	}
	var p listPage
	for _, v := range reply.Value {
		_, name, ok := strings.Cut(v.ID, "/secrets/")
		if !ok || name == "" {
			return listPage{}, fmt.Errorf("parsing list reply: id %q names no secret", v.ID)
		}
		p.names = append(p.names, strings.TrimSuffix(name, "/"))
	}
	if reply.NextLink != nil {
		p.next = *reply.NextLink
	}
	return p, nil
}

// middleCursor is the name in the middle of a vault of n benchmark secrets, in list order.
func middleCursor(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = secretName(i)
	}
	slices.Sort(names)
	return names[n/2]
}

// middleLink turns the first page's nextLink into the link of the page after cursor. The
// server's $skiptoken is the last listed name (case-folded as the server keys names) in
// base64url; a client walking nextLinks would reach the same page, only after many requests. A
// token of any other shape, or no nextLink (a one-page vault), leaves the middle page out, with
// the reason.
func middleLink(first listPage, cursor string) (link, note string) {
	if first.next == "" || len(first.names) == 0 {
		return "", "the vault fits on one page"
	}
	u, err := url.Parse(first.next)
	if err != nil {
		return "", "the nextLink is not a URL"
	}
	q := u.Query()
	got, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(q.Get("$skiptoken"), "="))
	last := first.names[len(first.names)-1]
	var seek string
	switch {
	case err != nil:
	case string(got) == last:
		seek = cursor
	case string(got) == strings.ToUpper(last):
		seek = strings.ToUpper(cursor)
	case string(got) == strings.ToLower(last):
		seek = strings.ToLower(cursor)
	}
	if seek == "" {
		return "", "the $skiptoken is not the last name in base64url: cannot seek to the middle"
	}
	q.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte(seek)))
	u.RawQuery = q.Encode()
	return u.String(), ""
}
