package audit

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	_ "github.com/lib/pq" // PostgreSQL driver, used only through database/sql
)

//go:embed migrations/*.sql
var migrations embed.FS

// Postgres is the production audit store.
type Postgres struct {
	db *sql.DB
}

var _ Store = (*Postgres)(nil)

// OpenPostgres connects to dsn, checks the connection and applies pending
// migrations. Several bridge instances may start at once: migrations run under
// a transaction-scoped advisory lock, so exactly one applies each.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("audit store: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit store: connect: %w", err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit store: %w", err)
	}
	return &Postgres{db: db}, nil
}

// migrationLock is an arbitrary constant identifying the migration lock.
const migrationLock = 0x66686972 // "fhir"

func migrate(ctx context.Context, db *sql.DB) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
			return fmt.Errorf("migrate %s: %w", version, err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migrate %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
			return fmt.Errorf("migrate %s: %w", version, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

const eventColumns = `occurred_at, action, outcome, actor, route, topic, kafka_partition, kafka_offset,
	device, patient, resource, status, location, detail, correlation_id`

const eventColumnCount = 15

// maxRowsPerInsert keeps one statement under PostgreSQL's 65535 parameters.
const maxRowsPerInsert = 65535 / eventColumnCount

// Append writes events with multi-row INSERTs in one transaction; with the
// server's default synchronous_commit they are durable when it returns.
func (p *Postgres) Append(ctx context.Context, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit append: %w", err)
	}
	defer tx.Rollback()
	for start := 0; start < len(events); start += maxRowsPerInsert {
		end := min(start+maxRowsPerInsert, len(events))
		var q strings.Builder
		q.WriteString("INSERT INTO audit_event (" + eventColumns + ") VALUES ")
		args := make([]any, 0, (end-start)*eventColumnCount)
		for i, e := range events[start:end] {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('(')
			for c := 0; c < eventColumnCount; c++ {
				if c > 0 {
					q.WriteByte(',')
				}
				q.WriteString("$" + strconv.Itoa(i*eventColumnCount+c+1))
			}
			q.WriteByte(')')
			args = append(args, e.Time.UTC(), text(e.Action), text(e.Outcome), text(e.Actor), text(e.Route), text(e.Topic),
				e.Partition, e.Offset, text(e.Device), text(e.Patient), text(e.Resource), e.Status, text(e.Location),
				text(e.Detail), text(e.CorrelationID))
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("audit append: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit append: commit: %w", err)
	}
	return nil
}

// List returns events matching f, oldest first.
func (p *Postgres) List(ctx context.Context, f Filter) ([]Event, error) {
	q := `SELECT id, ` + eventColumns + ` FROM audit_event WHERE true`
	var args []any
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			q += " AND " + col + " = $" + strconv.Itoa(len(args))
		}
	}
	add("route", f.Route)
	add("action", f.Action)
	add("patient", f.Patient)
	add("device", f.Device)
	args = append(args, f.limit())
	q += " ORDER BY id LIMIT $" + strconv.Itoa(len(args))

	rows, err := p.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit list: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.ID, &e.Time, &e.Action, &e.Outcome, &e.Actor, &e.Route, &e.Topic, &e.Partition, &e.Offset,
			&e.Device, &e.Patient, &e.Resource, &e.Status, &e.Location, &e.Detail, &e.CorrelationID); err != nil {
			return nil, fmt.Errorf("audit list: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit list: %w", err)
	}
	return out, nil
}

// Close closes the connection pool.
func (p *Postgres) Close() error { return p.db.Close() }

// text makes s storable in a PostgreSQL text column: invalid UTF-8 and NUL
// bytes (which can arrive inside error details quoting vendor input) are
// replaced. Otherwise one hostile reading would fail its audit write forever
// and stall its partition.
func text(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
