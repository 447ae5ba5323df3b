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

	"github.com/lib/pq" // PostgreSQL driver, used through database/sql; pq.Array for array parameters
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

// eventColumnCount is the number of columns Append writes per event.
const eventColumnCount = 19

// maxRowsPerInsert is how many events one INSERT could carry under
// PostgreSQL's 65535 parameters. Append uses COPY, which has no such limit;
// tests use it to size a batch that once needed several statements.
const maxRowsPerInsert = 65535 / eventColumnCount

// Append writes events with COPY in one transaction; with the server's
// default synchronous_commit they are durable when it returns.
//
// Chaining: the transaction first locks the head row of every chain the
// batch touches (creating missing heads), in byte order of the chain name so
// that concurrent writers never deadlock: one lock per chain per Append,
// never one per row. It then links the events in batch order, inserts them
// and moves the heads. Writers of one chain take turns; writers of different
// chains do not wait for each other.
func (p *Postgres) Append(ctx context.Context, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	rows := make([]Event, len(events))
	chains := make([]string, len(events))
	var names []string
	seen := map[string]bool{}
	for i, e := range events {
		rows[i] = normalize(e)
		chains[i] = ChainOf(rows[i])
		if !seen[chains[i]] {
			seen[chains[i]] = true
			names = append(names, chains[i])
		}
	}
	sort.Strings(names)

	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit append: %w", err)
	}
	defer tx.Rollback()
	heads, err := lockHeads(ctx, tx, names)
	if err != nil {
		return fmt.Errorf("audit append: %w", err)
	}
	for i := range rows {
		h := heads[chains[i]]
		link(&h, &rows[i])
		heads[chains[i]] = h
	}
	if err := copyRows(ctx, tx, rows, chains); err != nil {
		return fmt.Errorf("audit append: %w", err)
	}
	seqs := make([]int64, len(names))
	hashes := make([][]byte, len(names))
	for i, c := range names {
		seqs[i], hashes[i] = heads[c].seq, heads[c].hash
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_chain_head h SET seq = v.seq, hash = v.hash
		FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS v(chain, seq, hash) WHERE h.chain = v.chain`,
		pq.Array(names), pq.Array(seqs), pq.Array(hashes)); err != nil {
		return fmt.Errorf("audit append: chain heads: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit append: commit: %w", err)
	}
	return nil
}

// lockHeads creates the missing heads of chains (sorted) and locks all of
// them FOR UPDATE, in that order, returning their current state.
func lockHeads(ctx context.Context, tx *sql.Tx, chains []string) (map[string]chainHead, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_chain_head (chain, seq, hash)
		SELECT c, 0, $2 FROM unnest($1::text[]) WITH ORDINALITY AS u(c, n) ORDER BY n
		ON CONFLICT (chain) DO NOTHING`, pq.Array(chains), genesis); err != nil {
		return nil, fmt.Errorf("chain heads: %w", err)
	}
	// Rows are locked as the sorted result is produced, so in chain order
	// (COLLATE "C" is byte order, as sort.Strings).
	rows, err := tx.QueryContext(ctx, `SELECT chain, seq, hash FROM audit_chain_head
		WHERE chain = ANY($1::text[]) ORDER BY chain COLLATE "C" FOR UPDATE`, pq.Array(chains))
	if err != nil {
		return nil, fmt.Errorf("lock chain heads: %w", err)
	}
	defer rows.Close()
	heads := make(map[string]chainHead, len(chains))
	for rows.Next() {
		var c string
		var h chainHead
		if err := rows.Scan(&c, &h.seq, &h.hash); err != nil {
			return nil, fmt.Errorf("lock chain heads: %w", err)
		}
		heads[c] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock chain heads: %w", err)
	}
	if len(heads) != len(chains) {
		return nil, fmt.Errorf("lock chain heads: found %d of %d", len(heads), len(chains))
	}
	return heads, nil
}

const selectEvents = `SELECT id, occurred_at, action, outcome, actor, route, topic, kafka_partition, kafka_offset,
	device, patient, resource, status, location, detail, correlation_id, stage, destination_kind, reason, received_at, attempts, chain, COALESCE(seq, 0), prev_hash, hash
	FROM audit_event`

// scanEvent reads a row of selectEvents; chain is "" for unchained rows.
func scanEvent(rows *sql.Rows) (e Event, chain string, err error) {
	var c sql.NullString
	var received sql.NullTime
	err = rows.Scan(&e.ID, &e.Time, &e.Action, &e.Outcome, &e.Actor, &e.Route, &e.Topic, &e.Partition, &e.Offset,
		&e.Device, &e.Patient, &e.Resource, &e.Status, &e.Location, &e.Detail, &e.CorrelationID, &e.Stage, &e.DestKind, &e.Reason, &received, &e.Attempts,
		&c, &e.Seq, &e.PrevHash, &e.Hash)
	e.ReceivedAt = received.Time
	return e, c.String, err
}

// List returns events matching f, oldest first.
func (p *Postgres) List(ctx context.Context, f Filter) ([]Event, error) {
	q := selectEvents + ` WHERE true`
	var args []any
	cond := func(expr string, v any) {
		args = append(args, v)
		q += " AND " + expr + " $" + strconv.Itoa(len(args))
	}
	add := func(col, v string) {
		if v != "" {
			cond(col+" =", v)
		}
	}
	add("route", f.Route)
	add("action", f.Action)
	add("patient", f.Patient)
	add("device", f.Device)
	add("outcome", f.Outcome)
	if !f.Since.IsZero() {
		cond("occurred_at >=", f.Since)
	}
	if !f.Until.IsZero() {
		cond("occurred_at <", f.Until)
	}
	args = append(args, f.limit())
	q += " ORDER BY id LIMIT $" + strconv.Itoa(len(args))

	rows, err := p.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit list: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, _, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("audit list: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit list: %w", err)
	}
	return out, nil
}

// Verify checks every chain; see Verifier. In one read-only snapshot it reads
// the heads, then streams the rows in (chain, seq) order; writers are not
// blocked.
func (p *Postgres) Verify(ctx context.Context) (Report, error) {
	// One REPEATABLE READ snapshot, so heads and rows agree even while
	// writers keep appending.
	tx, err := p.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return Report{}, fmt.Errorf("audit verify: %w", err)
	}
	defer tx.Rollback()
	heads := map[string]chainHead{}
	hr, err := tx.QueryContext(ctx, `SELECT chain, seq, hash FROM audit_chain_head`)
	if err != nil {
		return Report{}, fmt.Errorf("audit verify: %w", err)
	}
	for hr.Next() {
		var c string
		var h chainHead
		if err := hr.Scan(&c, &h.seq, &h.hash); err != nil {
			hr.Close()
			return Report{}, fmt.Errorf("audit verify: %w", err)
		}
		heads[c] = h
	}
	hr.Close()
	if err := hr.Err(); err != nil {
		return Report{}, fmt.Errorf("audit verify: %w", err)
	}
	var unchained int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audit_event WHERE chain IS NULL`).Scan(&unchained); err != nil {
		return Report{}, fmt.Errorf("audit verify: %w", err)
	}
	rows, err := tx.QueryContext(ctx, selectEvents+` WHERE chain IS NOT NULL ORDER BY chain COLLATE "C", seq`)
	if err != nil {
		return Report{}, fmt.Errorf("audit verify: %w", err)
	}
	defer rows.Close()
	w := newChainWalker(heads)
	for rows.Next() {
		e, chain, err := scanEvent(rows)
		if err != nil {
			return Report{}, fmt.Errorf("audit verify: %w", err)
		}
		w.row(e.ID, chain, e)
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("audit verify: %w", err)
	}
	rep := w.finish()
	rep.Unchained = unchained
	return rep, nil
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
