package outbound

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func TestCheckAddr(t *testing.T) {
	own := func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("203.0.114.7")} }
	cases := []struct {
		addr    string
		allowed []netip.Prefix
		plain   bool
		ok      bool
	}{
		{"8.8.8.8", nil, false, true},
		{"2606:4700::1111", nil, false, true},
		{"127.0.0.1", nil, false, false},
		{"127.0.0.1", loopback, false, true},
		{"127.0.0.1", loopback, true, true},
		{"8.8.8.8", loopback, true, false}, // plain http only inside Allowed
		{"::1", nil, false, false},
		{"::1", loopback, false, false}, // an IPv4 allowance does not cover IPv6 loopback
		{"::ffff:127.0.0.1", nil, false, false},
		{"::ffff:127.0.0.1", loopback, false, true},
		{"::ffff:10.1.2.3", nil, false, false},
		{"0.0.0.0", nil, false, false},
		{"::", nil, false, false},
		{"10.0.0.1", nil, false, false},
		{"172.16.5.4", nil, false, false},
		{"192.168.1.1", nil, false, false},
		{"169.254.169.254", nil, false, false}, // cloud metadata
		{"fe80::1", nil, false, false},
		{"fe80::1%eth0", nil, false, false},
		{"fd00::1", nil, false, false},
		{"224.0.0.1", nil, false, false},
		{"ff02::1", nil, false, false},
		{"100.64.0.1", nil, false, false},
		{"255.255.255.255", nil, false, false},
		{"64:ff9b::7f00:1", nil, false, false},
		{"2002:7f00:1::", nil, false, false},
		{"203.0.114.7", nil, false, false}, // the server's own address
		{"10.9.8.7", []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}, false, true},
	}
	for _, tc := range cases {
		c := &Client{opts: Options{Allowed: tc.allowed}, own: own}
		err := c.checkAddr(netip.MustParseAddr(tc.addr), tc.plain)
		if (err == nil) != tc.ok {
			t.Errorf("%s allowed=%v plain=%v: err=%v, want ok=%v", tc.addr, tc.allowed, tc.plain, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v does not wrap ErrRefused", tc.addr, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	lookup := func(_ context.Context, _, host string) ([]netip.Addr, error) {
		switch host {
		case "public.example":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		case "mixed.example":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.5")}, nil
		case "local.example":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	none := func() []netip.Addr { return nil }
	httpLoop := Options{Allowed: loopback, AllowHTTP: true}
	cases := []struct {
		url  string
		opts Options
		ok   bool
	}{
		{"https://public.example/hook?code=s3cret", Options{}, true},
		{"http://public.example/hook", Options{}, false},
		{"http://public.example/hook", httpLoop, false}, // http outside the allowance
		{"https://mixed.example/", Options{}, false},    // any refused address refuses
		{"https://local.example/", Options{}, false},
		{"https://local.example/", Options{Allowed: loopback}, true},
		{"http://local.example/", httpLoop, true},
		{"http://127.0.0.1:8080/x", httpLoop, true},
		{"https://127.0.0.1/x", Options{}, false},
		{"https://[::ffff:127.0.0.1]/x", Options{}, false},
		{"https://[::1]/x", Options{}, false},
		{"https://0.0.0.0/x", Options{}, false},
		{"https://169.254.169.254/latest/meta-data", Options{}, false},
		{"https://nowhere.example/", Options{}, false},
		{"ftp://public.example/", Options{}, false},
		{"https:///nohost", Options{}, false},
		{"javascript:alert(1)", Options{}, false},
		{"https://public.example/" + strings.Repeat("a", 3000), Options{}, false},
	}
	for _, tc := range cases {
		err := checkURL(context.Background(), tc.url, tc.opts, lookup, none)
		if (err == nil) != tc.ok {
			t.Errorf("%.60s: err=%v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error echoes the query: %v", err)
		}
	}
}

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"https://user:pw@hooks.example/a/b?code=s3cret#frag": "https://hooks.example/a/b",
		"https://hooks.example/a?":                           "https://hooks.example/a",
		"http://127.0.0.1:9000/hook":                         "http://127.0.0.1:9000/hook",
		"not a url at all":                                   "[redacted]",
		"%zz":                                                "[redacted]",
	}
	for in, want := range cases {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPost(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "1" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(400)
			return
		}
		w.Write([]byte(`{"validationResponse":"abc"}`))
	})
	reached := make(chan struct{}, 1)
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/reached", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/reached", func(w http.ResponseWriter, r *http.Request) { reached <- struct{}{} })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 4096)) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	ctx := context.Background()
	hdr := http.Header{"X-Test": {"1"}}

	allowed := New(Options{Allowed: loopback, AllowHTTP: true, Timeout: 500 * time.Millisecond, MaxResponseBytes: 1024})
	st, body, err := allowed.Post(ctx, srv.URL+"/ok?code=s3cret", hdr, []byte(`{}`))
	if err != nil || st != 200 || !strings.Contains(string(body), "abc") {
		t.Fatalf("allowed post: %d %q %v", st, body, err)
	}

	st, _, err = allowed.Post(ctx, srv.URL+"/redirect", hdr, nil)
	if err != nil || st != http.StatusTemporaryRedirect {
		t.Fatalf("redirect: got %d %v, want the 307 itself", st, err)
	}
	select {
	case <-reached:
		t.Fatal("the redirect was followed")
	default:
	}

	st, body, err = allowed.Post(ctx, srv.URL+"/big", hdr, nil)
	if !errors.Is(err, ErrResponseTooLarge) || st != 200 || len(body) != 1024 {
		t.Fatalf("big: %d len=%d %v", st, len(body), err)
	}

	start := time.Now()
	_, _, err = allowed.Post(ctx, srv.URL+"/slow?code=s3cret", hdr, nil)
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("slow: err=%v after %v", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error echoes the query: %v", err)
	}

	// Without the allowance, loopback is refused at connect time, also when reached by a
	// name (the resolved address is what is checked: DNS rebinding).
	strict := New(Options{Timeout: time.Second})
	for _, u := range []string{
		"https://127.0.0.1:" + port + "/ok",
		"https://localhost:" + port + "/ok",
		"https://[::ffff:127.0.0.1]:" + port + "/ok",
	} {
		_, _, err := strict.Post(ctx, u, hdr, nil)
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s: err=%v, want ErrRefused", u, err)
		}
	}
	// http is refused without AllowHTTP, before any connection.
	if _, _, err := New(Options{Allowed: loopback}).Post(ctx, srv.URL+"/ok", hdr, nil); !errors.Is(err, ErrRefused) {
		t.Errorf("plain http without AllowHTTP: %v", err)
	}
	// With an https-only allowance the dialled address still has to be inside Allowed for http.
	if _, _, err := New(Options{Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, AllowHTTP: true}).Post(ctx, "http://localhost:"+port+"/ok", hdr, nil); !errors.Is(err, ErrRefused) {
		t.Errorf("plain http to a name outside Allowed: %v", err)
	}
}
