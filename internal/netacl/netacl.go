// Package netacl is the vault firewall, as pure functions: which address a request comes from
// (the connection's peer, or what trusted proxies forwarded in X-Forwarded-For), and whether a
// vault's network rules (publicNetworkAccess, networkAcls) admit that address. It does no I/O.
//
// Strongroom has no private endpoints, virtual networks or Azure services, so every request is
// a public one: publicNetworkAccess "Disabled" refuses all of them, virtual network rules never
// match, and bypass "AzureServices" admits nobody (it only changes the denial's wording, as in
// Key Vault).
package netacl

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// MaxForwardedHops bounds how many X-Forwarded-For entries are examined from the right. A
// chain of trusted proxies longer than this leaves the client unknown (fail closed) rather than
// letting a client make every request walk a header of many thousand entries.
const MaxForwardedHops = 32

// Proxies is a set of trusted-proxy ranges. The zero value (and nil) trusts no proxy.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies parses CIDR ranges (a bare address means only that address). The error names
// the first value that is not a range.
func ParseProxies(cidrs []string) (*Proxies, error) {
	p := &Proxies{}
	for _, c := range cidrs {
		pfx, err := ParseRule(c)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", c, err)
		}
		p.prefixes = append(p.prefixes, pfx)
	}
	return p, nil
}

// Trusts reports whether a is inside a trusted-proxy range.
func (p *Proxies) Trusts(a netip.Addr) bool {
	if p == nil || !a.IsValid() {
		return false
	}
	return containsAny(p.prefixes, a)
}

// Len is the number of trusted ranges.
func (p *Proxies) Len() int {
	if p == nil {
		return 0
	}
	return len(p.prefixes)
}

// ClientIP returns the address a request comes from. remoteAddr is the connection's peer
// ("ip:port", as net/http sets Request.RemoteAddr); xff is every X-Forwarded-For header line in
// order. The header is read only when the peer is a trusted proxy, and then from the right: each
// entry is the address the hop to its right saw, so the client is the right-most entry that is
// not itself a trusted proxy (entries further left were written by the client and prove
// nothing). When every examined entry is a trusted proxy, the left-most one is the client.
//
// The result is the zero Addr (invalid: it matches no rule) when the peer cannot be parsed, or
// a trusted proxy forwarded an entry that is not an address, or the trusted chain is longer than
// MaxForwardedHops: an address that cannot be vouched for is never guessed.
func (p *Proxies) ClientIP(remoteAddr string, xff []string) netip.Addr {
	peer := parseAddr(hostOf(remoteAddr))
	if !peer.IsValid() || !p.Trusts(peer) {
		return peer
	}
	client := peer
	hops := 0
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for {
			entry := line
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				line = ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				if line == "" {
					break // an empty header line, or the end of this one
				}
				return netip.Addr{} // "a,,b": a hop forwarded nothing it can vouch for
			}
			if hops++; hops > MaxForwardedHops {
				return netip.Addr{}
			}
			a := parseAddr(stripPort(entry))
			if !a.IsValid() {
				return netip.Addr{}
			}
			client = a
			if !p.Trusts(a) {
				return a
			}
			if line == "" {
				break
			}
		}
	}
	return client
}

// hostOf is the host of "host:port", or s itself when it has no port.
func hostOf(s string) string {
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			return s[1:i]
		}
		return s
	}
	if strings.Count(s, ":") == 1 {
		return s[:strings.IndexByte(s, ':')]
	}
	return s
}

// stripPort removes a port some proxies append ("1.2.3.4:5678", "[::1]:5678"); a bare IPv6
// address is left as it is.
func stripPort(s string) string { return hostOf(s) }

// parseAddr parses an address, dropping an IPv6 zone and unmapping IPv4-mapped IPv6
// ("::ffff:10.0.0.1" is 10.0.0.1: a dual-stack listener reports IPv4 clients that way).
func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// ParseRule parses an ip rule value or a trusted-proxy range: an IPv4 or IPv6 address (which
// means that one address: /32 or /128) or a CIDR range. Host bits below the prefix are ignored
// ("10.1.2.3/8" is 10.0.0.0/8). An IPv4-mapped IPv6 range of at least /96 is its IPv4 range.
func ParseRule(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return netip.Prefix{}, errors.New("empty address")
	}
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR range", v)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR range", v)
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

func containsAny(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Rules are a vault's network settings as stored (ARM's property values).
type Rules struct {
	PublicNetworkAccess string   // "Enabled" (or empty) / "Disabled"
	DefaultAction       string   // "Allow" (or empty) / "Deny"
	Bypass              string   // "AzureServices" (or empty) / "None"
	IPRules             []string // addresses and CIDR ranges (ParseRule)

	compiled bool
	prefixes []netip.Prefix // IPRules parsed, when compiled
}

// Compile returns r with its ip rules parsed once, so that Evaluate parses nothing per request
// (a vault's rules are compiled when its record enters the cache). Values that do not parse
// are left out: they match nothing either way. The result must not be modified.
func Compile(r Rules) *Rules {
	c := r
	c.compiled, c.prefixes = true, nil
	for _, v := range r.IPRules {
		if p, err := ParseRule(v); err == nil {
			c.prefixes = append(c.prefixes, p)
		}
	}
	return &c
}

// Open reports whether the rules admit every address, so a caller can skip resolving one.
func (r *Rules) Open() bool {
	return !strings.EqualFold(r.PublicNetworkAccess, "Disabled") && !strings.EqualFold(r.DefaultAction, "Deny")
}

// Verdict is what the firewall decided.
type Verdict int

// The verdicts.
const (
	Allowed Verdict = iota
	// DeniedByFirewall: defaultAction Deny and no ip rule matches (Key Vault's ForbiddenByFirewall).
	DeniedByFirewall
	// DeniedPublicAccess: publicNetworkAccess Disabled (Key Vault's ForbiddenByConnection).
	DeniedPublicAccess
)

// Evaluate decides whether client may reach a vault with rules r. publicNetworkAccess Disabled
// overrides everything. Otherwise defaultAction Allow admits all; Deny admits only an address
// inside an ip rule. An invalid client address matches no rule. A stored rule that does not
// parse (none should: values are validated on write) matches nothing.
func Evaluate(r *Rules, client netip.Addr) Verdict {
	if strings.EqualFold(r.PublicNetworkAccess, "Disabled") {
		return DeniedPublicAccess
	}
	if !strings.EqualFold(r.DefaultAction, "Deny") {
		return Allowed
	}
	if client.IsValid() && r.compiled {
		if containsAny(r.prefixes, client.WithZone("").Unmap()) {
			return Allowed
		}
	} else if client.IsValid() {
		client = client.WithZone("").Unmap()
		for _, v := range r.IPRules {
			if p, err := ParseRule(v); err == nil && p.Contains(client) {
				return Allowed
			}
		}
	}
	// No virtual network or trusted Azure service exists here, so bypass admits nobody.
	return DeniedByFirewall
}

// DenialMessage is Key Vault's message for a denial: client is the client address as shown,
// caller "appid=<appid>;oid=<oid>;iss=<issuer>", vault "<name>;location=<location>".
func DenialMessage(v Verdict, r *Rules, client, caller, vault string) string {
	switch v {
	case DeniedPublicAccess:
		return "Public network access is disabled and request is not from a trusted service nor via an approved private link.\r\nCaller: " + caller + "\r\nVault: " + vault
	case DeniedByFirewall:
		head := "Client address is not authorized and caller is not a trusted service."
		if strings.EqualFold(r.Bypass, "None") {
			head = "Client address is not authorized and caller was ignored because bypass is set to None"
		}
		return head + "\r\nClient address: " + client + "\r\nCaller: " + caller + "\r\nVault: " + vault
	}
	return ""
}

// InnerCode is Key Vault's inner error code for a denial.
func InnerCode(v Verdict) string {
	switch v {
	case DeniedPublicAccess:
		return "ForbiddenByConnection"
	case DeniedByFirewall:
		return "ForbiddenByFirewall"
	}
	return ""
}
