package httpapi

import (
	"context"
	"crypto/subtle"
	"net"
	"sync/atomic"
	"unsafe"

	"github.com/strongroom/strongroom/internal/identity"
)

// A connection's token memo: clients keep one connection and send the same bearer token on
// every request until it nears expiry, so the last token a connection presented, with the
// claims Verify gave it, answers the next request without hashing the ~1 KiB token for the
// verification cache (2 % of read CPU). A memo hit still runs every per-use check
// (identity.Service.Recheck: window, signing key, audience, principal and credential state),
// and the token is compared in full and in constant time. The memo never outlives the
// connection, and HTTP/2 streams of one connection share it through an atomic pointer.
type tokenMemo struct {
	last atomic.Pointer[memoEntry]
}

type memoEntry struct {
	raw    string
	claims identity.Claims
}

type tokenMemoKey struct{}

// ConnContext gives each public connection its token memo; set it as the http.Server's
// ConnContext.
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, tokenMemoKey{}, &tokenMemo{})
}

func memoOf(ctx context.Context) *tokenMemo {
	m, _ := ctx.Value(tokenMemoKey{}).(*tokenMemo)
	return m
}

// lookup returns the remembered claims when raw is the token the connection sent last.
func (m *tokenMemo) lookup(raw string) (identity.Claims, bool) {
	e := m.last.Load()
	if e == nil || len(e.raw) != len(raw) || subtle.ConstantTimeCompare(bytesOf(e.raw), bytesOf(raw)) != 1 {
		return identity.Claims{}, false
	}
	return e.claims, true
}

func (m *tokenMemo) remember(raw string, c identity.Claims) {
	m.last.Store(&memoEntry{raw: raw, claims: c})
}

// bytesOf views s's bytes without a copy; ConstantTimeCompare only reads them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
