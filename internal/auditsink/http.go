package auditsink

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// HTTPConfig is an HTTP destination.
type HTTPConfig struct {
	URL string
	// Header is sent with every batch (for example an Authorization the receiver expects); its
	// values are never logged.
	Header http.Header
	TLS    *tls.Config // nil = system roots
}

// HTTP posts each batch as a JSON array of records. A 2xx answer delivers the batch; 408, 429
// and 5xx are retried; any other status refuses it (Permanent). Redirects are not followed.
type HTTP struct {
	url    string
	name   string
	header http.Header
	hc     *http.Client
}

// NewHTTP checks cfg and returns the sink.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("audit HTTP sink: the url must be an http(s) URL")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg.TLS
	tr.MaxIdleConnsPerHost = 2
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// The name shows in logs and stats: no userinfo, query or path (they may carry a credential).
	return &HTTP{url: cfg.URL, name: "http:" + u.Scheme + "://" + u.Host, header: cfg.Header.Clone(), hc: hc}, nil
}

func (h *HTTP) Name() string { return h.name }

func (h *HTTP) Send(ctx context.Context, batch [][]byte) error {
	body := make([]byte, 0, 2+len(batch)*1024)
	body = append(body, '[')
	for i, rec := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, rec...)
	}
	body = append(body, ']')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return &Permanent{Err: errors.New("building the request failed")}
	}
	for k, v := range h.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its message repeats the URL: keep only the cause
			err = ue.Err
		}
		return fmt.Errorf("posting to %s: %w", h.name, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return fmt.Errorf("posting to %s: HTTP %d", h.name, s)
	default:
		return &Permanent{Err: fmt.Errorf("posting to %s: HTTP %d", h.name, s)}
	}
}

func (h *HTTP) Close() error {
	h.hc.CloseIdleConnections()
	return nil
}
