// Package audittest gives tests a private PostgreSQL schema on the server the
// test script started (BRIDGE_TEST_POSTGRES_DSN), so tests never see each
// other's rows and can run in parallel.
package audittest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/lib/pq" // PostgreSQL driver
)

// EnvDSN names the variable holding the test server's DSN.
const EnvDSN = "BRIDGE_TEST_POSTGRES_DSN"

// DSN creates a fresh schema and returns a DSN whose search_path selects it.
// The schema is dropped when the test ends. Without EnvDSN the test is skipped
// with a message naming the command that provides it.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		t.Skip(EnvDSN + " not set; run `make test`, which starts PostgreSQL and Kafka")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("audittest: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("audittest: create schema: %v", err)
	}
	t.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("audittest: %s: %v", EnvDSN, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
