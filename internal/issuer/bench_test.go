package issuer_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// BenchmarkTokenEndpoint_ValidBehindBogus measures one valid client-credentials request (the
// production argon2id cost) sent right behind `bogus` concurrent bogus requests, each iteration
// anew: the bogus requests are started, given 5 ms to reach the hash queue, then the valid one
// is sent and timed. Requests go straight to the issuer's handler (no TLS, no network):
//
//	spray:  random client ids from random source addresses (no per-client or per-address
//	        history to go on)
//	brute:  wrong secrets for one real client id from one address (guessing); the valid
//	        caller is another principal at another address
//	distributed: wrong secrets for one real client id, each from a random address
//
// It reports the median and the worst valid-request latency (ms) and the share of valid requests
// answered 200 (the rest were told to retry: 503). Run with -benchtime=20x or so.
func BenchmarkTokenEndpoint_ValidBehindBogus(b *testing.B) {
	for _, mode := range []string{"spray", "brute", "distributed"} {
		for _, bogus := range []int{0, 16, 64} {
			if bogus == 0 && mode != "spray" {
				continue
			}
			b.Run(fmt.Sprintf("%s/bogus=%d", mode, bogus), func(b *testing.B) { benchValidBehindBogus(b, mode, bogus) })
		}
	}
}

func benchValidBehindBogus(b *testing.B, mode string, bogus int) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(b.TempDir(), "data.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{9}, keyring.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	const public = "https://localhost:8443"
	id, err := identity.New(ctx, st, kr, identity.Options{PublicURL: public})
	if err != nil {
		b.Fatal(err)
	}
	boot, _, err := id.EnsureBootstrap(ctx)
	if err != nil {
		b.Fatal(err)
	}
	victim, _, err := id.CreateServicePrincipal(ctx, "victim")
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	issuer.New(id, public).Register(mux)
	path := "/" + boot.TenantID + "/oauth2/v2.0/token"
	send := func(clientID, secret, remote string) int {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
			"scope": {"https://vault.azure.net/.default"}}
		r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}

	bogusOnce := func(g, n int) {
		switch mode {
		case "spray":
			send(uuid.NewString(), "wrong-secret", fmt.Sprintf("10.%d.%d.%d:4000", g, n>>8&255, n&255))
		case "brute":
			send(victim.AppID, fmt.Sprintf("guess-%d-%d", g, n), "192.0.2.66:4000")
		case "distributed":
			send(victim.AppID, fmt.Sprintf("guess-%d-%d", g, n), fmt.Sprintf("10.%d.%d.%d:4000", g, n>>8&255, n&255))
		}
	}
	var lat []time.Duration
	ok := 0
	b.ResetTimer()
	for i := range b.N {
		var wg sync.WaitGroup
		for g := range bogus {
			wg.Add(1)
			go func() { defer wg.Done(); bogusOnce(g, i) }()
		}
		if bogus > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		start := time.Now()
		code := send(boot.ClientID, boot.ClientSecret, fmt.Sprintf("198.51.100.%d:5000", i%200))
		lat = append(lat, time.Since(start))
		if code == http.StatusOK {
			ok++
		}
		wg.Wait()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(ok)/float64(len(lat)), "ok-share")
}
