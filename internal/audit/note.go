package audit

import (
	"encoding/binary"
	"errors"
	"strconv"
	"time"
)

// A note (IntentNote) is the intent of one request in the store's write-ahead log. It carries
// the request's Event in a compact binary form rather than the record's JSON: building and
// escaping a record twice per write (once for the note, once for the outcome) was 4 % of write
// CPU, and a note is read back only after a crash (RecoverNotes) or when its log segment is
// recycled (PersistNotes, which writes the journal's JSON line then).
//
// Format: noteBinary, then uvarint fields in this order: the log's written offset when the
// intent was taken, Time and Start (Unix nanoseconds, 0 = zero time), TLSVersion, a flags byte
// (ResourceIDUpper, Caller, Authorized set, Authorized, PolicyMatch set, PolicyMatch), then the
// strings (uvarint length, bytes) of noteStrings, then the Caller's five claims when set.
// Notes written before this format are a journal line ("<offset> <JSON>"), whose first byte is
// a decimal digit; RecoverNotes reads both.
const noteBinary = 0xB1

const (
	noteUpper = 1 << iota
	noteCaller
	noteAuthSet
	noteAuth
	notePolicySet
	notePolicy
)

// noteStrings are the Event's string fields, in note order.
func noteStrings(e *Event) []*string {
	return []*string{&e.Operation, &e.APIVersion, &e.ResourceID, &e.ObjectID, &e.CallerIP, &e.URI,
		&e.ClientInfo, &e.CorrelationID, &e.RequestID, &e.Description, &e.AssignmentID}
}

func claimStrings(c *Claims) []*string {
	return []*string{&c.AppID, &c.IdentityType, &c.ObjectID, &c.TenantID, &c.UPN}
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

// appendNote appends e's note, taken at log offset offset, to b.
func appendNote(b []byte, offset int64, e *Event) []byte {
	b = append(b, noteBinary)
	b = binary.AppendUvarint(b, uint64(offset))
	b = binary.AppendUvarint(b, unixNano(e.Time))
	b = binary.AppendUvarint(b, unixNano(e.Start))
	b = binary.AppendUvarint(b, uint64(e.TLSVersion))
	var flags byte
	if e.ResourceIDUpper {
		flags |= noteUpper
	}
	if e.Caller != nil {
		flags |= noteCaller
	}
	if e.Authorized != nil {
		flags |= noteAuthSet
		if *e.Authorized {
			flags |= noteAuth
		}
	}
	if e.PolicyMatch != nil {
		flags |= notePolicySet
		if *e.PolicyMatch {
			flags |= notePolicy
		}
	}
	b = append(b, flags)
	for _, s := range noteStrings(e) {
		b = appendNoteString(b, *s)
	}
	if e.Caller != nil {
		for _, s := range claimStrings(e.Caller) {
			b = appendNoteString(b, *s)
		}
	}
	return b
}

func appendNoteString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errBadNote = errors.New("malformed audit note")

// noteReader reads a note's fields in order; the first error sticks.
type noteReader struct {
	b   []byte
	err error
}

func (r *noteReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errBadNote, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *noteReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err, r.b = errBadNote, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *noteReader) time() time.Time {
	if v := r.uvarint(); v != 0 {
		return time.Unix(0, int64(v)).UTC()
	}
	return time.Time{}
}

// parseNote reads a note written by appendNote: the offset and the Event.
func parseNote(b []byte) (int64, Event, error) {
	if len(b) < 2 || b[0] != noteBinary {
		return 0, Event{}, errBadNote
	}
	r := noteReader{b: b[1:]}
	var e Event
	offset := int64(r.uvarint())
	e.Time, e.Start = r.time(), r.time()
	e.TLSVersion = uint16(r.uvarint())
	if len(r.b) == 0 {
		return 0, Event{}, errBadNote
	}
	flags := r.b[0]
	r.b = r.b[1:]
	e.ResourceIDUpper = flags&noteUpper != 0
	if flags&noteAuthSet != 0 {
		v := flags&noteAuth != 0
		e.Authorized = &v
	}
	if flags&notePolicySet != 0 {
		v := flags&notePolicy != 0
		e.PolicyMatch = &v
	}
	for _, s := range noteStrings(&e) {
		*s = r.string()
	}
	if flags&noteCaller != 0 {
		e.Caller = &Claims{}
		for _, s := range claimStrings(e.Caller) {
			*s = r.string()
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return 0, Event{}, errBadNote
	}
	return offset, e, nil
}

// noteIntent is the intent a note stands for, as recordLost takes it.
func noteIntent(note []byte) (intentLine, bool) {
	if len(note) > 0 && note[0] != noteBinary {
		return parseIntentLine(note) // a note written before the binary format
	}
	offset, e, err := parseNote(note)
	if err != nil || e.RequestID == "" {
		return intentLine{}, false
	}
	return intentLine{offset: offset, rec: *NewRecord(e)}, true
}

// journalLine is the journal line ("<offset> <JSON>", no newline) of a binary note.
func journalLine(note []byte) ([]byte, bool) {
	in, ok := noteIntent(note)
	if !ok {
		return nil, false
	}
	line := append(strconv.AppendInt(make([]byte, 0, 768), in.offset, 10), ' ')
	return append(in.rec.appendJSON(line), '"', '}'), true
}
