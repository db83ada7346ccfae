package auditsink

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SyslogConfig is a syslog destination.
type SyslogConfig struct {
	// Network is "udp" (RFC 5426: a datagram per record), "tcp" or "tls" (RFC 6587 and RFC 5425:
	// octet-counted frames), or "unix" (a local socket such as /dev/log: datagrams, or an
	// octet-counted stream when the socket is a stream).
	Network string
	Address string // host:port, or the socket's path for unix
	// Facility is the syslog facility number, 0-23 (config.SyslogFacility resolves names; the
	// config's default is 13, RFC 5424's "log audit").
	Facility int
	Hostname string      // HOSTNAME; default os.Hostname
	AppName  string      // APP-NAME; default "strongroom"
	TLS      *tls.Config // for "tls"; nil = system roots, server name from Address
}

// Syslog sends records as RFC 5424 messages: MSGID is the operationName, MSG the record's JSON;
// a failed request is severity warning (4), the rest informational (6).
type Syslog struct {
	cfg  SyslogConfig
	pid  string
	mu   sync.Mutex
	conn net.Conn
	// stream is whether conn needs framing (tcp, tls, a unix stream socket).
	stream bool
}

// NewSyslog checks cfg and returns the sink; it connects on the first Send.
func NewSyslog(cfg SyslogConfig) (*Syslog, error) {
	switch cfg.Network {
	case "udp", "tcp", "tls", "unix":
	default:
		return nil, fmt.Errorf("syslog network %q: use udp, tcp, tls or unix", cfg.Network)
	}
	if cfg.Address == "" {
		return nil, fmt.Errorf("syslog: no address")
	}
	if cfg.Facility < 0 || cfg.Facility > 23 {
		return nil, fmt.Errorf("syslog facility %d: use 0-23", cfg.Facility)
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.AppName == "" {
		cfg.AppName = "strongroom"
	}
	cfg.Hostname, cfg.AppName = header(cfg.Hostname, 255), header(cfg.AppName, 48)
	return &Syslog{cfg: cfg, pid: strconv.Itoa(os.Getpid())}, nil
}

func (s *Syslog) Name() string { return "syslog:" + s.cfg.Network + ":" + s.cfg.Address }

// Send writes the batch on one connection, reconnecting once after a failed write.
func (s *Syslog) Send(ctx context.Context, batch [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.stream && !s.alive() {
		s.drop() // the receiver closed it: writing would vanish into the socket buffer
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetWriteDeadline(dl)
	}
	var buf bytes.Buffer
	for _, rec := range batch {
		msg := s.message(rec)
		if s.stream {
			buf.WriteString(strconv.Itoa(len(msg)))
			buf.WriteByte(' ')
			buf.Write(msg)
			continue
		}
		if _, err := s.conn.Write(msg); err != nil {
			s.drop()
			return fmt.Errorf("writing to syslog %s: %w", s.cfg.Address, err)
		}
	}
	if s.stream {
		if _, err := s.conn.Write(buf.Bytes()); err != nil {
			// Part of the batch may have arrived: a retry may repeat records (at least once).
			s.drop()
			return fmt.Errorf("writing to syslog %s: %w", s.cfg.Address, err)
		}
	}
	return nil
}

func (s *Syslog) dial(ctx context.Context) error {
	d := net.Dialer{}
	var err error
	switch s.cfg.Network {
	case "tls":
		cfg := s.cfg.TLS
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		td := tls.Dialer{NetDialer: &d, Config: cfg}
		s.conn, err = td.DialContext(ctx, "tcp", s.cfg.Address)
		s.stream = true
	case "unix":
		if s.conn, err = d.DialContext(ctx, "unixgram", s.cfg.Address); err != nil {
			s.conn, err = d.DialContext(ctx, "unix", s.cfg.Address)
			s.stream = true
		} else {
			s.stream = false
		}
	default:
		s.conn, err = d.DialContext(ctx, s.cfg.Network, s.cfg.Address)
		s.stream = s.cfg.Network == "tcp"
	}
	if err != nil {
		s.conn = nil
		return fmt.Errorf("connecting to syslog %s: %w", s.cfg.Address, err)
	}
	return nil
}

// alive reports whether the stream is still open: a receiver sends nothing, so a read that
// does not time out at once found the end of the stream (or an error).
func (s *Syslog) alive() bool {
	s.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	var one [1]byte
	_, err := s.conn.Read(one[:])
	s.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Syslog) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop()
	return nil
}

// syslogFields are the record fields the message header uses.
type syslogFields struct {
	Time          string `json:"time"`
	OperationName string `json:"operationName"`
	ResultType    string `json:"resultType"`
}

// message is rec as an RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM MSG.
func (s *Syslog) message(rec []byte) []byte {
	var f syslogFields
	_ = json.Unmarshal(rec, &f)
	sev := 6
	if f.ResultType == "Failure" {
		sev = 4
	}
	ts := "-"
	if t, err := time.Parse(time.RFC3339Nano, f.Time); err == nil {
		ts = t.UTC().Format("2006-01-02T15:04:05.000000Z") // RFC 5424 allows six fractional digits
	}
	msgID := header(f.OperationName, 32)
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s %s %s %s - \xef\xbb\xbf", s.cfg.Facility*8+sev, ts, s.cfg.Hostname, s.cfg.AppName, s.pid, msgID)
	b.Write(rec)
	return b.Bytes()
}

// header is v as an RFC 5424 header field: printable US-ASCII without spaces, at most n
// characters, "-" when empty.
func header(v string, n int) string {
	v = strings.Map(func(r rune) rune {
		if r < 33 || r > 126 {
			return -1
		}
		return r
	}, v)
	if len(v) > n {
		v = v[:n]
	}
	if v == "" {
		return "-"
	}
	return v
}
