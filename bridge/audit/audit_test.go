package audit

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit/audittest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// stores runs a test against every Store implementation. PostgreSQL runs
// when BRIDGE_TEST_POSTGRES_DSN is set, as `make test` does.
func stores(t *testing.T, fn func(t *testing.T, s Store)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		fn(t, NewMemory())
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, openTestPostgres(t))
	})
}

// openTestPostgres opens a store in a fresh schema of the test server, so
// tests never see each other's rows.
func openTestPostgres(t *testing.T) *Postgres {
	t.Helper()
	dsn := testDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func testDSN(t *testing.T) string { return audittest.DSN(t) }

func sample(i int, route string) Event {
	e := Event{
		Time:          time.Date(2026, 11, 25, 10, 15, 0, i*1000, time.UTC),
		Action:        []string{ActionReceived, ActionMapped, ActionDelivered}[i%3],
		Outcome:       OutcomeSuccess,
		Actor:         ActorSystem,
		Route:         route,
		Topic:         "vitals",
		Partition:     i % 4,
		Offset:        int64(i),
		Device:        fmt.Sprintf("Device/d-%d", i%5),
		Patient:       fmt.Sprintf("Patient/p-%d", i%7),
		Resource:      "urn:x|" + fmt.Sprint(i),
		Status:        201,
		Location:      "Observation/1/_history/1",
		Detail:        "",
		CorrelationID: fmt.Sprintf("vitals/%d/%d", i%4, i),
	}
	if i%2 == 0 {
		// Outcome rows carry the typed fields; legacy rows (odd) do not.
		e.Stage, e.DestKind, e.Reason = "deliver", "fhir", "already-present"
		e.ReceivedAt, e.Attempts = e.Time.Add(-150*time.Millisecond), 1+i%3
	}
	return e
}

// ignoreID ignores what the store assigns: the id and the chain fields.
var ignoreID = cmpopts.IgnoreFields(Event{}, "ID", "Seq", "PrevHash", "Hash")

func TestAppendList(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		var want []Event
		for i := range 30 {
			want = append(want, sample(i, "r1"))
		}
		if err := s.Append(ctx, want[:10]...); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, want[10:]...); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, sample(99, "other")); err != nil {
			t.Fatal(err)
		}
		got, err := s.List(ctx, Filter{Route: "r1"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, ignoreID); diff != "" {
			t.Fatalf("List(route r1) mismatch (-want +got):\n%s", diff)
		}
		for i := 1; i < len(got); i++ {
			if got[i].ID <= got[i-1].ID {
				t.Fatalf("ids not increasing: %d then %d", got[i-1].ID, got[i].ID)
			}
		}
	})
}

func TestListFilters(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		var all []Event
		for i := range 42 {
			e := sample(i, "r")
			if i%5 == 0 {
				e.Outcome = OutcomeFailure
			}
			all = append(all, e)
		}
		t0 := sample(0, "").Time
		if err := s.Append(ctx, all...); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			f    Filter
			keep func(Event) bool
		}{
			{"action", Filter{Action: ActionDelivered}, func(e Event) bool { return e.Action == ActionDelivered }},
			{"patient", Filter{Patient: "Patient/p-3"}, func(e Event) bool { return e.Patient == "Patient/p-3" }},
			{"device", Filter{Device: "Device/d-2"}, func(e Event) bool { return e.Device == "Device/d-2" }},
			{"device and action", Filter{Device: "Device/d-2", Action: ActionMapped}, func(e Event) bool {
				return e.Device == "Device/d-2" && e.Action == ActionMapped
			}},
			{"no match", Filter{Route: "nope"}, func(Event) bool { return false }},
			{"outcome", Filter{Outcome: OutcomeFailure}, func(e Event) bool { return e.Outcome == OutcomeFailure }},
			{"since", Filter{Since: t0.Add(30 * time.Microsecond)}, func(e Event) bool { return e.Offset >= 30 }},
			{"until", Filter{Until: t0.Add(10 * time.Microsecond)}, func(e Event) bool { return e.Offset < 10 }},
			{"since until outcome", Filter{Since: t0.Add(10 * time.Microsecond), Until: t0.Add(21 * time.Microsecond), Outcome: OutcomeFailure},
				func(e Event) bool { return e.Offset >= 10 && e.Offset < 21 && e.Outcome == OutcomeFailure }},
			{"since in another zone", Filter{Since: t0.Add(40 * time.Microsecond).In(time.FixedZone("x", 3600))}, func(e Event) bool { return e.Offset >= 40 }},
		}
		for _, tt := range tests {
			var want []Event
			for _, e := range all {
				if tt.keep(e) {
					want = append(want, e)
				}
			}
			got, err := s.List(ctx, tt.f)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if diff := cmp.Diff(want, got, ignoreID, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
		got, err := s.List(ctx, Filter{Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(all[:5], got, ignoreID); diff != "" {
			t.Errorf("limit 5: mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestAppendNothingAndCancelled(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		if err := s.Append(context.Background()); err != nil {
			t.Fatalf("empty append: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Append(ctx, sample(1, "r")); err == nil {
			t.Fatal("append with a cancelled context succeeded")
		}
		got, err := s.List(context.Background(), Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Fatalf("cancelled append stored %d events", len(got))
		}
	})
}

func TestPostgresLargeBatchIsOneTransaction(t *testing.T) {
	p := openTestPostgres(t)
	ctx := context.Background()
	n := maxRowsPerInsert*2 + 17 // spans three INSERT statements
	events := make([]Event, n)
	for i := range events {
		events[i] = sample(i, "big")
	}
	if err := p.Append(ctx, events...); err != nil {
		t.Fatal(err)
	}
	got, err := p.List(ctx, Filter{Route: "big", Limit: n + 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("stored %d events, want %d", len(got), n)
	}

	// A batch with one bad row stores nothing: the trail never holds half a batch.
	bad := []Event{sample(1, "atomic"), sample(2, "atomic")}
	bad[1].Partition = 1 << 40 // out of range for the integer column
	if err := p.Append(ctx, bad...); err == nil {
		t.Fatal("append with an out-of-range partition succeeded")
	}
	got, err = p.List(ctx, Filter{Route: "atomic"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("failed batch left %d rows", len(got))
	}
}

func TestPostgresMigrationsConcurrentAndIdempotent(t *testing.T) {
	dsn := testDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			p, err := OpenPostgres(ctx, dsn)
			if err == nil {
				p.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	p, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var n int
	if err := p.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	want, _ := fs.Glob(migrations, "migrations/*.sql")
	if n != len(want) {
		t.Fatalf("schema_migrations has %d rows, want one per migration (%d)", n, len(want))
	}
}

func TestOpenPostgresUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback refuses connections.
	_, err := OpenPostgres(ctx, "postgres://u:secret@127.0.0.1:1/db?sslmode=disable")
	if err == nil {
		t.Fatal("OpenPostgres succeeded against a closed port")
	}
	if got := err.Error(); contains(got, "secret") {
		t.Fatalf("error leaks the password: %s", got)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestHostileTextIsStored(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		e := sample(1, "hostile")
		e.Detail = "map: field \"a\x00b\xff\": unknown field"
		e.CorrelationID = "\xfe\x00"
		if err := s.Append(context.Background(), e); err != nil {
			t.Fatalf("append with NUL and invalid UTF-8: %v", err)
		}
		got, err := s.List(context.Background(), Filter{Route: "hostile"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !strings.HasPrefix(got[0].Detail, "map: field") {
			t.Fatalf("stored %+v", got)
		}
	})
}

func TestLedger(t *testing.T) {
	for name, l := range map[string]func(t *testing.T) Ledger{
		"memory":   func(*testing.T) Ledger { return NewMemory() },
		"postgres": func(t *testing.T) Ledger { return openTestPostgres(t) },
	} {
		t.Run(name, func(t *testing.T) {
			led := l(t)
			ctx := context.Background()
			if ok, err := led.Delivered(ctx, "r1", "MSG1"); err != nil || ok {
				t.Fatalf("fresh ledger: %v %v", ok, err)
			}
			for range 2 { // marking twice is harmless
				if err := led.MarkDelivered(ctx, "r1", "MSG1"); err != nil {
					t.Fatal(err)
				}
			}
			if ok, _ := led.Delivered(ctx, "r1", "MSG1"); !ok {
				t.Error("marked message not found")
			}
			if ok, _ := led.Delivered(ctx, "r2", "MSG1"); ok {
				t.Error("ledger is not per route")
			}
			// Many at once: one query, one commit.
			if err := led.MarkAllDelivered(ctx, "r1", []string{"MSG2", "MSG3", "MSG1"}); err != nil {
				t.Fatal(err)
			}
			got, err := led.DeliveredOf(ctx, "r1", []string{"MSG1", "MSG2", "MSG4", "MSG3"})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(map[string]bool{"MSG1": true, "MSG2": true, "MSG3": true}, got); d != "" {
				t.Errorf("DeliveredOf (-want +got):\n%s", d)
			}
			if got, _ := led.DeliveredOf(ctx, "r2", []string{"MSG2"}); len(got) != 0 {
				t.Error("DeliveredOf is not per route")
			}
		})
	}
}
