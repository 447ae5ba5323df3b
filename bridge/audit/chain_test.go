package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit/audittest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestCanonical(t *testing.T) {
	e := sample(3, "r")
	e.Seq = 7
	c := Canonical(e)
	// Leading items: version tag, chain, seq, time.
	var want []byte
	for _, s := range []string{canonicalVersion, "r/3"} {
		want = append(want, byte(len(s)>>24), byte(len(s)>>16), byte(len(s)>>8), byte(len(s)))
		want = append(want, s...)
	}
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 7)
	ts := "2026-11-25T10:15:00.000003Z"
	want = append(want, 0, 0, 0, byte(len(ts)))
	want = append(want, ts...)
	if !bytes.HasPrefix(c, want) {
		t.Fatalf("Canonical prefix\n got %q\nwant %q", c[:len(want)], want)
	}
	// Ignored: ID and hashes. Normalized: zone, sub-µs, invalid text.
	same := e
	same.ID, same.PrevHash, same.Hash = 99, []byte{1}, []byte{2}
	same.Time = e.Time.Add(999).In(time.FixedZone("x", 7200))
	if !bytes.Equal(Canonical(same), c) {
		t.Error("Canonical depends on ID, hashes, zone or sub-microsecond time")
	}
	a, b := e, e
	a.Detail = "\x00"
	b.Detail = "\uFFFD"
	if !bytes.Equal(Canonical(a), Canonical(b)) {
		t.Error("Canonical does not hash text as stored")
	}
	// Length prefixes keep field boundaries: moving a byte between fields changes it.
	a, b = e, e
	a.Device, a.Patient = "ab", "c"
	b.Device, b.Patient = "a", "bc"
	if bytes.Equal(Canonical(a), Canonical(b)) {
		t.Error("Canonical is ambiguous across field boundaries")
	}
	for _, f := range []func(*Event){
		func(e *Event) { e.Seq++ }, func(e *Event) { e.Time = e.Time.Add(time.Microsecond) },
		func(e *Event) { e.Action += "x" }, func(e *Event) { e.Outcome += "x" }, func(e *Event) { e.Actor += "x" },
		func(e *Event) { e.Route += "x" }, func(e *Event) { e.Topic += "x" }, func(e *Event) { e.Partition++ },
		func(e *Event) { e.Offset++ }, func(e *Event) { e.Device += "x" }, func(e *Event) { e.Patient += "x" },
		func(e *Event) { e.Resource += "x" }, func(e *Event) { e.Status++ }, func(e *Event) { e.Location += "x" },
		func(e *Event) { e.Detail += "x" }, func(e *Event) { e.CorrelationID += "x" },
	} {
		x := e
		f(&x)
		if bytes.Equal(Canonical(x), c) {
			t.Errorf("a field change does not change Canonical: %+v", x)
		}
	}
}

// checkChains requires that events (in id order) form valid chains: per
// chain seq 1, 2, ..., prev_hash linking to the previous hash.
func checkChains(t *testing.T, events []Event) map[string]int64 {
	t.Helper()
	last := map[string]Event{}
	for _, e := range events {
		c := ChainOf(e)
		p, ok := last[c]
		wantSeq, wantPrev := int64(1), genesis
		if ok {
			wantSeq, wantPrev = p.Seq+1, p.Hash
		}
		if e.Seq != wantSeq || !bytes.Equal(e.PrevHash, wantPrev) {
			t.Fatalf("event %d in chain %s: seq %d prev %x, want seq %d prev %x", e.ID, c, e.Seq, e.PrevHash, wantSeq, wantPrev)
		}
		h := sha256.Sum256(append(append([]byte{}, e.PrevHash...), Canonical(e)...))
		if !bytes.Equal(e.Hash, h[:]) {
			t.Fatalf("event %d: hash %x, want %x", e.ID, e.Hash, h)
		}
		last[c] = e
	}
	n := map[string]int64{}
	for c, e := range last {
		n[c] = e.Seq
	}
	return n
}

func verify(t *testing.T, s Store) Report {
	t.Helper()
	rep, err := s.(Verifier).Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestChainAssignment(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if rep := verify(t, s); !rep.OK() || rep.Chains != 0 || rep.Rows != 0 {
			t.Fatalf("empty store: %+v", rep)
		}
		var n int
		for batch := range 5 {
			var evs []Event
			for range 7 {
				evs = append(evs, sample(n, []string{"a", "b"}[n%2]))
				n++
			}
			if batch == 2 {
				evs[0].Detail = "bad \x00 byte \xff" // hashed as stored
			}
			if err := s.Append(ctx, evs...); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.List(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("listed %d, want %d", len(got), n)
		}
		heads := checkChains(t, got)
		if len(heads) != 4 { // i%2 and i%4 correlate: a/0 a/2 b/1 b/3
			t.Fatalf("chains %v", heads)
		}
		var total int64
		for c, seq := range heads {
			total += seq
			if seq < 8 || seq > 9 {
				t.Errorf("chain %s has %d events", c, seq)
			}
		}
		if total != int64(n) {
			t.Errorf("chain lengths sum to %d, want %d", total, n)
		}
		rep := verify(t, s)
		if !rep.OK() || rep.Chains != 4 || rep.Rows != n {
			t.Fatalf("Verify: %+v", rep)
		}
	})
}

func TestConcurrentAppendVerifies(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		const writers, appends, batch = 8, 15, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers*appends)
		for w := range writers {
			wg.Go(func() {
				for a := range appends {
					var evs []Event
					for i := range batch {
						e := sample(w*1000+a*batch+i, "shared")
						e.Partition = 0 // all writers share chain shared/0 ...
						if w%2 == 1 {
							// ... and odd writers also write their own chains.
							o := sample(i, fmt.Sprintf("own-%d", w))
							evs = append(evs, o)
						}
						evs = append(evs, e)
					}
					if err := s.Append(ctx, evs...); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got, err := s.List(ctx, Filter{Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		heads := checkChains(t, got)
		if heads["shared/0"] != writers*appends*batch {
			t.Errorf("shared chain has %d events, want %d", heads["shared/0"], writers*appends*batch)
		}
		rep := verify(t, s)
		if !rep.OK() || rep.Rows != len(got) || rep.Chains != len(heads) {
			t.Fatalf("Verify: %d rows, %d chains, breaks %v", rep.Rows, rep.Chains, rep.Broken)
		}
	})
}

// breakKey is what the tamper tests compare: Expected/Found are checked apart.
var breakKey = cmpopts.IgnoreFields(Break{}, "Expected", "Found")

func TestMemoryVerifyDetectsTampering(t *testing.T) {
	setup := func(t *testing.T) *Memory {
		m := NewMemory()
		for i := range 6 {
			e := sample(i, "t")
			e.Partition = 0
			if err := m.Append(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	c := "t/0"
	tests := []struct {
		name   string
		tamper func(m *Memory)
		want   []Break
	}{
		{"edit", func(m *Memory) { m.events[2].Detail = "edited" }, []Break{{Chain: c, RowID: 3, Seq: 3, Reason: ReasonHashMismatch}}},
		{"delete", func(m *Memory) { m.events = append(m.events[:2], m.events[3:]...) }, []Break{{Chain: c, RowID: 4, Seq: 4, Reason: "gap: seq 3 missing"}}},
		{"delete last", func(m *Memory) { m.events = m.events[:5] }, []Break{{Chain: c, RowID: 5, Seq: 6, Reason: ReasonHead}}},
		{"swap", func(m *Memory) {
			a, b := &m.events[1], &m.events[2]
			a.Offset, b.Offset = b.Offset, a.Offset
		}, []Break{{Chain: c, RowID: 2, Seq: 2, Reason: ReasonHashMismatch}, {Chain: c, RowID: 3, Seq: 3, Reason: ReasonHashMismatch}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := setup(t)
			tt.tamper(m)
			rep := verify(t, m)
			if diff := cmp.Diff(tt.want, rep.Broken, breakKey); diff != "" {
				t.Fatalf("breaks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPostgresVerifyDetectsTampering(t *testing.T) {
	const chain = "t/0"
	// setup writes 6 events to chain t/0 (in two batches) and 3 to t/1, and
	// returns the ids of t/0 by seq (ids[1] is seq 1).
	setup := func(t *testing.T) (*Postgres, []int64) {
		p := openTestPostgres(t)
		ctx := context.Background()
		var evs []Event
		for i := range 9 {
			e := sample(i, "t")
			e.Partition = min(i/6, 1)
			evs = append(evs, e)
		}
		if err := p.Append(ctx, evs[:3]...); err != nil {
			t.Fatal(err)
		}
		if err := p.Append(ctx, evs[3:]...); err != nil {
			t.Fatal(err)
		}
		got, err := p.List(ctx, Filter{Route: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ids := []int64{0}
		for _, e := range got {
			if ChainOf(e) == chain {
				ids = append(ids, e.ID)
			}
		}
		if rep := verify(t, p); !rep.OK() || rep.Rows != 9 || rep.Chains != 2 {
			t.Fatalf("untampered: %+v", rep)
		}
		return p, ids
	}
	exec := func(t *testing.T, p *Postgres, q string, args ...any) {
		t.Helper()
		if _, err := p.db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	hashOf := func(t *testing.T, p *Postgres, id int64) string {
		var h []byte
		if err := p.db.QueryRow(`SELECT hash FROM audit_event WHERE id = $1`, id).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(h)
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, p *Postgres, ids []int64)
		want   func(ids []int64) []Break
	}{
		{"edit", func(t *testing.T, p *Postgres, ids []int64) {
			exec(t, p, `UPDATE audit_event SET detail = 'nothing to see' WHERE id = $1`, ids[3])
		}, func(ids []int64) []Break {
			return []Break{{Chain: chain, RowID: ids[3], Seq: 3, Reason: ReasonHashMismatch}}
		}},
		{"edit time", func(t *testing.T, p *Postgres, ids []int64) {
			exec(t, p, `UPDATE audit_event SET occurred_at = occurred_at + interval '1 microsecond' WHERE id = $1`, ids[5])
		}, func(ids []int64) []Break {
			return []Break{{Chain: chain, RowID: ids[5], Seq: 5, Reason: ReasonHashMismatch}}
		}},
		{"delete", func(t *testing.T, p *Postgres, ids []int64) {
			exec(t, p, `DELETE FROM audit_event WHERE id = $1`, ids[3])
		}, func(ids []int64) []Break {
			return []Break{{Chain: chain, RowID: ids[4], Seq: 4, Reason: "gap: seq 3 missing"}}
		}},
		{"delete two", func(t *testing.T, p *Postgres, ids []int64) {
			exec(t, p, `DELETE FROM audit_event WHERE id IN ($1, $2)`, ids[1], ids[2])
		}, func(ids []int64) []Break {
			return []Break{{Chain: chain, RowID: ids[3], Seq: 3, Reason: "gap: seq 1-2 missing"}}
		}},
		{"delete last", func(t *testing.T, p *Postgres, ids []int64) {
			exec(t, p, `DELETE FROM audit_event WHERE id = $1`, ids[6])
		}, func(ids []int64) []Break {
			return []Break{{Chain: chain, RowID: ids[5], Seq: 6, Reason: ReasonHead}}
		}},
		{"delete whole chain", func(t *testing.T, p *Postgres, ids []int64) {
			exec(t, p, `DELETE FROM audit_event WHERE chain = $1`, chain)
		}, func(ids []int64) []Break {
			return []Break{{Chain: chain, RowID: 0, Seq: 6, Reason: ReasonHead}}
		}},
		{"swap contents", func(t *testing.T, p *Postgres, ids []int64) {
			exec(t, p, `UPDATE audit_event a SET kafka_offset = b.kafka_offset, resource = b.resource,
				correlation_id = b.correlation_id, action = b.action, occurred_at = b.occurred_at
				FROM audit_event b WHERE (a.id, b.id) IN (($1::bigint, $2::bigint), ($2, $1))`, ids[2], ids[3])
		}, func(ids []int64) []Break {
			return []Break{
				{Chain: chain, RowID: ids[2], Seq: 2, Reason: ReasonHashMismatch},
				{Chain: chain, RowID: ids[3], Seq: 3, Reason: ReasonHashMismatch},
			}
		}},
		{"reorder rows", func(t *testing.T, p *Postgres, ids []int64) {
			// Move whole rows, hashes included: seq 2 and 3 trade places.
			exec(t, p, `UPDATE audit_event SET seq = -1 WHERE id = $1`, ids[2])
			exec(t, p, `UPDATE audit_event SET seq = 2 WHERE id = $1`, ids[3])
			exec(t, p, `UPDATE audit_event SET seq = 3 WHERE id = $1`, ids[2])
		}, func(ids []int64) []Break {
			return []Break{
				{Chain: chain, RowID: ids[3], Seq: 2, Reason: ReasonPrevHash},
				{Chain: chain, RowID: ids[3], Seq: 2, Reason: ReasonHashMismatch},
				{Chain: chain, RowID: ids[2], Seq: 3, Reason: ReasonPrevHash},
				{Chain: chain, RowID: ids[2], Seq: 3, Reason: ReasonHashMismatch},
				{Chain: chain, RowID: ids[4], Seq: 4, Reason: ReasonPrevHash},
			}
		}},
		{"rewrite head", func(t *testing.T, p *Postgres, ids []int64) {
			exec(t, p, `UPDATE audit_chain_head SET seq = 7 WHERE chain = $1`, chain)
		}, func(ids []int64) []Break {
			return []Break{{Chain: chain, RowID: ids[6], Seq: 7, Reason: ReasonHead}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, ids := setup(t)
			stored := map[int64]string{}
			for _, id := range ids[1:] {
				stored[id] = hashOf(t, p, id)
			}
			tt.tamper(t, p, ids)
			rep := verify(t, p)
			if diff := cmp.Diff(tt.want(ids), rep.Broken, breakKey); diff != "" {
				t.Fatalf("breaks (-want +got):\n%s", diff)
			}
			for _, b := range rep.Broken {
				switch b.Reason {
				case ReasonHashMismatch:
					if b.Found != stored[b.RowID] || b.Expected == b.Found || len(b.Expected) != 2*HashSize {
						t.Errorf("%v: found should be the stored hash %s", b, stored[b.RowID])
					}
				case ReasonPrevHash:
					if b.Expected == b.Found {
						t.Errorf("%v: expected equals found", b)
					}
				}
			}
		})
	}
}

func TestPostgresVerifyCountsUnchainedRows(t *testing.T) {
	p := openTestPostgres(t)
	if _, err := p.db.Exec(`INSERT INTO audit_event (occurred_at, action, outcome, actor) VALUES (now(), 'received', 'success', 'system')`); err != nil {
		t.Fatal(err)
	}
	if err := p.Append(context.Background(), sample(1, "r")); err != nil {
		t.Fatal(err)
	}
	rep := verify(t, p)
	if !rep.OK() || rep.Unchained != 1 || rep.Rows != 1 {
		t.Fatalf("Verify: %+v", rep)
	}
	got, err := p.List(context.Background(), Filter{})
	if err != nil || len(got) != 2 || got[0].Seq != 0 || got[0].Hash != nil {
		t.Fatalf("List with a legacy row: %+v %v", got, err)
	}
}

// BenchmarkAppendPostgres appends batches of 100 events spread over 4 chains.
func BenchmarkAppendPostgres(b *testing.B) {
	dsn := audittest.DSN(b)
	p, err := OpenPostgres(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	batch := make([]Event, 100)
	for i := range batch {
		batch[i] = sample(i, "bench") // partitions i%4: 4 chains
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if err := p.Append(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkAppendPostgresBatch appends batches of several sizes, events
// spread over 4 chains.
func BenchmarkAppendPostgresBatch(b *testing.B) {
	dsn := audittest.DSN(b)
	p, err := OpenPostgres(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	for _, size := range []int{1, 16, 1000} {
		batch := make([]Event, size)
		for i := range batch {
			batch[i] = sample(i, "bench")
		}
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				if err := p.Append(ctx, batch...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// TestCanonicalTypedFields: events without the typed Stage, DestKind and
// Reason keep the v1 form byte for byte (old chains verify unchanged); with
// any of them set the v2 form covers them, so editing one breaks the hash.
func TestCanonicalTypedFields(t *testing.T) {
	e := Event{Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Action: ActionRejected, Route: "r", Detail: "x"}
	v1 := Canonical(e)
	if !bytes.Contains(v1, []byte(canonicalVersion)) || bytes.Contains(v1, []byte(canonicalVersion2)) {
		t.Fatalf("untyped event not in the v1 form: %q", v1)
	}
	typed := e
	typed.Stage, typed.DestKind, typed.Reason = "deliver", "fhir", "http-422"
	v2 := Canonical(typed)
	if !bytes.Contains(v2, []byte(canonicalVersion2)) || !bytes.Contains(v2, []byte("http-422")) {
		t.Fatalf("typed event not in the v2 form: %q", v2)
	}
	for _, edit := range []func(*Event){
		func(e *Event) { e.Stage = "map" }, func(e *Event) { e.DestKind = "mllp" }, func(e *Event) { e.Reason = "http-400" },
		func(e *Event) { e.Attempts = 3 }, func(e *Event) { e.ReceivedAt = e.Time.Add(-time.Second) },
	} {
		edited := typed
		edit(&edited)
		if bytes.Equal(Canonical(edited), v2) {
			t.Errorf("edit %+v not covered by the canonical form", edited)
		}
	}
}
