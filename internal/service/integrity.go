package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/store"
)

// Rollback detection for secret records. A writer of the store file cannot forge a sealed
// record, but can put back an older copy of one at its own key (the AAD binds the key, not the
// time). Each read therefore checks the records it reads against each other:
//
//   - Every write of a secret's head also writes its tip: a plaintext record of 16 random bytes
//     at versionPrefix+"}" (it sorts after the versions and, co-located, right before the head),
//     and the head holds the same bytes (Tip). An older copy of the head names an older tip;
//     an older copy of the tip is not the one the head names. Every head read (GET of the latest
//     version included) reads the tip too: one more point read, no decryption.
//   - The head carries a counter, Seq, raised by every head write; every version record written
//     in the same batch carries it (seq), and a version keeps the Seq of the batch that created
//     it (born). Every write of a version's record writes the head too, so a version whose seq
//     is above the head's proves the head older than it.
//   - The head knows the exact seq of the records that changed since creation: the latest
//     version's through its copy (Item.seq), every other updated version's through Pins. A
//     version that is neither latest nor pinned must be its creation copy (seq == born), or
//     have had its pin dropped (seq <= PinFloor: maxPins bounds the head).
//   - Origin is Seq when the name's current incarnation was created (from the clock, so it is
//     above an earlier, purged incarnation's counters): a version born before it is a record of
//     a purged secret put back.
//
// What this cannot see is a consistent older state: the head and the tip put back together
// (and, for reads that open versions, every record written after them deleted or rolled back
// too). docs/security-model.md states the limits.

const (
	tipLen    = 16
	tipSuffix = "}" // after every hex version id, before "~" (the co-located head)
	// maxPins bounds the pins a head holds (~19 bytes each); the oldest is dropped beyond it.
	maxPins = 256
	pinLen  = 16 // binary version id
)

// ErrIntegrity is the kind of a record that failed a rollback check (HTTP 500).
var ErrIntegrity = errors.New("stored record failed an integrity check")

func tipKey(v *Vault, name string) string { return tipKeyOf(v, headKey(v, name)) }

// tipKeyOf derives the tip's key from the head's, in one allocation (it is on every read).
func tipKeyOf(v *Vault, hk string) string {
	if v.Layout == LayoutColocated { // .../n/NAME!~ -> .../n/NAME!}
		return hk[:len(hk)-len(headSuffix)+len(versionSep)] + tipSuffix
	}
	p := headsPrefix(v) // v/<id>/n/NAME -> v/<id>/x/NAME/}
	return p[:len(p)-len("n/")] + "x/" + hk[len(p):] + "/" + tipSuffix
}

// advance prepares h for its next write: a raised counter and a new tip. A head not yet
// written (or written before counters) starts a counter; a new incarnation starts at the clock.
func (h *secretHead) advance(now time.Time, found bool) {
	if !found {
		h.Seq = uint64(now.UnixMicro())
		h.Origin = h.Seq
	} else {
		h.Seq++
	}
	copy(h.Tip[:], newTip())
}

func newTip() []byte {
	b := make([]byte, tipLen)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the kernel RNG does not fail on Linux
	}
	return b
}

// tipOps writes h's tip.
func (h *secretHead) tipOp(v *Vault, name string) store.Op {
	return store.Put(tipKey(v, name), bytes.Clone(h.Tip[:]))
}

// tipMatches reports whether the tip record read with h is the one written with it. A head
// without a counter predates tips, so a tip beside it is newer than it.
func (h *secretHead) tipMatches(tip []byte, found bool) bool {
	if h.Seq == 0 {
		return !found
	}
	return found && bytes.Equal(tip, h.Tip[:])
}

// versionProblem says why sv cannot be the current record of its version given head h, or "".
func (h *secretHead) versionProblem(sv *SecretVersion) string {
	switch {
	case sv.seq > h.Seq:
		return "a version record is newer than the head"
	case sv.born < h.Origin:
		return "a version record belongs to an earlier, purged secret of the same name"
	case strings.EqualFold(sv.Version, h.Latest):
		if sv.seq != h.Item.seq {
			return "the latest version's record is not the one the head names"
		}
	default:
		if seq, ok := h.pin(sv.Version); ok {
			if sv.seq != seq {
				return "a version record is older than the head names"
			}
		} else if sv.seq != sv.born && sv.seq > h.PinFloor {
			return "a version record is older than the head names"
		}
	}
	return ""
}

// pin returns the seq the head pins version to.
func (h *secretHead) pin(version string) (uint64, bool) {
	var id [pinLen]byte
	if len(version) != 2*pinLen || h.Pins == "" {
		return 0, false
	}
	if _, err := hex.Decode(id[:], []byte(version)); err != nil {
		return 0, false
	}
	p := h.Pins
	for len(p) > pinLen {
		seq, n := uvarintString(p[pinLen:])
		if n <= 0 {
			return 0, false
		}
		if p[:pinLen] == string(id[:]) {
			return seq, true
		}
		p = p[pinLen+n:]
	}
	return 0, false
}

// setPin pins version to seq, dropping the lowest pin (and raising PinFloor to it) when the
// head holds maxPins.
func (h *secretHead) setPin(version string, seq uint64) error {
	var id [pinLen]byte
	if len(version) != 2*pinLen {
		return fmt.Errorf("pinning version %q: not a version id", version)
	}
	if _, err := hex.Decode(id[:], []byte(version)); err != nil {
		return fmt.Errorf("pinning version %q: not a version id", version)
	}
	type entry struct {
		id  string
		seq uint64
	}
	var kept []entry
	p := h.Pins
	for len(p) > pinLen {
		s, n := uvarintString(p[pinLen:])
		if n <= 0 {
			return errors.New("pinning: malformed pins")
		}
		if p[:pinLen] != string(id[:]) {
			kept = append(kept, entry{p[:pinLen], s})
		}
		p = p[pinLen+n:]
	}
	kept = append(kept, entry{string(id[:]), seq})
	if len(kept) > maxPins {
		low := 0
		for i, e := range kept {
			if e.seq < kept[low].seq {
				low = i
			}
		}
		h.PinFloor = max(h.PinFloor, kept[low].seq)
		kept = append(kept[:low], kept[low+1:]...)
	}
	var b []byte
	for _, e := range kept {
		b = binary.AppendUvarint(append(b, e.id...), e.seq)
	}
	h.Pins = string(b)
	return nil
}

// uvarintString is binary.Uvarint on a string, without copying it.
func uvarintString(s string) (uint64, int) {
	var x uint64
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -1
			}
			return x | uint64(b)<<(7*i), i + 1
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return 0, 0
}

// rolledBack is called when records read for a secret disagree. If the head changed since it
// was read (hraw), a write landed between the reads and the caller retries (errRetry);
// otherwise a record was put back, and the caller gets ErrIntegrity (logged, never the value).
func (s *Service) rolledBack(ctx context.Context, v *Vault, name string, hraw []byte, reason string) error {
	now, err := s.st.Get(ctx, headKey(v, name))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("re-reading %s: %w", headKey(v, name), err)
	}
	if !bytes.Equal(now, hraw) {
		return errRetry
	}
	return s.integrityError(ctx, "secret", v.Name, name, reason)
}

// integrityError logs a failed rollback check and returns the error the client sees.
func (s *Service) integrityError(ctx context.Context, kind, vault, name, reason string) error {
	log := s.opts.Log
	if log == nil {
		log = slog.Default()
	}
	log.ErrorContext(ctx, "stored record failed an integrity check: refusing to serve it",
		"kind", kind, "vault", vault, "name", name, "reason", reason)
	what := "secret " + name
	if kind == "vault" {
		what = "vault " + name
	}
	return newErr(ErrIntegrity, "InternalServerError", "", "A stored record of %s failed an integrity check (%s: the store holds an older copy of it); the server refuses to serve it. See the server log.", what, reason)
}

// head reads name's head and checks it against its tip (see above).
func (s *Service) head(ctx context.Context, v *Vault, name string) (secretHead, []byte, bool, error) {
	hk := headKey(v, name)
	for range 8 {
		var h secretHead
		raw, found, err := s.get(ctx, vaultKeyID(v), hk, &h)
		if err != nil || !found {
			return h, raw, found, err
		}
		tip, tipFound, err := s.tip(ctx, tipKeyOf(v, hk))
		if err != nil {
			return h, nil, false, err
		}
		if h.tipMatches(tip, tipFound) {
			return h, raw, true, nil
		}
		if err := s.rolledBack(ctx, v, name, raw, "the head does not match its tip"); !errors.Is(err, errRetry) {
			return h, nil, false, err
		}
	}
	return secretHead{}, nil, false, errRetry
}

func (s *Service) tip(ctx context.Context, key string) ([]byte, bool, error) {
	tip, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", key, err)
	}
	return tip, true, nil
}

// scannedHead checks a head read by a scan (raw) against its tip, the one the scan read with
// it or, where it read none, the stored one; when they disagree (a write landed between the
// reads, or the scan's tip is not the head's), it returns the head read again.
func (s *Service) scannedHead(ctx context.Context, v *Vault, name string, h secretHead, raw []byte, st scannedTip) (secretHead, []byte, bool, error) {
	tip, found := st.value, st.found
	if !st.read {
		var err error
		if tip, found, err = s.tip(ctx, tipKey(v, name)); err != nil {
			return h, nil, false, err
		}
	}
	if h.tipMatches(tip, found) {
		return h, raw, true, nil
	}
	return s.head(ctx, v, name)
}
