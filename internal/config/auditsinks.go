package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// AuditSinksConfig lists extra destinations that receive a copy of every audit record after
// the primary log (<data_dir>/audit) has written it (`audit.sinks`). They are set in the config
// file only, never through the API. A destination that fails or hangs never delays a request:
// each has a bounded queue, and records that do not fit are dropped and counted.
type AuditSinksConfig struct {
	Syslog []SyslogSinkConfig `yaml:"syslog"`
	HTTP   []HTTPSinkConfig   `yaml:"http"`
}

// SinkQueueConfig bounds a sink's queue and retries; zero fields take the defaults.
type SinkQueueConfig struct {
	// QueueSize is how many records may wait (default 10000); more are dropped.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most records per send (default 100; syslog sends one message per record,
	// batching only the writes).
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is how long a partial batch waits for more (default 1s).
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Timeout bounds one send (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts is how often a batch is sent before it is dropped (default 8), with
	// exponential backoff from 200ms to MaxBackoff (default 30s) between attempts.
	MaxAttempts int           `yaml:"max_attempts"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
}

// SyslogSinkConfig is an RFC 5424 syslog destination.
type SyslogSinkConfig struct {
	// Network is udp, tcp, tls or unix.
	Network string `yaml:"network"`
	// Address is host:port, or the socket path for unix (e.g. /dev/log).
	Address string `yaml:"address"`
	// Facility is a facility name (kern, user, daemon, auth, authpriv, audit, local0-local7) or
	// number 0-23. Default audit (13, RFC 5424's "log audit").
	Facility string `yaml:"facility"`
	// Hostname is the message's HOSTNAME; default the machine's host name.
	Hostname string `yaml:"hostname"`
	// CAFile is the PEM CA bundle that verifies a tls receiver; default the system roots.
	CAFile string          `yaml:"ca_file"`
	Queue  SinkQueueConfig `yaml:",inline"`
}

// HTTPSinkConfig is an HTTP endpoint that receives batches as a JSON array of records (POST).
type HTTPSinkConfig struct {
	// URL must be https, unless InsecureHTTP is set (a collector on the same machine).
	URL          string `yaml:"url"`
	InsecureHTTP bool   `yaml:"insecure_http"`
	// Headers are sent with every batch (for example Authorization); never logged.
	Headers map[string]string `yaml:"headers"`
	// CAFile is the PEM CA bundle that verifies the endpoint; default the system roots.
	CAFile string          `yaml:"ca_file"`
	Queue  SinkQueueConfig `yaml:",inline"`
}

var syslogFacilities = map[string]int{"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
	"news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23}

// SyslogFacility is the facility number of a config value ("" is audit).
func SyslogFacility(v string) (int, error) {
	if v == "" {
		return 13, nil
	}
	if n, ok := syslogFacilities[strings.ToLower(v)]; ok {
		return n, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= 23 {
		return n, nil
	}
	return 0, fmt.Errorf("%q is not a syslog facility (a name such as audit or local0, or 0-23)", v)
}

// Validate checks the sinks; the field named in errors is under audit.sinks.
func (c *AuditSinksConfig) Validate() error {
	for i, s := range c.Syslog {
		at := fmt.Sprintf("audit.sinks.syslog[%d]", i)
		switch s.Network {
		case "udp", "tcp", "tls":
			if _, _, err := net.SplitHostPort(s.Address); err != nil {
				return fmt.Errorf("%s.address: %q is not host:port", at, s.Address)
			}
		case "unix":
			if s.Address == "" {
				return fmt.Errorf("%s.address: the socket path is required", at)
			}
		default:
			return fmt.Errorf("%s.network: %q is not udp, tcp, tls or unix", at, s.Network)
		}
		if _, err := SyslogFacility(s.Facility); err != nil {
			return fmt.Errorf("%s.facility: %w", at, err)
		}
		if s.CAFile != "" && s.Network != "tls" {
			return fmt.Errorf("%s.ca_file: only for network tls", at)
		}
		if err := s.Queue.validate(at); err != nil {
			return err
		}
	}
	for i, h := range c.HTTP {
		at := fmt.Sprintf("audit.sinks.http[%d]", i)
		u, err := url.Parse(h.URL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return fmt.Errorf("%s.url: not an http(s) URL", at) // the URL itself may hold a credential
		}
		if u.Scheme == "http" && !h.InsecureHTTP {
			return fmt.Errorf("%s.url: must be https (set insecure_http for a collector on a trusted network)", at)
		}
		for k := range h.Headers {
			if k == "" || strings.ContainsAny(k, " :\r\n") {
				return fmt.Errorf("%s.headers: %q is not a header name", at, k)
			}
		}
		if err := h.Queue.validate(at); err != nil {
			return err
		}
	}
	return nil
}

func (q *SinkQueueConfig) validate(at string) error {
	switch {
	case q.QueueSize < 0 || q.QueueSize > 1_000_000:
		return fmt.Errorf("%s.queue_size: %d is not 0-1000000", at, q.QueueSize)
	case q.BatchSize < 0 || q.BatchSize > 10_000:
		return fmt.Errorf("%s.batch_size: %d is not 0-10000", at, q.BatchSize)
	case q.MaxAttempts < 0:
		return fmt.Errorf("%s.max_attempts: must not be negative", at)
	case q.FlushInterval < 0 || q.Timeout < 0 || q.MaxBackoff < 0:
		return fmt.Errorf("%s: durations must not be negative", at)
	}
	return nil
}
