package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Tamper evidence (design section 4, standards 6.5).
//
// Every event belongs to a chain, ChainOf(e) = Route + "/" + Partition, so
// writers of different routes and partitions never wait for each other. Within
// its chain an event has a position Seq (from 1) and
//
//	Hash = SHA-256(PrevHash || Canonical(e))
//
// where PrevHash is the Hash of the event at Seq-1, or 32 zero bytes for
// Seq 1. The store also keeps the chain's head (last Seq and Hash) so that
// deleting the last rows is detected too. Editing, deleting or reordering rows
// breaks the chain; Verify finds where.
//
// A chain is only as strong as its anchor: someone able to rewrite a whole
// chain and its head can recompute every hash. Anchoring heads elsewhere
// (signing, WORM storage) is out of this package's scope.

// HashSize is the length of PrevHash and Hash.
const HashSize = sha256.Size

// canonicalVersion starts every canonical form, so a future change of the
// encoding can never produce the bytes of an older one.
const canonicalVersion = "fhir-bridge/audit-event/v1"

// canonicalVersion2 covers the typed Stage, DestKind, Reason, ReceivedAt and
// Attempts too. Events with all of them empty (every event written before
// they existed) keep the v1 form, so old chains verify unchanged.
const canonicalVersion2 = "fhir-bridge/audit-event/v2"

// ChainOf names the chain e belongs to: its route and source partition.
func ChainOf(e Event) string {
	return text(e.Route) + "/" + strconv.Itoa(e.Partition)
}

// normalize returns e as the stores keep it: text fields made storable (see
// text) and the time in UTC truncated to microseconds, PostgreSQL's precision.
// An event read back from a store is already normal, so it re-hashes the same.
func normalize(e Event) Event {
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Action, e.Outcome, e.Actor = text(e.Action), text(e.Outcome), text(e.Actor)
	e.Route, e.Topic = text(e.Route), text(e.Topic)
	e.Device, e.Patient, e.Resource = text(e.Device), text(e.Patient), text(e.Resource)
	e.Location, e.Detail, e.CorrelationID = text(e.Location), text(e.Detail), text(e.CorrelationID)
	e.Stage, e.DestKind, e.Reason = text(e.Stage), text(e.DestKind), text(e.Reason)
	if !e.ReceivedAt.IsZero() {
		e.ReceivedAt = e.ReceivedAt.UTC().Truncate(time.Microsecond)
	}
	return e
}

// Canonical returns the byte form of e that its Hash covers. The encoding is
// fixed; changing it invalidates every stored chain.
//
// It is the concatenation of the following items, in this order. A string
// item is its UTF-8 bytes preceded by their length as a 4-byte big-endian
// unsigned integer; an integer item is 8 bytes, big-endian two's complement.
//
//  1. string "fhir-bridge/audit-event/v1" (version tag)
//  2. string chain, ChainOf(e)
//  3. integer Seq
//  4. string Time in UTC, truncated to microseconds, formatted
//     "2006-01-02T15:04:05.000000Z" (RFC 3339 with exactly six fraction digits)
//  5. strings Action, Outcome, Actor, Route, Topic
//  6. integers Partition, Offset
//  7. strings Device, Patient, Resource
//  8. integer Status
//  9. strings Location, Detail, CorrelationID
//
// When any of Stage, DestKind, Reason, ReceivedAt, Attempts is set, the
// version tag is "fhir-bridge/audit-event/v2" and these follow item 9: the
// strings Stage, DestKind, Reason, the string ReceivedAt (formatted like
// Time, or empty when zero) and the integer Attempts; otherwise the form is
// exactly v1.
//
// Text fields are taken as stored: invalid UTF-8 and NUL bytes replaced by
// U+FFFD. ID, PrevHash and Hash are not part of it (PrevHash enters the hash
// as its prefix; ID is the store's row number and not covered).
func Canonical(e Event) []byte {
	e = normalize(e)
	b := make([]byte, 0, 256+len(e.Detail))
	str := func(s string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	num := func(n int64) { b = binary.BigEndian.AppendUint64(b, uint64(n)) }
	v2 := e.Stage != "" || e.DestKind != "" || e.Reason != "" || !e.ReceivedAt.IsZero() || e.Attempts != 0
	if v2 {
		str(canonicalVersion2)
	} else {
		str(canonicalVersion)
	}
	str(ChainOf(e))
	num(e.Seq)
	str(e.Time.Format("2006-01-02T15:04:05.000000Z"))
	str(e.Action)
	str(e.Outcome)
	str(e.Actor)
	str(e.Route)
	str(e.Topic)
	num(int64(e.Partition))
	num(e.Offset)
	str(e.Device)
	str(e.Patient)
	str(e.Resource)
	num(int64(e.Status))
	str(e.Location)
	str(e.Detail)
	str(e.CorrelationID)
	if v2 {
		str(e.Stage)
		str(e.DestKind)
		str(e.Reason)
		if e.ReceivedAt.IsZero() {
			str("")
		} else {
			str(e.ReceivedAt.Format("2006-01-02T15:04:05.000000Z"))
		}
		num(int64(e.Attempts))
	}
	return b
}

// chainHash returns SHA-256(prev || Canonical(e)).
func chainHash(prev []byte, e Event) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(Canonical(e))
	return h.Sum(nil)
}

// genesis is the PrevHash of the first event of every chain.
var genesis = make([]byte, HashSize)

// chainHead is the last position and hash of a chain.
type chainHead struct {
	seq  int64
	hash []byte
}

// link sets Seq, PrevHash and Hash of e (already normalized) as the event
// following head, and advances head.
func link(head *chainHead, e *Event) {
	e.Seq = head.seq + 1
	e.PrevHash = head.hash
	e.Hash = chainHash(e.PrevHash, *e)
	head.seq, head.hash = e.Seq, e.Hash
}

// Verifier checks the hash chains of a store.
type Verifier interface {
	// Verify walks every chain in Seq order and recomputes its hashes. The
	// error reports a failure to read the store; broken chains are in the
	// Report.
	Verify(ctx context.Context) (Report, error)
}

var (
	_ Verifier = (*Postgres)(nil)
	_ Verifier = (*Memory)(nil)
)

// Report is the result of Verify.
type Report struct {
	Chains int // chains seen, in rows or heads
	Rows   int // chained rows checked
	// Unchained counts rows written before hash chaining existed (no chain);
	// they are not covered.
	Unchained int
	Broken    []Break
}

// OK reports whether every chain verified.
func (r Report) OK() bool { return len(r.Broken) == 0 }

// Reasons a chain breaks.
const (
	ReasonHashMismatch = "hash mismatch"
	ReasonPrevHash     = "prev_hash does not match previous row"
	ReasonHead         = "head seq/hash disagree with last row"
	// A gap reads "gap: seq N missing" or "gap: seq N-M missing".
	reasonGapPrefix = "gap: "
)

// Break is one place where a chain does not verify.
type Break struct {
	Chain  string
	RowID  int64 // the row at fault or, for a gap, the row after it; 0 when there is none
	Seq    int64 // that row's Seq; for a head problem the head's Seq
	Reason string
	// Expected and Found are hex: the recomputed and the stored hash (hash
	// mismatch), the previous row's hash and the stored prev_hash (prev_hash),
	// the head's hash and the last row's hash (head). Empty for gaps.
	Expected, Found string
}

func (b Break) String() string {
	s := fmt.Sprintf("chain %q row %d seq %d: %s", b.Chain, b.RowID, b.Seq, b.Reason)
	if b.Expected != "" || b.Found != "" {
		s += fmt.Sprintf(" (expected %s, found %s)", b.Expected, b.Found)
	}
	return s
}

// chainWalker verifies rows fed to it in (chain, seq) order.
type chainWalker struct {
	heads map[string]chainHead // from the head table; entries are deleted as chains finish
	rep   Report

	chain   string
	started bool
	lastID  int64
	seq     int64
	prev    []byte
}

func newChainWalker(heads map[string]chainHead) *chainWalker {
	return &chainWalker{heads: heads}
}

func (w *chainWalker) add(b Break) { w.rep.Broken = append(w.rep.Broken, b) }

// row checks one stored row (its chain is ChainOf(e)).
func (w *chainWalker) row(id int64, chain string, e Event) {
	if !w.started || chain != w.chain {
		w.endChain()
		w.started, w.chain, w.seq, w.prev, w.lastID = true, chain, 0, genesis, 0
		w.rep.Chains++
	}
	w.rep.Rows++
	gap := false
	if want := w.seq + 1; e.Seq != want {
		gap = true
		r := fmt.Sprintf("gap: seq %d missing", want)
		if e.Seq > want+1 {
			r = fmt.Sprintf("gap: seq %d-%d missing", want, e.Seq-1)
		}
		if e.Seq < want { // cannot happen with UNIQUE(chain, seq); kept for safety
			r = fmt.Sprintf("gap: seq %d out of order after %d", e.Seq, w.seq)
		}
		w.add(Break{Chain: chain, RowID: id, Seq: e.Seq, Reason: r})
	}
	// After a gap the previous row is missing, so its hash is unknown.
	if !gap && !bytes.Equal(e.PrevHash, w.prev) {
		w.add(Break{Chain: chain, RowID: id, Seq: e.Seq, Reason: ReasonPrevHash,
			Expected: hex.EncodeToString(w.prev), Found: hex.EncodeToString(e.PrevHash)})
	}
	// Recomputed from the stored prev_hash, so one edited row is reported
	// once rather than breaking every later row.
	if h := chainHash(e.PrevHash, e); !bytes.Equal(h, e.Hash) {
		w.add(Break{Chain: chain, RowID: id, Seq: e.Seq, Reason: ReasonHashMismatch,
			Expected: hex.EncodeToString(h), Found: hex.EncodeToString(e.Hash)})
	}
	w.seq, w.prev, w.lastID = e.Seq, e.Hash, id
}

// endChain compares the finished chain with its head.
func (w *chainWalker) endChain() {
	if !w.started {
		return
	}
	h, ok := w.heads[w.chain]
	delete(w.heads, w.chain)
	if !ok || h.seq != w.seq || !bytes.Equal(h.hash, w.prev) {
		w.add(Break{Chain: w.chain, RowID: w.lastID, Seq: h.seq, Reason: ReasonHead,
			Expected: hex.EncodeToString(h.hash), Found: hex.EncodeToString(w.prev)})
	}
}

// finish ends the last chain and reports heads whose chain has no rows.
func (w *chainWalker) finish() Report {
	w.endChain()
	w.started = false
	var orphans []string
	for c, h := range w.heads {
		if h.seq != 0 {
			orphans = append(orphans, c)
		}
	}
	slices.Sort(orphans)
	for _, c := range orphans {
		h := w.heads[c]
		w.rep.Chains++
		w.add(Break{Chain: c, Seq: h.seq, Reason: ReasonHead, Expected: hex.EncodeToString(h.hash)})
	}
	return w.rep
}
