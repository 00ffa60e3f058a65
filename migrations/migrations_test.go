package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/migrations"
)

func TestMigrationsAreNumberedAndUnique(t *testing.T) {
	t.Parallel()
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range all {
		if m.Version != i+1 {
			t.Fatalf("migration %s has version %d, want %d (no gaps)", m.Name, m.Version, i+1)
		}
	}
}

// Several processes starting at once must leave one applied copy of each
// migration and no errors.
func TestConcurrentApplyIsSafe(t *testing.T) {
	t.Parallel()
	dsn := testdb.NewBlankURL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- migrations.Apply(ctx, pool, nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pending, err := migrations.Pending(ctx, pool)
	if err != nil || pending != 0 {
		t.Fatalf("pending = %d, %v", pending, err)
	}
	all, _ := migrations.All()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(all) {
		t.Fatalf("%d rows in schema_migrations, want %d (%v)", n, len(all), err)
	}
	// Applying again is a no-op.
	if err := migrations.Apply(ctx, pool, nil); err != nil {
		t.Fatal(err)
	}
}
