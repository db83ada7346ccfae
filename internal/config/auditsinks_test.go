package config_test

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/strongroom/strongroom/internal/config"
)

func TestAuditSinksConfig_Validate(t *testing.T) {
	cases := []struct {
		name, yaml, wantErr string
	}{
		{"none", "", ""},
		{"syslog udp", "syslog: [{network: udp, address: '127.0.0.1:514'}]", ""},
		{"syslog tls with ca", "syslog: [{network: tls, address: 'logs.example:6514', ca_file: /etc/ca.pem, facility: local3}]", ""},
		{"syslog unix", "syslog: [{network: unix, address: /dev/log, facility: '4'}]", ""},
		{"syslog bad network", "syslog: [{network: http, address: 'x:1'}]", "audit.sinks.syslog[0].network"},
		{"syslog no port", "syslog: [{network: tcp, address: logs.example}]", "audit.sinks.syslog[0].address"},
		{"syslog unix no path", "syslog: [{network: unix}]", "audit.sinks.syslog[0].address"},
		{"syslog bad facility", "syslog: [{network: udp, address: 'a:1', facility: local9}]", "audit.sinks.syslog[0].facility"},
		{"syslog ca without tls", "syslog: [{network: tcp, address: 'a:1', ca_file: x}]", "audit.sinks.syslog[0].ca_file"},
		{"http", "http: [{url: 'https://collector.example/ingest', headers: {Authorization: 'Bearer x'}, batch_size: 50, timeout: 5s}]", ""},
		{"http plain refused", "http: [{url: 'http://127.0.0.1:9000/'}]", "audit.sinks.http[0].url: must be https"},
		{"http plain allowed", "http: [{url: 'http://127.0.0.1:9000/', insecure_http: true}]", ""},
		{"http not a url", "http: [{url: 'ftp://x/'}]", "audit.sinks.http[0].url"},
		{"http bad header", "http: [{url: 'https://x/', headers: {'a b': c}}]", "audit.sinks.http[0].headers"},
		{"http bad queue", "http: [{url: 'https://x/'}, {url: 'https://y/', queue_size: -1}]", "audit.sinks.http[1].queue_size"},
		{"negative duration", "http: [{url: 'https://x/', max_backoff: -1s}]", "durations"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s config.AuditSinksConfig
			if err := yaml.Unmarshal([]byte(c.yaml), &s); err != nil {
				t.Fatal(err)
			}
			err := s.Validate()
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, c.wantErr)
			}
		})
	}
	var s config.AuditSinksConfig
	if err := yaml.Unmarshal([]byte("http: [{url: 'https://x/', batch_size: 7, flush_interval: 2s}]"), &s); err != nil {
		t.Fatal(err)
	}
	if q := s.HTTP[0].Queue; q.BatchSize != 7 || q.FlushInterval != 2*time.Second {
		t.Errorf("inline queue fields: %+v", q)
	}
}

func TestSyslogFacility(t *testing.T) {
	for in, want := range map[string]int{"": 13, "audit": 13, "LOCAL0": 16, "kern": 0, "0": 0, "23": 23} {
		if got, err := config.SyslogFacility(in); err != nil || got != want {
			t.Errorf("SyslogFacility(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"24", "-1", "locale"} {
		if _, err := config.SyslogFacility(in); err == nil {
			t.Errorf("SyslogFacility(%q) accepted", in)
		}
	}
}
