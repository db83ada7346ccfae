package audit

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Event is what an entry point knows about one call it answered: the API edge, a /sys route,
// the operator socket, a cluster join. NewRecord turns every kind into a Record the same way, so
// the outcome, redaction and identity rules live in one place.
type Event struct {
	Time  time.Time // when the call was answered; zero = now
	Start time.Time // when it arrived; zero = no duration
	// Operation is the Key Vault operation name (SecretGet, VaultPut, Unseal, ClusterJoin...).
	Operation  string
	APIVersion string
	// ResourceID is the resource the call was about; it is recorded upper-cased as Key Vault does,
	// unless ResourceIDUpper says it already is.
	ResourceID      string
	ResourceIDUpper bool
	ObjectID        string // the object's id (a secret's id, a node id)
	Status          int    // the HTTP status answered
	CallerIP        string // the caller's address, or a label such as "operator-socket"
	// URI is the request's target as the caller sent it; NewRecord removes query values.
	URI           string
	ClientInfo    string // User-Agent, or who called the operator socket
	CorrelationID string // x-ms-client-request-id
	RequestID     string // x-ms-request-id; "" gives a new one
	TLSVersion    uint16 // tls.VersionTLS12 or tls.VersionTLS13; 0 = not over TLS
	Description   string // resultDescription: why it failed, or what a system call did
	// Caller is the authenticated caller's claims (nil for unauthenticated calls).
	Caller *Claims
	// Authorized and AssignmentID are the authorization decision, when role assignments made
	// one (isRbacAuthorized); PolicyMatch is set instead when a vault's access policies did
	// (isAccessPolicyMatch), with AssignmentID the matching entry's object id.
	Authorized   *bool
	PolicyMatch  *bool
	AssignmentID string
	// PolicyEvaluations is a JSON array of policy verdicts on a write (nil: none applied).
	PolicyEvaluations []byte
}

// Recorder is the one way an entry point writes its audit record. An error means the record is
// not written and the call must not be acknowledged (fail-closed). *Log is the Recorder.
type Recorder interface {
	Record(ctx context.Context, e Event) error
	Healthy() bool
}

// Record builds e's record and writes it (see Write).
func (l *Log) Record(ctx context.Context, e Event) error { return l.Write(ctx, NewRecord(e)) }

// NewRecord builds the audit record of e.
func NewRecord(e Event) *Record {
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	rec := &Record{
		Time:              FormatTime(at),
		ResourceID:        e.ResourceID,
		OperationName:     e.Operation,
		OperationVersion:  e.APIVersion,
		Category:          "AuditEvent",
		ResultType:        "Success",
		ResultSignature:   statusText(e.Status),
		ResultDescription: e.Description,
		CallerIPAddress:   e.CallerIP,
		CorrelationID:     e.CorrelationID,
		RequestID:         e.RequestID,
		Properties: Properties{
			ID:                  e.ObjectID,
			ClientInfo:          e.ClientInfo,
			HTTPStatusCode:      e.Status,
			RequestURI:          RedactURI(e.URI), // no query secrets
			IsRbacAuthorized:    e.Authorized,
			IsAccessPolicyMatch: e.PolicyMatch,
			AppliedAssignmentID: e.AssignmentID,
			TLSVersion:          tlsName(e.TLSVersion),
			PolicyEvaluations:   e.PolicyEvaluations,
		},
	}
	if !e.ResourceIDUpper {
		rec.ResourceID = strings.ToUpper(e.ResourceID)
	}
	if !e.Start.IsZero() {
		rec.DurationMs = at.Sub(e.Start).Milliseconds()
	}
	if e.Status >= 400 {
		rec.ResultType = "Failure"
	}
	if rec.RequestID == "" {
		rec.RequestID = uuid.NewString()
	}
	if e.Caller != nil {
		rec.Identity = &Identity{Claim: *e.Caller}
	}
	return rec
}

// SafeHost is the host[:port] part of a client's Host header: nothing after it can escape the
// query redaction of a URI built from it.
func SafeHost(host string) string {
	if i := strings.IndexAny(host, "/?#@ \\"); i >= 0 {
		return host[:i]
	}
	return host
}

// HTTPSURI is the record URI of a request that arrived over HTTPS for host with this target.
func HTTPSURI(host, target string) string { return "https://" + SafeHost(host) + target }

func tlsName(v uint16) string {
	switch v {
	case 0x0303:
		return "TLS1_2"
	case 0x0304:
		return "TLS1_3"
	case 0:
		return ""
	}
	return "other"
}

// statusText is net/http's StatusText for the statuses Strongroom answers, without importing
// net/http here (the audit package stays below the HTTP layer).
func statusText(code int) string {
	if s, ok := statusTexts[code]; ok {
		return s
	}
	return ""
}

var statusTexts = map[int]string{
	100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints", 200: "OK",
	201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content", 205: "Reset Content",
	206: "Partial Content", 207: "Multi-Status", 208: "Already Reported", 226: "IM Used", 300: "Multiple Choices",
	301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified", 305: "Use Proxy",
	307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
	403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
	408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
	413: "Request Entity Too Large", 414: "Request URI Too Long", 415: "Unsupported Media Type", 416: "Requested Range Not Satisfiable", 417: "Expectation Failed",
	418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Entity", 423: "Locked", 424: "Failed Dependency",
	425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
	451: "Unavailable For Legal Reasons", 500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
	504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates", 507: "Insufficient Storage", 508: "Loop Detected",
	510: "Not Extended", 511: "Network Authentication Required",
}
