package azkv

import (
	"slices"
	"strconv"

	"github.com/strongroom/strongroom/internal/jsonenc"
)

// AppendJSON appends b exactly as Marshal encodes it (same field order, omitempty rules,
// escaping and sorted tag names), without reflection: it is every secret response's body.
func (b *SecretBundle) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	if b.Value != nil {
		dst = append(jsonenc.AppendString(append(dst, `"value":`...), *b.Value, false), ',')
	}
	dst = jsonenc.AppendString(append(dst, `"id":`...), b.ID, false)
	if b.ContentType != "" {
		dst = jsonenc.AppendString(append(dst, `,"contentType":`...), b.ContentType, false)
	}
	a := &b.Attributes
	dst = append(dst, `,"attributes":{`...)
	n := len(dst)
	field := func(name string) {
		if len(dst) > n {
			dst = append(dst, ',')
		}
		dst = append(append(append(dst, '"'), name...), `":`...)
	}
	if a.Enabled != nil {
		field("enabled")
		dst = strconv.AppendBool(dst, *a.Enabled)
	}
	if a.NotBefore != nil {
		field("nbf")
		dst = strconv.AppendInt(dst, *a.NotBefore, 10)
	}
	if a.Expires != nil {
		field("exp")
		dst = strconv.AppendInt(dst, *a.Expires, 10)
	}
	if a.Created != 0 {
		field("created")
		dst = strconv.AppendInt(dst, a.Created, 10)
	}
	if a.Updated != 0 {
		field("updated")
		dst = strconv.AppendInt(dst, a.Updated, 10)
	}
	if a.RecoveryLevel != "" {
		field("recoveryLevel")
		dst = jsonenc.AppendString(dst, a.RecoveryLevel, false)
	}
	if a.RecoverableDays != nil {
		field("recoverableDays")
		dst = strconv.AppendInt(dst, int64(*a.RecoverableDays), 10)
	}
	dst = append(dst, '}')
	if len(b.Tags) > 0 {
		dst = append(dst, `,"tags":{`...)
		var keys [16]string // at most 15 tags on a secret; larger maps just allocate
		names := keys[:0]
		for k := range b.Tags {
			names = append(names, k)
		}
		slices.Sort(names)
		for i, k := range names {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(jsonenc.AppendString(dst, k, false), ':')
			dst = jsonenc.AppendString(dst, b.Tags[k], false)
		}
		dst = append(dst, '}')
	}
	if b.Managed {
		dst = append(dst, `,"managed":true`...)
	}
	if b.RecoveryID != "" {
		dst = jsonenc.AppendString(append(dst, `,"recoveryId":`...), b.RecoveryID, false)
	}
	if b.ScheduledPurgeDate != 0 {
		dst = strconv.AppendInt(append(dst, `,"scheduledPurgeDate":`...), b.ScheduledPurgeDate, 10)
	}
	if b.DeletedDate != 0 {
		dst = strconv.AppendInt(append(dst, `,"deletedDate":`...), b.DeletedDate, 10)
	}
	return append(dst, '}')
}
