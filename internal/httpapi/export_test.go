package httpapi

import "strings"

// Test-only bridges to unexported routing helpers.
var MatchRoute = func(method, path string) (op string, params []string, pathOK bool) {
	rt, p, ok := matchRoute(method, path)
	if rt == nil {
		return "", nil, ok
	}
	return rt.op, p, ok
}

func (s *Server) VaultFromHost(host string) string { return s.vaultFromHost(host) }

func NewForHostTest(suffix string) *Server {
	return &Server{cfg: Config{DNSSuffix: suffix}, hostSuffix: "." + strings.ToLower(suffix)}
}
