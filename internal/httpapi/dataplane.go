package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/netacl"
	"github.com/strongroom/strongroom/internal/service"
)

var serviceVersionHeader = []string{"strongroom/1"}

// dataAudiences are the token audiences the data plane accepts for a request to host. They
// depend only on its port, so the last port's list is kept (callers must not change it).
func (s *Server) dataAudiences(host string) []string {
	_, port, err := net.SplitHostPort(host) // dataResource's own reading of the port
	if err != nil {
		port = "\x00none"
	}
	if c := s.audiences.Load(); c != nil && c.port == port {
		return c.list
	}
	// The verifier ignores one trailing "/" on either side, so each audience is listed once.
	list := []string{s.dataResource(host), "https://vault.azure.net"}
	s.audiences.Store(&portAudiences{port: port, list: list})
	return list
}

type portAudiences struct {
	port string
	list []string
}

// dataResource is the resource the challenge names: the dns suffix with the request's port, so
// the SDKs' "request host ends with .resource host" check passes with no client flag.
func (s *Server) dataResource(host string) string {
	if _, port, err := net.SplitHostPort(host); err == nil && port != "443" {
		return "https://" + s.cfg.DNSSuffix + ":" + port
	}
	return "https://" + s.cfg.DNSSuffix
}

func (s *Server) challenge(w http.ResponseWriter, host, msg string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, s.cfg.PublicURL, s.cfg.TenantID, s.dataResource(host)))
	writeError(w, &service.Error{Kind: errUnauthorized, Code: "Unauthorized", Message: msg})
}

// authenticate verifies the bearer token. It returns the caller's claims, or the reason the
// caller must be challenged (the caller answers).
func (s *Server) authenticate(ctx context.Context, r *http.Request, audiences []string) (identity.Claims, string) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return identity.Claims{}, "AKV10000: Request is missing a Bearer or PoP token."
	}
	raw = strings.TrimSpace(raw)
	memo := memoOf(ctx)
	if memo != nil {
		if claims, ok := memo.lookup(raw); ok {
			if err := s.tokens.Recheck(claims, audiences); err != nil {
				return identity.Claims{}, "AKV10032: Invalid token: " + err.Error()
			}
			return claims, ""
		}
	}
	claims, err := s.tokens.Verify(ctx, raw, audiences)
	if err != nil {
		return identity.Claims{}, "AKV10032: Invalid token: " + err.Error()
	}
	if memo != nil {
		memo.remember(raw, claims)
	}
	return claims, ""
}

// withCaller is ctx carrying the authenticated principal for the service's choke point.
func withCaller(ctx context.Context, claims *identity.Claims) context.Context {
	p := claims.Principal
	return service.WithCaller(ctx, service.Caller{ObjectID: p.ObjectID, AppID: p.AppID, TenantID: p.TenantID, Type: p.Type,
		Issuer: claims.Issuer, ClientAuthenticated: claims.ClientAuthenticated})
}

// serveData serves one data-plane request on the vault its host names. The vault is looked up
// once, here, and handed to the service; the request's audit facts are recorded here, once.
func (s *Server) serveData(w http.ResponseWriter, r *http.Request, ri *reqInfo, vaultName string) {
	d := dataReq{s: s, w: w, r: r, ctx: r.Context(), vault: s.svc.LookupVault(vaultName), ri: ri}
	// The facts an intent needs are in ri before anything is changed (RecordIntent).
	if d.vault.Found() {
		ri.resourceID, ri.auditResourceID = d.vault.ResourceID(), d.vault.AuditID()
	}
	d.serve(ri)
	ri.op, ri.objectID = d.op, d.objectID
}

func (d *dataReq) serve(ri *reqInfo) {
	h := d.w.Header()
	if d.vault.Found() {
		ri.headerValue(h, "X-Ms-Keyvault-Region", 1, d.vault.Location())
	}
	h["X-Ms-Keyvault-Service-Version"] = serviceVersionHeader
	ri.headerValue(h, "X-Ms-Keyvault-Network-Info", 2, "addr="+remoteIP(d.r)+";")
	// Answer the SDKs' body-less challenge probe before looking at the body or the route.
	claims, failure := d.s.authenticate(d.ctx, d.r, d.s.dataAudiences(d.r.Host))
	if failure != "" {
		d.op = "Authentication"
		ri.authFailure = failure // why, in the record: a bare challenge probe (AKV10000) is no attack
		d.s.challenge(d.w, d.r.Host, failure)
		return
	}
	d.claims, d.authenticated = claims, true
	ri.setClaims(claims)
	d.ctx = withCaller(d.ctx, &d.claims)
	if ri.apiVersion == "" {
		writeError(d.w, badParam("The api-version query parameter is required."))
		return
	}
	d.base = "https://" + strings.ToLower(d.r.Host)
	d.apiVersion = ri.apiVersion
	d.route()
}

func remoteIP(r *http.Request) string {
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	return ip
}

// dataReq is one data-plane request being served.
type dataReq struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context // the request's, with the caller once authenticated
	vault service.VaultRef
	ri    *reqInfo // the request's audit facts, filled as they are found
	base  string   // vault base URL as the client addressed it
	// apiVersion is the request's, for next links.
	apiVersion string
	// The audit facts serving finds: the operation, the object answered about and the caller.
	op, objectID  string
	claims        identity.Claims
	authenticated bool
}

func (d *dataReq) route() {
	path := strings.TrimPrefix(d.r.URL.Path, "/")
	seg := strings.Split(path, "/")
	m := d.r.Method
	switch {
	case seg[0] == "secrets" && len(seg) == 1 && m == http.MethodGet:
		if d.enter("SecretList") {
			d.list(false)
		}
	case seg[0] == "secrets" && len(seg) == 2 && seg[1] == "restore" && m == http.MethodPost:
		if d.enter("SecretRestore") {
			d.restore()
		}
	case seg[0] == "secrets" && len(seg) == 3 && seg[2] == "versions" && m == http.MethodGet:
		if d.enter("SecretListVersions") {
			d.listVersions(seg[1])
		}
	case seg[0] == "secrets" && len(seg) == 3 && seg[2] == "backup" && m == http.MethodPost:
		if d.enter("SecretBackup") {
			d.backup(seg[1])
		}
	case seg[0] == "secrets" && len(seg) == 3 && seg[1] != "" && seg[2] == "rotationpolicy" && (m == http.MethodGet || m == http.MethodPut):
		if m == http.MethodGet && d.enter("SecretRotationPolicyGet") {
			d.getRotationPolicy(seg[1])
		} else if m == http.MethodPut && d.enter("SecretRotationPolicySet") {
			d.setRotationPolicy(seg[1])
		}
	case seg[0] == "secrets" && len(seg) == 3 && seg[1] != "" && seg[2] == "rotate" && m == http.MethodPost:
		if d.enter("SecretRotate") {
			d.rotate(seg[1])
		}
	case seg[0] == "secrets" && len(seg) == 3 && seg[1] != "" && seg[2] == "pending" && m == http.MethodGet:
		if d.enter("SecretRotationPendingGet") {
			d.rotationPending(seg[1])
		}
	case seg[0] == "secrets" && len(seg) == 3 && seg[1] != "" && seg[2] == "rotationstatus" && m == http.MethodGet:
		if d.enter("SecretRotationStatusGet") {
			d.rotationStatus(seg[1])
		}
	case seg[0] == "secrets" && (len(seg) == 2 || len(seg) == 3) && seg[1] != "":
		version := ""
		if len(seg) == 3 {
			version = seg[2]
		}
		switch {
		case m == http.MethodPut && version == "":
			if d.enter("SecretSet") {
				d.set(seg[1])
			}
		case m == http.MethodGet:
			if d.enter("SecretGet") {
				d.get(seg[1], version)
			}
		case m == http.MethodPatch:
			if d.enter("SecretUpdate") {
				d.update(seg[1], version)
			}
		case m == http.MethodDelete && version == "":
			if d.enter("SecretDelete") {
				d.delete(seg[1])
			}
		default:
			if d.enter("") {
				d.unsupported()
			}
		}
	case seg[0] == "deletedsecrets" && len(seg) == 1 && m == http.MethodGet:
		if d.enter("SecretListDeleted") {
			d.list(true)
		}
	case seg[0] == "deletedsecrets" && len(seg) == 2 && seg[1] != "" && m == http.MethodGet:
		if d.enter("SecretGetDeleted") {
			d.getDeleted(seg[1])
		}
	case seg[0] == "deletedsecrets" && len(seg) == 2 && seg[1] != "" && m == http.MethodDelete:
		if d.enter("SecretPurge") {
			d.purge(seg[1])
		}
	case seg[0] == "deletedsecrets" && len(seg) == 3 && seg[2] == "recover" && m == http.MethodPost:
		if d.enter("SecretRecover") {
			d.recover(seg[1])
		}
	default:
		if d.enter("") {
			d.unsupported()
		}
	}
}

// enter records the operation about to run and applies the vault firewall, then the vault's
// request budget: false means the request was refused and answered. An unsupported request
// passes the firewall too, so a refused client learns nothing about the paths a vault serves;
// and only what the firewall admits counts against the budget, so refused clients cannot spend
// it for everyone. Only existing vaults have a budget (a name that names no vault costs nothing
// to answer, and must not grow the throttle's table).
func (d *dataReq) enter(op string) bool {
	d.op, d.ri.op = op, op
	if !d.firewallAllows() {
		return false
	}
	if !d.vault.Found() {
		return true
	}
	if ok, wait := d.s.throttle.allow(d.vault.Name()); !ok {
		d.w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		writeError(d.w, &service.Error{Kind: service.ErrThrottled, Code: "Throttled", Message: "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"})
		return false
	}
	return true
}

// firewallAllows applies the vault's network rules; false means refused and answered.
func (d *dataReq) firewallAllows() bool {
	rules, restricted := d.vault.NetworkRules()
	if !restricted {
		return true // the common case: nothing to resolve, nothing allocated
	}
	client := d.s.cfg.TrustedProxies.ClientIP(d.r.RemoteAddr, d.r.Header["X-Forwarded-For"])
	verdict := netacl.Evaluate(rules, client)
	if verdict == netacl.Allowed {
		return true
	}
	shown := "unknown" // a trusted proxy forwarded no address it could vouch for
	if client.IsValid() {
		shown = client.String()
	}
	p := d.claims.Principal
	caller := "appid=" + p.AppID + ";oid=" + p.ObjectID + ";iss=" + d.claims.Issuer
	vault := d.vault.Name() + ";location=" + d.vault.Location()
	// Audited as the operation it refused, with no authorization decision (guard never ran).
	writeError(d.w, &service.Error{Kind: service.ErrForbidden, Code: "Forbidden", Inner: netacl.InnerCode(verdict),
		Message: netacl.DenialMessage(verdict, rules, shown, caller, vault)})
	return false
}

func (d *dataReq) unsupported() {
	writeError(d.w, &service.Error{Kind: service.ErrBadRequest, Code: "BadParameter", Message: fmt.Sprintf("The request %s %s is not a supported operation.", d.r.Method, d.r.URL.Path)})
}

// decode reads the JSON body into v; a missing, oversized or malformed body is BadParameter.
func (d *dataReq) decode(v any) bool {
	body, err := io.ReadAll(d.r.Body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(d.w, badParam("The request body exceeds %d bytes.", mbe.Limit))
		return false
	case err != nil:
		writeError(d.w, badParam("The request body could not be read."))
		return false
	case len(body) == 0:
		writeError(d.w, badParam("The request body is required."))
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(d.w, badParam("The request body is not valid JSON for this operation: %s", jsonProblem(err)))
		return false
	}
	return true
}

// jsonProblem describes a decoding error without echoing input (it may hold a secret value).
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type (want %s)", te.Field, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	}
	return "malformed JSON"
}

func (d *dataReq) bundle(sec service.Secret, versioned bool) azkv.SecretBundle {
	b := azkv.SecretBundle{
		ContentType: sec.ContentType,
		Tags:        sec.Tags,
		Attributes: azkv.SecretAttributes{
			Enabled: &sec.Enabled, NotBefore: sec.NotBefore, Expires: sec.Expires,
			Created: sec.Created, Updated: sec.Updated, RecoveryLevel: sec.RecoveryLevel,
			RecoverableDays: &sec.RecoverableDays,
		},
	}
	if versioned {
		b.ID = azkv.SecretID(d.base, sec.Name, sec.Version)
	} else {
		b.ID = azkv.SecretID(d.base, sec.Name, "")
	}
	if sec.HasValue {
		v := sec.Value
		b.Value = &v
	}
	if sec.Deleted != nil {
		b.RecoveryID = azkv.RecoveryID(d.base, sec.Name)
		b.DeletedDate = sec.Deleted.DeletedDate
		b.ScheduledPurgeDate = sec.Deleted.ScheduledPurgeDate
	}
	return b
}

func (d *dataReq) reply(sec service.Secret, err error) {
	if err != nil {
		writeError(d.w, err)
		return
	}
	b := d.bundle(sec, true)
	d.objectID = b.ID
	writeBundle(d.w, http.StatusOK, &b)
}

func (d *dataReq) set(name string) {
	var p azkv.SetParameters
	if !d.decode(&p) {
		return
	}
	in := service.SecretInput{Value: p.Value, ContentType: p.ContentType, Tags: p.Tags}
	if a := p.Attributes; a != nil {
		in.Enabled, in.NotBefore, in.Expires = a.Enabled, a.NotBefore, a.Expires
	}
	sec, err := d.vault.SetSecret(d.ctx, name, in)
	d.reply(sec, err)
}

func (d *dataReq) get(name, version string) {
	sec, err := d.vault.GetSecret(d.ctx, name, version)
	d.reply(sec, err)
}

func (d *dataReq) update(name, version string) {
	var p azkv.UpdateParameters
	if !d.decode(&p) {
		return
	}
	up := service.SecretUpdate{ContentType: p.ContentType, Tags: p.Tags}
	if a := p.Attributes; a != nil {
		up.Enabled, up.NotBefore, up.Expires = a.Enabled, a.NotBefore, a.Expires
	}
	sec, err := d.vault.UpdateSecret(d.ctx, name, version, up)
	d.reply(sec, err)
}

func (d *dataReq) delete(name string) {
	sec, err := d.vault.DeleteSecret(d.ctx, name)
	d.reply(sec, err)
}

func (d *dataReq) getDeleted(name string) {
	sec, err := d.vault.GetDeletedSecret(d.ctx, name)
	d.reply(sec, err)
}

func (d *dataReq) recover(name string) {
	sec, err := d.vault.RecoverDeletedSecret(d.ctx, name)
	d.reply(sec, err)
}

func (d *dataReq) purge(name string) {
	if err := d.vault.PurgeDeletedSecret(d.ctx, name); err != nil {
		writeError(d.w, err)
		return
	}
	d.w.WriteHeader(http.StatusNoContent)
}

func (d *dataReq) backup(name string) {
	blob, err := d.vault.BackupSecret(d.ctx, name)
	if err != nil {
		writeError(d.w, err)
		return
	}
	d.objectID = azkv.SecretID(d.base, name, "")
	writeJSON(d.w, http.StatusOK, azkv.BackupResult{Value: &blob})
}

func (d *dataReq) restore() {
	var p azkv.BackupResult
	if !d.decode(&p) {
		return
	}
	if p.Value == nil || *p.Value == "" {
		writeError(d.w, badParam("The parameter 'value' is required."))
		return
	}
	sec, err := d.vault.RestoreSecret(d.ctx, *p.Value)
	d.reply(sec, err)
}

// paging reads maxresults and $skiptoken.
func (d *dataReq) paging() (max int, skip string, ok bool) {
	q := d.r.URL.Query()
	max = service.MaxPageSize
	if v := q.Get("maxresults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > service.MaxPageSize {
			writeError(d.w, badParam("The value of maxresults must be an integer between 1 and %d.", service.MaxPageSize))
			return 0, "", false
		}
		max = n
	}
	tok := q.Get("$skiptoken")
	if tok == "" {
		tok = q.Get("$skipToken")
	}
	if tok != "" {
		var good bool
		if skip, good = azkv.DecodeSkipToken(tok); !good {
			writeError(d.w, badParam("The $skiptoken is not valid."))
			return 0, "", false
		}
	}
	return max, skip, true
}

func (d *dataReq) page(p service.Page, err error, versioned bool) {
	if err != nil {
		writeError(d.w, err)
		return
	}
	res := azkv.ListResult{Value: make([]azkv.SecretBundle, 0, len(p.Items))}
	for _, it := range p.Items {
		res.Value = append(res.Value, d.bundle(it, versioned))
	}
	if p.Next != "" {
		q := url.Values{}
		q.Set("api-version", d.apiVersion)
		q.Set("$skiptoken", azkv.EncodeSkipToken(p.Next))
		if m := d.r.URL.Query().Get("maxresults"); m != "" {
			q.Set("maxresults", m)
		}
		next := d.base + d.r.URL.Path + "?" + q.Encode()
		res.NextLink = &next
	}
	d.objectID = d.base + d.r.URL.Path
	writeJSON(d.w, http.StatusOK, res)
}

func (d *dataReq) list(deleted bool) {
	max, skip, ok := d.paging()
	if !ok {
		return
	}
	if deleted {
		p, err := d.vault.ListDeletedSecrets(d.ctx, max, skip)
		d.page(p, err, false)
		return
	}
	p, err := d.vault.ListSecrets(d.ctx, max, skip)
	d.page(p, err, false)
}

func (d *dataReq) listVersions(name string) {
	max, skip, ok := d.paging()
	if !ok {
		return
	}
	p, err := d.vault.ListSecretVersions(d.ctx, name, max, skip)
	d.page(p, err, true)
}
