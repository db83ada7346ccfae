package netacl

import (
	"net/netip"
	"strings"
	"testing"
)

func mustProxies(t *testing.T, cidrs ...string) *Proxies {
	t.Helper()
	p, err := ParseProxies(cidrs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClientIP(t *testing.T) {
	proxies := mustProxies(t, "10.0.0.0/8", "192.168.1.1", "fd00::/8")
	long := strings.Repeat("10.0.0.9, ", MaxForwardedHops) + "10.0.0.9"
	tests := []struct {
		name   string
		p      *Proxies
		remote string
		xff    []string
		want   string // "" = invalid (unknown client)
	}{
		{"no proxies configured: header ignored", nil, "127.0.0.1:5000", []string{"1.2.3.4"}, "127.0.0.1"},
		{"untrusted peer: header ignored", proxies, "203.0.113.5:443", []string{"1.2.3.4"}, "203.0.113.5"},
		{"trusted peer, no header", proxies, "10.1.1.1:443", nil, "10.1.1.1"},
		{"trusted peer, one entry", proxies, "10.1.1.1:443", []string{"1.2.3.4"}, "1.2.3.4"},
		{"right-most untrusted wins over a spoofed left", proxies, "10.1.1.1:443", []string{"6.6.6.6, 1.2.3.4"}, "1.2.3.4"},
		{"trusted hops are skipped", proxies, "10.1.1.1:443", []string{"6.6.6.6, 1.2.3.4, 10.2.2.2, 192.168.1.1"}, "1.2.3.4"},
		{"several header lines read as one list", proxies, "10.1.1.1:443", []string{"6.6.6.6, 1.2.3.4", "10.2.2.2"}, "1.2.3.4"},
		{"all trusted: left-most", proxies, "10.1.1.1:443", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"spaces and empty line", proxies, "10.1.1.1:443", []string{"  1.2.3.4  ", ""}, "1.2.3.4"},
		{"entry with a port", proxies, "10.1.1.1:443", []string{"1.2.3.4:5555"}, "1.2.3.4"},
		{"bracketed v6 with port", proxies, "10.1.1.1:443", []string{"[2001:db8::1]:5555"}, "2001:db8::1"},
		{"bare v6 entry", proxies, "10.1.1.1:443", []string{"2001:db8::1"}, "2001:db8::1"},
		{"v6 trusted peer", proxies, "[fd00::1]:443", []string{"1.2.3.4"}, "1.2.3.4"},
		{"v4-mapped peer is its v4 address", proxies, "[::ffff:10.1.1.1]:443", []string{"1.2.3.4"}, "1.2.3.4"},
		{"v4-mapped untrusted peer unmapped", proxies, "[::ffff:203.0.113.5]:443", nil, "203.0.113.5"},
		{"v4-mapped entry unmapped", proxies, "10.1.1.1:443", []string{"::ffff:1.2.3.4"}, "1.2.3.4"},
		{"zone dropped", nil, "[fe80::1%eth0]:443", nil, "fe80::1"},
		{"malformed entry: unknown", proxies, "10.1.1.1:443", []string{"not-an-ip"}, ""},
		{"malformed entry behind a good one is not reached", proxies, "10.1.1.1:443", []string{"garbage, 1.2.3.4"}, "1.2.3.4"},
		{"malformed entry after trusted hop: unknown", proxies, "10.1.1.1:443", []string{"1.2.3.4, junk, 10.2.2.2"}, ""},
		{"empty entry: unknown", proxies, "10.1.1.1:443", []string{"1.2.3.4,,10.2.2.2"}, ""},
		{"trailing comma: unknown", proxies, "10.1.1.1:443", []string{"1.2.3.4,"}, ""},
		{"cidr is not an address", proxies, "10.1.1.1:443", []string{"1.2.3.0/24"}, ""},
		{"too many trusted hops: unknown", proxies, "10.1.1.1:443", []string{long}, ""},
		{"exactly the hop limit", proxies, "10.1.1.1:443", []string{strings.Repeat("10.0.0.9, ", MaxForwardedHops-1) + "10.0.0.8"}, "10.0.0.9"},
		{"untrusted found within a long header", proxies, "10.1.1.1:443", []string{long + ", 8.8.8.8"}, "8.8.8.8"},
		{"unparseable peer", proxies, "@", []string{"1.2.3.4"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.ClientIP(tc.remote, tc.xff)
			if tc.want == "" {
				if got.IsValid() {
					t.Fatalf("ClientIP = %v, want unknown", got)
				}
				return
			}
			if got != netip.MustParseAddr(tc.want) {
				t.Fatalf("ClientIP = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestParseRule(t *testing.T) {
	tests := []struct {
		in, want string // want "" = error
	}{
		{"1.2.3.4", "1.2.3.4/32"},
		{" 1.2.3.4 ", "1.2.3.4/32"},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:1.2.3.4", "1.2.3.4/32"},
		{"", ""},
		{"1.2.3", ""},
		{"1.2.3.4/33", ""},
		{"1.2.3.4/", ""},
		{"300.1.1.1", ""},
		{"fe80::1%eth0", ""},
		{"example.com", ""},
		{"1.2.3.4/8/8", ""},
	}
	for _, tc := range tests {
		p, err := ParseRule(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParseRule(%q) = %v, want an error", tc.in, p)
			}
			continue
		}
		if err != nil || p.String() != tc.want {
			t.Errorf("ParseRule(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
		}
	}
}

func TestParseProxiesNamesBadValue(t *testing.T) {
	_, err := ParseProxies([]string{"10.0.0.0/8", "10.0.0.0/99"})
	if err == nil || !strings.Contains(err.Error(), "10.0.0.0/99") {
		t.Fatalf("err = %v, want one naming the bad range", err)
	}
}

func TestEvaluate(t *testing.T) {
	deny := func(rules ...string) *Rules { return &Rules{DefaultAction: "Deny", IPRules: rules} }
	tests := []struct {
		name   string
		r      *Rules
		client string // "" = unknown
		want   Verdict
	}{
		{"no rules", &Rules{}, "1.2.3.4", Allowed},
		{"allow default ignores rules", &Rules{DefaultAction: "Allow", IPRules: []string{"10.0.0.0/8"}}, "1.2.3.4", Allowed},
		{"allow default admits unknown", &Rules{DefaultAction: "allow"}, "", Allowed},
		{"deny, no rules", deny(), "1.2.3.4", DeniedByFirewall},
		{"deny, lower case", &Rules{DefaultAction: "deny"}, "1.2.3.4", DeniedByFirewall},
		{"deny, single address matches as /32", deny("1.2.3.4"), "1.2.3.4", Allowed},
		{"deny, single address is not its neighbour", deny("1.2.3.4"), "1.2.3.5", DeniedByFirewall},
		{"deny, cidr", deny("10.0.0.0/8"), "10.200.1.1", Allowed},
		{"deny, outside cidr", deny("10.0.0.0/8"), "11.0.0.1", DeniedByFirewall},
		{"deny, second rule", deny("10.0.0.0/8", "127.0.0.1/32"), "127.0.0.1", Allowed},
		{"deny, v6 rule", deny("2001:db8::/32"), "2001:db8:1::5", Allowed},
		{"deny, v4 client vs v6 rule", deny("2001:db8::/32"), "1.2.3.4", DeniedByFirewall},
		{"deny, v4-mapped client", deny("10.0.0.0/8"), "::ffff:10.1.1.1", Allowed},
		{"deny, v4-mapped rule", deny("::ffff:10.0.0.0/104"), "10.1.1.1", Allowed},
		{"deny, unknown client", deny("0.0.0.0/0"), "", DeniedByFirewall},
		{"deny, broken stored rule matches nothing", deny("bogus", "1.2.3.4"), "1.2.3.4", Allowed},
		{"deny, bypass AzureServices admits nobody", &Rules{DefaultAction: "Deny", Bypass: "AzureServices"}, "1.2.3.4", DeniedByFirewall},
		{"public access disabled overrides allow", &Rules{PublicNetworkAccess: "Disabled", DefaultAction: "Allow"}, "1.2.3.4", DeniedPublicAccess},
		{"public access disabled overrides a matching rule", &Rules{PublicNetworkAccess: "disabled", DefaultAction: "Deny", IPRules: []string{"1.2.3.4"}}, "1.2.3.4", DeniedPublicAccess},
		{"public access enabled", &Rules{PublicNetworkAccess: "Enabled"}, "1.2.3.4", Allowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a netip.Addr
			if tc.client != "" {
				a = netip.MustParseAddr(tc.client)
			}
			if got := Evaluate(tc.r, a); got != tc.want {
				t.Fatalf("Evaluate = %v, want %v", got, tc.want)
			}
			if got := Evaluate(Compile(*tc.r), a); got != tc.want {
				t.Fatalf("Evaluate(Compile) = %v, want %v", got, tc.want)
			}
			if open := tc.r.Open(); open && tc.want != Allowed {
				t.Fatalf("Open() = true for rules that deny")
			}
		})
	}
}

func TestDenialMessage(t *testing.T) {
	caller, vault := "appid=a;oid=o;iss=https://x/t/", "kv1;location=westeurope"
	got := DenialMessage(DeniedByFirewall, &Rules{DefaultAction: "Deny"}, "10.1.2.3", caller, vault)
	want := "Client address is not authorized and caller is not a trusted service.\r\nClient address: 10.1.2.3\r\nCaller: appid=a;oid=o;iss=https://x/t/\r\nVault: kv1;location=westeurope"
	if got != want {
		t.Fatalf("message = %q\nwant      %q", got, want)
	}
	if got := DenialMessage(DeniedByFirewall, &Rules{DefaultAction: "Deny", Bypass: "None"}, "10.1.2.3", caller, vault); !strings.HasPrefix(got, "Client address is not authorized and caller was ignored because bypass is set to None\r\nClient address: 10.1.2.3") {
		t.Fatalf("bypass None message = %q", got)
	}
	if got := DenialMessage(DeniedPublicAccess, &Rules{}, "10.1.2.3", caller, vault); !strings.HasPrefix(got, "Public network access is disabled") {
		t.Fatalf("public access message = %q", got)
	}
	if InnerCode(DeniedByFirewall) != "ForbiddenByFirewall" || InnerCode(DeniedPublicAccess) != "ForbiddenByConnection" || InnerCode(Allowed) != "" {
		t.Fatal("inner codes")
	}
}

func BenchmarkEvaluate(b *testing.B) {
	rules := Rules{DefaultAction: "Deny"}
	for i := range 200 {
		rules.IPRules = append(rules.IPRules, netip.AddrFrom4([4]byte{10, byte(i), 0, 0}).String()+"/16")
	}
	client := netip.MustParseAddr("192.0.2.1") // matches none: every rule is tried
	b.Run("parsed per call", func(b *testing.B) {
		for b.Loop() {
			_ = Evaluate(&rules, client)
		}
	})
	b.Run("compiled", func(b *testing.B) {
		c := Compile(rules)
		for b.Loop() {
			_ = Evaluate(c, client)
		}
	})
}

func BenchmarkClientIP(b *testing.B) {
	p, _ := ParseProxies([]string{"10.0.0.0/8"})
	xff := []string{"6.6.6.6, 1.2.3.4, 10.2.2.2"}
	for b.Loop() {
		_ = p.ClientIP("10.1.1.1:443", xff)
	}
}
