package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/config"
	"github.com/assignment-ledger/ledger/keyring"
	"github.com/assignment-ledger/ledger/migrations"
	"github.com/assignment-ledger/ledger/projections"
)

// connect loads the configuration and opens the pool.
func connect(ctx context.Context, env *cliEnv) (config.Config, *pgxpool.Pool, *slog.Logger, error) {
	cfg, err := config.FromEnv(env.getenv)
	if err != nil {
		return cfg, nil, nil, err
	}
	log := newLogger(env.stderr, cfg.LogLevel)
	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if pcfg.MaxConns < 32 {
		pcfg.MaxConns = 32
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = "ledger"
	// An OLTP service: JIT compilation costs its short statements more than
	// it saves (DATABASE_URL may still ask for it).
	if _, ok := pcfg.ConnConfig.RuntimeParams["jit"]; !ok {
		pcfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return cfg, nil, nil, fmt.Errorf("connect to database: %w", err)
	}
	return cfg, pool, log, nil
}

// connectMigrated is connect for the commands that serve or rewrite
// events: it also applies pending migrations and opens the keyring. The
// caller closes the pool.
func connectMigrated(ctx context.Context, env *cliEnv) (config.Config, *pgxpool.Pool, *keyring.Keyring, *slog.Logger, error) {
	cfg, pool, log, err := connect(ctx, env)
	if err != nil {
		return cfg, nil, nil, nil, err
	}
	var keys *keyring.Keyring
	if err = migrations.Apply(ctx, pool, log); err == nil {
		keys, err = cfg.Keyring(log)
	}
	if err != nil {
		pool.Close()
		return cfg, nil, nil, nil, err
	}
	return cfg, pool, keys, log, nil
}

// rebuildAll rebuilds every read model, after a command rewrote events.
func rebuildAll(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, keys *keyring.Keyring, log *slog.Logger) error {
	runner, err := projections.New(pool, store, keys, log)
	if err == nil {
		err = runner.Rebuild(ctx, "all", nil)
	}
	if err != nil {
		return fmt.Errorf("rebuild the read models: %w", err)
	}
	return nil
}
