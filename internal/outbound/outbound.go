// Package outbound is the HTTP client for calls the server makes to destinations a principal
// chose (event and alert webhooks). Such a principal may not be able to reach the server's own
// network, so the client refuses destinations inside it: loopback, link-local, private,
// unspecified, multicast, other special-purpose ranges and the host's own addresses, unless the
// operator's configuration allows them. The check runs on the address actually dialled (in the
// dialer's Control hook), so a name that resolves to a public address when validated and to a
// private one when used (DNS rebinding) is still refused. Redirects are never followed, HTTPS is
// required outside the allowance, and responses are bounded in time and size.
package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Defaults for a zero Options.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 64 << 10
	// maxURLLen bounds what a principal may store as a destination.
	maxURLLen = 2048
)

// Options configure a Client and CheckURL.
type Options struct {
	// Allowed are extra destinations the operator allows although they are refused by default
	// (for example 127.0.0.0/8 in tests, or an internal network the webhooks live in).
	Allowed []netip.Prefix
	// Timeout bounds a whole call, connection to last response byte. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes bounds the response body read. Zero means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// AllowHTTP admits plain http:// URLs, and then only to destinations inside Allowed.
	AllowHTTP bool
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o Options) maxResponse() int64 {
	if o.MaxResponseBytes > 0 {
		return o.MaxResponseBytes
	}
	return DefaultMaxResponseBytes
}

// ErrRefused is wrapped by every error that refuses a destination (as opposed to a
// destination that could not be reached).
var ErrRefused = errors.New("destination refused")

// ErrResponseTooLarge is returned (with the status) when the body exceeds MaxResponseBytes.
var ErrResponseTooLarge = errors.New("response too large")

// refusedRanges are special-purpose ranges that are not the public internet (RFC 6890 and
// successors), besides what netip's predicates cover. Translation prefixes (NAT64, 6to4,
// Teredo) are refused whole, since they embed an IPv4 address that could be anything.
var refusedRanges = mustPrefixes(
	"0.0.0.0/8",       // "this network"
	"100.64.0.0/10",   // shared address space (carrier-grade NAT)
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // TEST-NET-1
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // TEST-NET-2
	"203.0.113.0/24",  // TEST-NET-3
	"240.0.0.0/4",     // reserved, and the broadcast address
	"64:ff9b::/96",    // NAT64
	"64:ff9b:1::/48",  // local-use NAT64
	"100::/64",        // discard-only
	"2001::/32",       // Teredo
	"2001:db8::/32",   // documentation
	"2002::/16",       // 6to4
	"fc00::/7",        // unique local (also IsPrivate)
	"fec0::/10",       // deprecated site-local
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Client posts to refused-by-default destinations only when Options allow them.
type Client struct {
	opts  Options
	own   func() []netip.Addr
	httpc *http.Client
}

type ctxKey struct{}

// dialPolicy travels from Post to the dialer's Control hook in the request's context.
type dialPolicy struct{ onlyAllowed bool }

// New returns a Client. It never uses a proxy from the environment (a proxy would dial the
// destination itself, beyond the address check).
func New(opts Options) *Client {
	c := &Client{opts: opts, own: ownAddrs}
	d := &net.Dialer{Timeout: opts.timeout()}
	tr := &http.Transport{
		Proxy:                  nil,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           16,
		IdleConnTimeout:        60 * time.Second,
		TLSHandshakeTimeout:    opts.timeout(),
		ResponseHeaderTimeout:  opts.timeout(),
		MaxResponseHeaderBytes: 16 << 10,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			pol, _ := ctx.Value(ctxKey{}).(dialPolicy)
			dd := *d
			dd.Control = func(_, addr string, _ syscall.RawConn) error {
				return c.checkDialed(addr, pol.onlyAllowed)
			}
			return dd.DialContext(ctx, network, address)
		},
	}
	c.httpc = &http.Client{
		Transport: tr,
		Timeout:   opts.timeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c
}

// Dial opens a TCP connection under the same rules as Post, checked at connect time on the
// address actually dialled (so a name that resolves elsewhere later is refused too): for
// callers that speak another protocol to a principal-chosen host (a database to rotate).
func (c *Client) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	d := net.Dialer{Timeout: c.opts.timeout(), Control: func(_, addr string, _ syscall.RawConn) error {
		return c.checkDialed(addr, false)
	}}
	return d.DialContext(ctx, network, address)
}

// checkDialed is the connect-time check of the resolved address ("ip:port").
func (c *Client) checkDialed(addr string, onlyAllowed bool) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("%w: unparsable dial address", ErrRefused)
	}
	return c.checkAddr(ap.Addr(), onlyAllowed)
}

func (c *Client) checkAddr(a netip.Addr, onlyAllowed bool) error {
	a = a.Unmap().WithZone("")
	if inAny(c.opts.Allowed, a) {
		return nil
	}
	if onlyAllowed {
		return fmt.Errorf("%w: %s is outside the allowed destinations (plain http)", ErrRefused, a)
	}
	if why := refusedReason(a); why != "" {
		return fmt.Errorf("%w: %s is %s", ErrRefused, a, why)
	}
	for _, own := range c.own() {
		if own == a {
			return fmt.Errorf("%w: %s is this server's own address", ErrRefused, a)
		}
	}
	return nil
}

// refusedReason says why a is not a public destination, or "" if it is.
func refusedReason(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "not an address"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsInterfaceLocalMulticast(), a.IsMulticast():
		return "multicast"
	case a.IsPrivate():
		return "private"
	case inAny(refusedRanges, a):
		return "a special-purpose address"
	}
	return ""
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ownAddrs lists the host's interface addresses, so a public address of the server itself is
// refused too.
func ownAddrs() []netip.Addr {
	ifs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(ifs))
	for _, ia := range ifs {
		if n, ok := ia.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}

// parse checks the URL's syntax and scheme. It reports whether the scheme is plain http.
func parse(raw string, opts Options) (*url.URL, bool, error) {
	if len(raw) > maxURLLen {
		return nil, false, fmt.Errorf("%w: URL longer than %d characters", ErrRefused, maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, false, fmt.Errorf("%w: not a URL", ErrRefused)
	}
	plain := false
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !opts.AllowHTTP {
			return nil, false, fmt.Errorf("%w: the URL must use https", ErrRefused)
		}
		plain = true
	default:
		return nil, false, fmt.Errorf("%w: the URL must use https", ErrRefused)
	}
	if u.Hostname() == "" || u.Opaque != "" {
		return nil, false, fmt.Errorf("%w: the URL has no host", ErrRefused)
	}
	return u, plain, nil
}

// CheckURL validates a destination when it is stored: an https URL (or http when AllowHTTP and
// the host is inside Allowed) whose host resolves only to admitted addresses. The check is
// repeated at every connection, so passing it once does not make a destination trusted.
func CheckURL(raw string, opts Options) error {
	return checkURL(context.Background(), raw, opts, net.DefaultResolver.LookupNetIP, ownAddrs)
}

type lookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func checkURL(ctx context.Context, raw string, opts Options, lookup lookupFunc, own func() []netip.Addr) error {
	u, plain, err := parse(raw, opts)
	if err != nil {
		return err
	}
	c := &Client{opts: opts, own: own}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return c.checkAddr(a, plain)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := lookup(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("%w: host %q does not resolve", ErrRefused, host)
	}
	for _, a := range addrs {
		if err := c.checkAddr(a, plain); err != nil {
			return err
		}
	}
	return nil
}

// Post sends body with the given headers and returns the status and (bounded) response body.
// Errors never contain the URL's query string or userinfo.
func (c *Client) Post(ctx context.Context, rawURL string, header http.Header, body []byte) (int, []byte, error) {
	status, _, b, err := c.Do(ctx, http.MethodPost, rawURL, header, body)
	return status, b, err
}

// Do is Post with another method (OPTIONS for the CloudEvents webhook handshake), and returns
// the response's headers too.
func (c *Client) Do(ctx context.Context, method, rawURL string, header http.Header, body []byte) (int, http.Header, []byte, error) {
	u, plain, err := parse(rawURL, c.opts)
	if err != nil {
		return 0, nil, nil, err
	}
	ctx = context.WithValue(ctx, ctxKey{}, dialPolicy{onlyAllowed: plain})
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("outbound request to %s: %w", Redact(rawURL), ErrRefused)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("Content-Type") == "" && len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s to %s: %w", strings.ToLower(method), Redact(rawURL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	limit := c.opts.maxResponse()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("read response of %s: %w", Redact(rawURL), unwrapURLError(err))
	}
	if int64(len(b)) > limit {
		return resp.StatusCode, resp.Header, b[:limit], fmt.Errorf("response of %s: %w (over %d bytes)", Redact(rawURL), ErrResponseTooLarge, limit)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// unwrapURLError drops *url.Error's wrapper, whose message carries the full URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Redact returns the URL without its query string, fragment and userinfo, which often carry
// credentials, for showing in GET and list answers, logs and audit records. Something that
// does not parse as a URL is replaced entirely.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[redacted]"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}
