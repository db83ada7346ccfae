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

// ARMRoutes lists every management-plane route as "METHOD pattern".
func ARMRoutes() []string {
	out := make([]string, 0, len(armRoutes))
	for _, rt := range armRoutes {
		out = append(out, rt.method+" "+strings.Join(rt.pattern, "/"))
	}
	return out
}

// ARMRouteOf names the route a request matches ("METHOD pattern"), or "" for none.
func ARMRouteOf(method, path string) string {
	rt, _, _ := matchRoute(method, path)
	if rt == nil {
		return ""
	}
	return rt.method + " " + strings.Join(rt.pattern, "/")
}
