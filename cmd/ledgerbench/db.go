package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/migrations"
)

// server is DATABASE_URL's PostgreSQL server, on which each phase creates a
// database of its own.
type server struct {
	url   string
	admin *pgxpool.Pool
	log   *slog.Logger

	mu  sync.Mutex
	dbs []string
}

func openServer(ctx context.Context, url string, log *slog.Logger) (*server, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.RuntimeParams["application_name"] = "ledgerbench-admin"
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	admin, err := pgxpool.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := admin.Ping(cctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return &server{url: url, admin: admin, log: log}, nil
}

func (s *server) close() { s.admin.Close() }

// createDB creates a fresh database for a phase, applies the migrations and
// returns a pool on it sized like `ledger serve`'s (at least 32
// connections). tracer, unless nil, sees every query of the pool.
func (s *server) createDB(ctx context.Context, phase string, maxConns int32, tracer pgx.QueryTracer) (*pgxpool.Pool, string, error) {
	name := fmt.Sprintf("ledgerbench_%s_%d_%d", phase, os.Getpid(), time.Now().Unix())
	if _, err := s.admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, "", fmt.Errorf("create database %s: %w", name, err)
	}
	s.mu.Lock()
	s.dbs = append(s.dbs, name)
	s.mu.Unlock()
	cfg, err := pgxpool.ParseConfig(s.url)
	if err != nil {
		return nil, "", err
	}
	cfg.ConnConfig.Database = name
	if maxConns < 32 {
		maxConns = 32
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.RuntimeParams["application_name"] = "ledgerbench"
	cfg.ConnConfig.RuntimeParams["jit"] = "off" // as ledger serve's pool (cmd/ledger/db.go)
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("connect to %s: %w", name, err)
	}
	if err := migrations.Apply(ctx, pool, nil); err != nil {
		pool.Close()
		return nil, "", err
	}
	return pool, name, nil
}

// connConfig is a single-connection config on a phase database.
func (s *server) connConfig(db string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(s.url)
	if err != nil {
		return nil, err
	}
	cfg.Database = db
	return cfg, nil
}

func (s *server) dropAll(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range s.dbs {
		if _, err := s.admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			fmt.Fprintf(os.Stderr, "ledgerbench: drop database %s: %v\n", name, err)
		}
	}
	s.dbs = nil
}

// walStats is pg_stat_wal: how many WAL flushes (fsyncs) and bytes a run
// cost, the physical side of a commit.
type walStats struct {
	Records int64
	Bytes   int64
	Writes  int64
	Syncs   int64
}

func readWAL(ctx context.Context, pool *pgxpool.Pool) walStats {
	var w walStats
	_ = pool.QueryRow(ctx, `SELECT wal_records, wal_bytes::bigint, wal_write, wal_sync FROM pg_stat_wal`).
		Scan(&w.Records, &w.Bytes, &w.Writes, &w.Syncs)
	return w
}

func (w walStats) add(o walStats) walStats {
	return walStats{Records: w.Records + o.Records, Bytes: w.Bytes + o.Bytes, Writes: w.Writes + o.Writes, Syncs: w.Syncs + o.Syncs}
}

func (w walStats) sub(o walStats) walStats {
	return walStats{Records: w.Records - o.Records, Bytes: w.Bytes - o.Bytes, Writes: w.Writes - o.Writes, Syncs: w.Syncs - o.Syncs}
}

// indexDefs captures a table's constraints (primary key, unique) and other
// indexes so a bulk load can drop them and put back exactly the same ones.
type indexDefs struct {
	table       string
	constraints [][2]string // name, definition
	indexes     []string
}

func captureIndexes(ctx context.Context, pool *pgxpool.Pool, table string) (indexDefs, error) {
	d := indexDefs{table: table}
	rows, err := pool.Query(ctx, `SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = ('public.' || $1)::regclass AND contype IN ('p', 'u') ORDER BY conname`, table)
	if err != nil {
		return d, err
	}
	for rows.Next() {
		var c [2]string
		if err := rows.Scan(&c[0], &c[1]); err != nil {
			rows.Close()
			return d, err
		}
		d.constraints = append(d.constraints, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d, err
	}
	rows, err = pool.Query(ctx, `SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
		WHERE i.indrelid = ('public.' || $1)::regclass
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)`, table)
	if err != nil {
		return d, err
	}
	d.indexes, err = pgx.CollectRows(rows, pgx.RowTo[string])
	sort.Strings(d.indexes)
	return d, err
}

func (d indexDefs) drop(ctx context.Context, pool *pgxpool.Pool) error {
	t := pgx.Identifier{d.table}.Sanitize()
	for _, c := range d.constraints {
		if _, err := pool.Exec(ctx, `ALTER TABLE `+t+` DROP CONSTRAINT `+pgx.Identifier{c[0]}.Sanitize()); err != nil {
			return err
		}
	}
	rows, err := pool.Query(ctx, `SELECT i.indexrelid::regclass::text FROM pg_index i
		WHERE i.indrelid = ('public.' || $1)::regclass`, d.table)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := pool.Exec(ctx, `DROP INDEX `+n); err != nil {
			return err
		}
	}
	return nil
}

// restore recreates the constraints and indexes, in parallel per table
// (the caller runs tables side by side), with generous maintenance memory.
func (d indexDefs) restore(ctx context.Context, pool *pgxpool.Pool) error {
	t := pgx.Identifier{d.table}.Sanitize()
	var stmts []string
	for _, c := range d.constraints {
		stmts = append(stmts, `ALTER TABLE `+t+` ADD CONSTRAINT `+pgx.Identifier{c[0]}.Sanitize()+` `+c[1])
	}
	stmts = append(stmts, d.indexes...)
	for _, s := range stmts {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL maintenance_work_mem = '512MB'`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, s)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}
