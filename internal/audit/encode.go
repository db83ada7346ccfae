package audit

import (
	"strconv"

	"github.com/strongroom/strongroom/internal/jsonenc"
)

// appendJSON appends rec as encoding/json would marshal it (same field order, omitempty rules
// and HTML-safe escaping), except that it stops after `"prevHash":"`: the writer appends the
// previous line's hash and the closing `"}` when it chains the line. It is the hot path of
// every request, so it allocates nothing beyond growing dst.
func (r *Record) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"time":`...)
	dst = appendString(dst, r.Time)
	if r.ResourceID != "" {
		dst = appendString(append(dst, `,"resourceId":`...), r.ResourceID)
	}
	dst = appendString(append(dst, `,"operationName":`...), r.OperationName)
	if r.OperationVersion != "" {
		dst = appendString(append(dst, `,"operationVersion":`...), r.OperationVersion)
	}
	dst = appendString(append(dst, `,"category":`...), r.Category)
	dst = appendString(append(dst, `,"resultType":`...), r.ResultType)
	dst = appendString(append(dst, `,"resultSignature":`...), r.ResultSignature)
	if r.ResultDescription != "" {
		dst = appendString(append(dst, `,"resultDescription":`...), r.ResultDescription)
	}
	dst = strconv.AppendInt(append(dst, `,"durationMs":`...), r.DurationMs, 10)
	if r.CallerIPAddress != "" {
		dst = appendString(append(dst, `,"callerIpAddress":`...), r.CallerIPAddress)
	}
	if r.CorrelationID != "" {
		dst = appendString(append(dst, `,"correlationId":`...), r.CorrelationID)
	}
	dst = appendString(append(dst, `,"requestId":`...), r.RequestID)
	if id := r.Identity; id != nil {
		c := &id.Claim
		dst = appendString(append(dst, `,"identity":{"claim":{"appid":`...), c.AppID)
		dst = appendString(append(dst, `,"idtyp":`...), c.IdentityType)
		dst = appendString(append(dst, `,"oid":`...), c.ObjectID)
		dst = appendString(append(dst, `,"tid":`...), c.TenantID)
		if c.UPN != "" {
			dst = appendString(append(dst, `,"upn":`...), c.UPN)
		}
		dst = append(dst, "}}"...)
	}
	p := &r.Properties
	dst = append(dst, `,"properties":{`...)
	if p.ID != "" {
		dst = append(appendString(append(dst, `"id":`...), p.ID), ',')
	}
	if p.ClientInfo != "" {
		dst = append(appendString(append(dst, `"clientInfo":`...), p.ClientInfo), ',')
	}
	dst = strconv.AppendInt(append(dst, `"httpStatusCode":`...), int64(p.HTTPStatusCode), 10)
	dst = appendString(append(dst, `,"requestUri":`...), p.RequestURI)
	if p.IsRbacAuthorized != nil {
		dst = strconv.AppendBool(append(dst, `,"isRbacAuthorized":`...), *p.IsRbacAuthorized)
	}
	if p.IsAccessPolicyMatch != nil {
		dst = strconv.AppendBool(append(dst, `,"isAccessPolicyMatch":`...), *p.IsAccessPolicyMatch)
	}
	if p.AppliedAssignmentID != "" {
		dst = appendString(append(dst, `,"appliedAssignmentId":`...), p.AppliedAssignmentID)
	}
	if p.TLSVersion != "" {
		dst = appendString(append(dst, `,"tlsVersion":`...), p.TLSVersion)
	}
	if len(p.PolicyEvaluations) > 0 { // compact JSON from json.Marshal, as encoding/json writes it
		dst = append(append(dst, `,"policyEvaluations":`...), p.PolicyEvaluations...)
	}
	dst = append(dst, '}')
	if c := r.Checkpoint; c != nil {
		dst = c.appendJSON(append(dst, `,"auditCheckpoint":`...))
	}
	return append(dst, `,"prevHash":"`...)
}

// appendJSON appends c as encoding/json marshals it.
func (c *ChainCheckpoint) appendJSON(dst []byte) []byte {
	dst = strconv.AppendInt(append(dst, `{"v":`...), int64(c.Version), 10)
	dst = strconv.AppendInt(append(dst, `,"seq":`...), c.Seq, 10)
	dst = strconv.AppendInt(append(dst, `,"records":`...), c.Records, 10)
	dst = appendString(append(dst, `,"hash":`...), c.Hash)
	if c.Predecessor != "" {
		dst = appendString(append(dst, `,"predecessor":`...), c.Predecessor)
	}
	if len(c.Removed) > 0 {
		dst = append(dst, `,"removed":[`...)
		for i, s := range c.Removed {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		dst = append(dst, ']')
	}
	if c.KeyID != "" {
		dst = appendString(append(dst, `,"keyId":`...), c.KeyID)
	}
	if c.Sig != "" {
		dst = appendString(append(dst, `,"sig":`...), c.Sig)
	}
	return append(dst, '}')
}

func appendString(dst []byte, s string) []byte { return jsonenc.AppendString(dst, s, true) }
