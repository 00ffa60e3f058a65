// Package testdb hands each test its own freshly migrated PostgreSQL
// database, cloned from a template so that it costs milliseconds, and drops
// it when the test ends. It never skips: without a database the test fails.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/keyring"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/migrations"
)

// templateLockKey serialises template creation across test binaries, which
// `go test ./...` runs in parallel.
const templateLockKey = 7_461_002_312

// New returns a pool on a new migrated database that is dropped at cleanup.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := NewURL(t)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("testdb: parse url: %v", err)
	}
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testdb: connect: %v", err)
	}
	// Registered after NewURL's cleanup, so it runs first: close before drop.
	t.Cleanup(pool.Close)
	return pool
}

// NewURL creates a new migrated database and returns its connection URL, for
// tests that open their own connections (a second process, say).
func NewURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, true)
}

// NewBlankURL creates an empty database (no migrations applied), for tests of
// the migrator itself.
func NewBlankURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, false)
}

func newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		t.Fatal("testdb: DATABASE_URL is not set; run the suite with `make test`, which starts a throwaway PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testdb: connect to %s: %v", redact(base), err)
	}
	defer admin.Close(context.Background())

	tpl := "template1"
	if migrated {
		if tpl, err = ensureTemplate(ctx, admin, base); err != nil {
			t.Fatalf("testdb: %v", err)
		}
	}
	name := "ledger_test_" + randomHex(8)
	if err := createFrom(ctx, admin, name, tpl); err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
	return withDatabaseURL(base, name)
}

// ensureTemplate builds the template for the current migrations once. It is
// built under another name and renamed when complete, so a crash mid-build
// never leaves a half-migrated template behind.
func ensureTemplate(ctx context.Context, admin *pgx.Conn, base string) (string, error) {
	fp, err := migrations.Fingerprint()
	if err != nil {
		return "", err
	}
	tpl := "ledger_tpl_" + fp
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock($1)`, templateLockKey); err != nil {
		return "", fmt.Errorf("template lock: %w", err)
	}
	defer admin.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, templateLockKey) //nolint:errcheck

	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, tpl).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up template: %w", err)
	}
	if exists {
		return tpl, nil
	}
	building := tpl + "_building"
	if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{building}.Sanitize()+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("drop stale template: %w", err)
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{building}.Sanitize()); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	pool, err := pgxpool.New(ctx, withDatabaseURL(base, building))
	if err != nil {
		return "", fmt.Errorf("connect to template: %w", err)
	}
	err = migrations.Apply(ctx, pool, nil)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{building}.Sanitize()+` RENAME TO `+pgx.Identifier{tpl}.Sanitize()); err != nil {
		return "", fmt.Errorf("publish template: %w", err)
	}
	return tpl, nil
}

func createFrom(ctx context.Context, admin *pgx.Conn, name, tpl string) error {
	for attempt := 0; ; attempt++ {
		_, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE `+pgx.Identifier{tpl}.Sanitize())
		var pgErr *pgconn.PgError
		// 55006: someone is briefly connected to the template; try again.
		if errors.As(err, &pgErr) && pgErr.Code == "55006" && attempt < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			return fmt.Errorf("create %s from template: %w", name, err)
		}
		return nil
	}
}

// withDatabaseURL swaps the database in a postgres:// URL (or keyword/value string).
func withDatabaseURL(base, name string) string {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return base + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "DATABASE_URL"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// KEK is the key-encryption key every test shares (base64), so that two
// "processes" of one test open each other's customer keys.
const KEK = "bGVkZ2VyIHRlc3QgS0VLLCBuZXZlciBpbiBwcm9kISE="

// Keyring returns a keyring over KEK.
func Keyring(t testing.TB) *keyring.Keyring {
	kek, err := keyring.ParseKEK(KEK)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}
