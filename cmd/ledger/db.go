package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/internal/config"
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
