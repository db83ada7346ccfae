package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// target is the prepared, read-only description of the data plane that all workers share.
type target struct {
	host      string     // vault host, e.g. benchkv.vault.localhost:8443
	base      string     // https://{host}
	readURLs  []*url.URL // GET /secrets/{name}/?api-version=…, one per name
	writeURLs []*url.URL // PUT /secrets/{name}?api-version=…, one per name
	auth      string     // "Bearer …"
	value     string     // the secret value every write sends
	body      []byte     // {"value":"…"}
	// place, when set, replaces readURLs and writeURLs: it returns the Host header and URL of
	// secret i (scale mode spreads secrets over many vaults and too many names to precompute).
	place func(i int, write bool) (host string, u *url.URL)
}

// secretName is the name of the i-th benchmark secret, in the perf anchors' perf-NNNN shape.
func secretName(i int) string { return fmt.Sprintf("perf-%04d", i) }

func newTarget(cfg Config, port, token string) (*target, error) {
	host := cfg.Vault + "." + cfg.DNSSuffix
	if port != "" {
		host += ":" + port
	}
	t := &target{host: host, base: "https://" + host, auth: "Bearer " + token}
	q := "?api-version=" + url.QueryEscape(cfg.APIVersion)
	for i := range cfg.Secrets {
		name := secretName(i)
		r, err := url.Parse(t.base + "/secrets/" + name + "/" + q)
		if err != nil {
			return nil, fmt.Errorf("building data-plane url: %w", err)
		}
		w, err := url.Parse(t.base + "/secrets/" + name + q)
		if err != nil {
			return nil, fmt.Errorf("building data-plane url: %w", err)
		}
		t.readURLs = append(t.readURLs, r)
		t.writeURLs = append(t.writeURLs, w)
	}
	// Printable and JSON-safe, so the body is exactly ValueSize bytes plus the envelope.
	t.value = strings.Repeat("v", cfg.ValueSize)
	body, err := json.Marshal(map[string]string{"value": t.value})
	if err != nil {
		return nil, err
	}
	t.body = body
	return t, nil
}

// worker is one closed-loop client with its own transport, hence its own connection.
// It is not safe for concurrent use.
type worker struct {
	t   *target
	rt  *http.Transport
	rng *rand.Rand
	get *http.Request // templates carrying the run's context and headers
	put *http.Request

	reads, writes []int64 // latencies in ns of operations completed inside the window
	errors        int64
	errorKinds    map[string]int64
	firstErr      error
	lastFinish    int64 // unix ns of the last recorded completion
}

func newWorker(ctx context.Context, t *target, rt *http.Transport, seed uint64) *worker {
	w := &worker{t: t, rt: rt, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), errorKinds: map[string]int64{}}
	getHdr := http.Header{"Authorization": {t.auth}}
	putHdr := http.Header{"Authorization": {t.auth}, "Content-Type": {"application/json"}}
	// The transport never modifies a request, and each copy below is used only until its body is
	// closed, so sharing the header maps is safe.
	w.get = (&http.Request{Method: http.MethodGet, Header: getHdr, Host: t.host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(ctx)
	w.put = (&http.Request{Method: http.MethodPut, Header: putHdr, Host: t.host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, ContentLength: int64(len(t.body))}).WithContext(ctx)
	return w
}

// do runs one read or write of secret i and reports whether it succeeded (status 200).
// The whole body is drained so the connection is reused.
func (w *worker) do(write bool, i int) error {
	var req http.Request
	if write {
		req = *w.put
		req.Body = io.NopCloser(bytes.NewReader(w.t.body))
	} else {
		req = *w.get
	}
	switch {
	case w.t.place != nil:
		req.Host, req.URL = w.t.place(i, write)
	case write:
		req.URL = w.t.writeURLs[i]
	default:
		req.URL = w.t.readURLs[i]
	}
	resp, err := w.rt.RoundTrip(&req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		io.Copy(io.Discard, resp.Body)
		return &httpStatusError{status: resp.StatusCode, op: opName(write), detail: statusError(resp.StatusCode, body)}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// fail counts an error by kind and keeps the first one for the report.
func (w *worker) fail(err error) {
	w.errors++
	kind := "transport"
	if se, ok := err.(*httpStatusError); ok {
		kind = se.op + " " + strconv.Itoa(se.status)
	}
	w.errorKinds[kind]++
	if w.firstErr == nil {
		w.firstErr = err
	}
}

// httpStatusError is a reply other than 200.
type httpStatusError struct {
	status int
	op     string
	detail error // status and error body
}

func (e *httpStatusError) Error() string { return e.op + ": " + e.detail.Error() }

func opName(write bool) string {
	if write {
		return "write"
	}
	return "read"
}
