package auditsink_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/auditsink"
)

// primary is a stand-in for the durable log.
type primary struct {
	mu   sync.Mutex
	recs []audit.Event
	fail bool
}

func (p *primary) Record(_ context.Context, e audit.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return audit.ErrUnavailable
	}
	p.recs = append(p.recs, e)
	return nil
}

func (p *primary) Healthy() bool { return true }

func event(i int, status int) audit.Event {
	return audit.Event{Operation: "SecretGet", Status: status, RequestID: "req-" + strconv.Itoa(i), URI: "https://v.vault.localhost/secrets/s?api-version=7.4",
		Caller: &audit.Claims{ObjectID: "oid-" + strconv.Itoa(i)}}
}

var fast = auditsink.Options{FlushInterval: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, SendTimeout: 500 * time.Millisecond}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receiver is an HTTP endpoint that records what it gets and answers with status().
type receiver struct {
	mu     sync.Mutex
	ids    []string
	status atomic.Int32
	hang   chan struct{} // closed to release hanging requests; nil = no hang
	header http.Header
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.hang != nil {
		select {
		case <-r.hang:
		case <-req.Context().Done():
			return
		}
	}
	body, _ := io.ReadAll(req.Body)
	if s := int(r.status.Load()); s != 0 && s != 200 {
		w.WriteHeader(s)
		return
	}
	var recs []struct {
		RequestID string `json:"requestId"`
		PrevHash  string `json:"prevHash"`
	}
	if err := json.Unmarshal(body, &recs); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.header = req.Header.Clone()
	for _, rec := range recs {
		r.ids = append(r.ids, rec.RequestID)
	}
	r.mu.Unlock()
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

func newHTTPSink(t *testing.T, rc *receiver) (*auditsink.HTTP, string) {
	t.Helper()
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	h, err := auditsink.NewHTTP(auditsink.HTTPConfig{URL: srv.URL + "/ingest?code=credential", Header: http.Header{"Authorization": {"Bearer sink-token"}}})
	if err != nil {
		t.Fatal(err)
	}
	return h, srv.URL
}

func TestTee_HTTPDeliversBatches(t *testing.T) {
	rc := &receiver{}
	h, _ := newHTTPSink(t, rc)
	p := &primary{}
	opts := fast
	opts.BatchSize = 3
	tee := auditsink.New(p, nil, auditsink.Output{Sink: h, Options: opts})
	defer tee.Close()
	for i := range 7 {
		if err := tee.Record(context.Background(), event(i, 200)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "7 records", func() bool { return len(rc.got()) == 7 })
	for i, id := range rc.got() {
		if id != "req-"+strconv.Itoa(i) {
			t.Errorf("record %d is %s: out of order", i, id)
		}
	}
	if rc.header.Get("Authorization") != "Bearer sink-token" || rc.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", rc.header)
	}
	waitFor(t, "the sends counted", func() bool { return tee.Stats()[0].Sent == 7 }) // counted once the answer is read
	st := tee.Stats()[0]
	if st.Sent != 7 || st.Dropped != 0 || strings.Contains(st.Name, "credential") || strings.Contains(st.Name, "ingest") {
		t.Errorf("stats %+v", st)
	}
	if len(p.recs) != 7 {
		t.Errorf("primary has %d records", len(p.recs))
	}
}

// TestTee_SinkTroubleNeverWaitsARequest: a hanging endpoint, one that errors and one that
// refuses; Record returns at once for each, and the failing sinks count drops and failures.
func TestTee_SinkTroubleNeverWaitsARequest(t *testing.T) {
	cases := []struct {
		name   string
		rc     *receiver
		status int
		// reached is the state the sink must get to: its failures counted.
		reached func(st auditsink.Stats) bool
	}{
		{"Hangs", &receiver{hang: make(chan struct{})}, 0, func(st auditsink.Stats) bool {
			return st.Dropped >= 190 && st.Sent == 0 && st.Queued > 0 // the batch in flight holds the worker
		}},
		{"Errors", &receiver{}, http.StatusServiceUnavailable, func(st auditsink.Stats) bool {
			return st.Failures >= 3 && st.Sent == 0 && strings.Contains(st.LastError, "503") // retried
		}},
		{"Refuses", &receiver{}, http.StatusBadRequest, func(st auditsink.Stats) bool {
			return st.Failures >= 1 && st.Sent == 0 && st.Dropped >= 197 && strings.Contains(st.LastError, "400") // not retried
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.rc.status.Store(int32(c.status))
			h, _ := newHTTPSink(t, c.rc)
			opts := fast
			opts.QueueSize, opts.BatchSize, opts.MaxAttempts = 5, 2, 3
			tee := auditsink.New(&primary{}, nil, auditsink.Output{Sink: h, Options: opts})
			for i := range 200 {
				start := time.Now()
				if err := tee.Record(context.Background(), event(i, 200)); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d > 100*time.Millisecond {
					t.Fatalf("Record %d waited %v for the sink", i, d)
				}
			}
			waitFor(t, "the sink's failures counted", func() bool { return c.reached(tee.Stats()[0]) })
			if c.rc.hang != nil {
				close(c.rc.hang)
			}
			start := time.Now()
			tee.Close()
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Close took %v", d)
			}
		})
	}
}

// TestTee_RecoversAfterOutage: records queued while the endpoint fails arrive once it recovers.
func TestTee_RecoversAfterOutage(t *testing.T) {
	rc := &receiver{}
	rc.status.Store(http.StatusBadGateway)
	h, _ := newHTTPSink(t, rc)
	opts := fast
	opts.MaxAttempts = 1000
	tee := auditsink.New(&primary{}, nil, auditsink.Output{Sink: h, Options: opts})
	defer tee.Close()
	for i := range 5 {
		tee.Record(context.Background(), event(i, 200))
	}
	waitFor(t, "failures", func() bool { return tee.Stats()[0].Failures >= 3 })
	rc.status.Store(200)
	waitFor(t, "delivery after recovery", func() bool { return len(rc.got()) == 5 && tee.Stats()[0].Sent == 5 })
	if st := tee.Stats()[0]; st.Dropped != 0 || st.LastError != "" {
		t.Errorf("stats %+v", st)
	}
}

// TestTee_PrimaryFailureCopiesNothing: a record the durable log did not take goes nowhere else.
func TestTee_PrimaryFailureCopiesNothing(t *testing.T) {
	rc := &receiver{}
	h, _ := newHTTPSink(t, rc)
	p := &primary{fail: true}
	tee := auditsink.New(p, nil, auditsink.Output{Sink: h, Options: fast})
	defer tee.Close()
	if err := tee.Record(context.Background(), event(1, 200)); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	p.fail = false
	tee.Record(context.Background(), event(2, 200))
	waitFor(t, "the second record", func() bool { return len(rc.got()) == 1 })
	time.Sleep(50 * time.Millisecond)
	if got := rc.got(); len(got) != 1 || got[0] != "req-2" {
		t.Errorf("got %v", got)
	}
}

// rfc5424 is the message shape: <PRI>1 TIMESTAMP HOST APP PROCID MSGID - BOM MSG.
var rfc5424 = regexp.MustCompile(`^<(\d+)>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (\S+) strongroom (\d+) (\S+) - \x{FEFF}(\{.*\})$`)

func checkSyslog(t *testing.T, msg string, wantPRI, wantOp, wantID string) {
	t.Helper()
	m := rfc5424.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("not an RFC 5424 message: %q", msg)
	}
	if m[1] != wantPRI || m[3] != "node-1" || m[5] != wantOp {
		t.Errorf("header %q: pri %s host %s msgid %s", msg, m[1], m[3], m[5])
	}
	var rec struct {
		RequestID string `json:"requestId"`
	}
	if err := json.Unmarshal([]byte(m[6]), &rec); err != nil || rec.RequestID != wantID {
		t.Errorf("MSG %q: %v", m[6], err)
	}
}

func TestSyslog_Transports(t *testing.T) {
	t.Run("TCP", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		msgs := make(chan string, 10)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for { // RFC 6587 octet counting: "LEN SP MSG"
				n, err := r.ReadString(' ')
				if err != nil {
					return
				}
				size, _ := strconv.Atoi(strings.TrimSpace(n))
				buf := make([]byte, size)
				if _, err := io.ReadFull(r, buf); err != nil {
					return
				}
				msgs <- string(buf)
			}
		}()
		sendSyslog(t, "tcp", ln.Addr().String(), msgs)
	})
	t.Run("UDP", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		sendSyslog(t, "udp", pc.LocalAddr().String(), datagrams(pc))
	})
	t.Run("Unix", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "log.sock")
		pc, err := net.ListenPacket("unixgram", path)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		sendSyslog(t, "unix", path, datagrams(pc))
	})
}

func datagrams(pc net.PacketConn) chan string {
	msgs := make(chan string, 10)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return msgs
}

func sendSyslog(t *testing.T, network, addr string, msgs chan string) {
	t.Helper()
	s, err := auditsink.NewSyslog(auditsink.SyslogConfig{Network: network, Address: addr, Facility: 13, Hostname: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	tee := auditsink.New(&primary{}, nil, auditsink.Output{Sink: s, Options: fast})
	defer tee.Close()
	tee.Record(context.Background(), event(1, 200))
	tee.Record(context.Background(), event(2, 403))
	for i, want := range []struct{ pri, id string }{{"110", "req-1"}, {"108", "req-2"}} { // 13*8+6, 13*8+4
		select {
		case m := <-msgs:
			checkSyslog(t, m, want.pri, "SecretGet", want.id)
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d did not arrive", i)
		}
	}
}

// TestSyslog_ReconnectsAfterTheReceiverRestarts: a TCP receiver that closes its connection gets
// the next records on a new one.
func TestSyslog_ReconnectsAfterTheReceiverRestarts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var frames atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				r := bufio.NewReader(c)
				n, err := r.ReadString(' ')
				if err == nil {
					size, _ := strconv.Atoi(strings.TrimSpace(n))
					if _, err := io.ReadFull(r, make([]byte, size)); err == nil {
						frames.Add(1)
					}
				}
				c.Close() // one frame per connection
			}()
		}
	}()
	s, err := auditsink.NewSyslog(auditsink.SyslogConfig{Network: "tcp", Address: ln.Addr().String(), Facility: 13})
	if err != nil {
		t.Fatal(err)
	}
	opts := fast
	opts.BatchSize = 1
	tee := auditsink.New(&primary{}, nil, auditsink.Output{Sink: s, Options: opts})
	defer tee.Close()
	for i := range 3 {
		tee.Record(context.Background(), event(i, 200))
		want := int32(i + 1)
		waitFor(t, "frame "+strconv.Itoa(i+1), func() bool {
			if frames.Load() >= want {
				return true
			}
			return false
		})
		time.Sleep(20 * time.Millisecond) // let the receiver close
	}
}

func TestNewSinks_Refuse(t *testing.T) {
	for _, c := range []auditsink.SyslogConfig{
		{Network: "http", Address: "x:1"},
		{Network: "udp"},
		{Network: "udp", Address: "127.0.0.1:514", Facility: 24},
	} {
		if _, err := auditsink.NewSyslog(c); err == nil {
			t.Errorf("NewSyslog(%+v) accepted", c)
		}
	}
	for _, u := range []string{"", "ftp://x/", "https://", "::"} {
		if _, err := auditsink.NewHTTP(auditsink.HTTPConfig{URL: u}); err == nil {
			t.Errorf("NewHTTP(%q) accepted", u)
		}
	}
}
