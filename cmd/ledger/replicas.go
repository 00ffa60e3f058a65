package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	ledgerhttp "github.com/assignment-ledger/ledger/http"
	"github.com/assignment-ledger/ledger/ledgerlog"
	"github.com/assignment-ledger/ledger/projections"
	"github.com/assignment-ledger/ledger/readroute"
)

// openReads builds the read routing of LEDGER_REPLICA_URLS: the router and,
// per replica, the read side the API reads through. Nil without replicas.
// The router's checks run until ctx ends; the caller closes the router.
func (n *node) openReads(ctx context.Context) (*readroute.Router, []ledgerhttp.ReplicaDeps, error) {
	if len(n.cfg.ReplicaURLs) == 0 {
		return nil, nil, nil
	}
	reads, err := readroute.New(ctx, n.pool, readroute.Config{URLs: n.cfg.ReplicaURLs, MaxLag: n.cfg.ReplicaMaxLag}, n.log, n.registry)
	if err != nil {
		return nil, nil, fmt.Errorf("LEDGER_REPLICA_URLS: %w", err)
	}
	var deps []ledgerhttp.ReplicaDeps
	for _, rep := range reads.Replicas() {
		store := eventstore.New(rep.Pool())
		// Never Run nor Listen: a standby can do neither. It answers
		// whether the replicated checkpoints reached a position.
		runner, err := projections.New(rep.Pool(), store, n.keys, n.log)
		if err != nil {
			reads.Close()
			return nil, nil, err
		}
		deps = append(deps, ledgerhttp.ReplicaDeps{
			Name: rep.Name(), Pool: rep.Pool(), Store: store,
			Commands: commands.New(store, n.keys, n.log), Queries: projections.NewQueries(rep.Pool(), n.keys), Projections: runner,
			// Its proofs only: the latest checkpoint (which may sign) is
			// read on the primary.
			Ledger: ledgerlog.New(rep.Pool(), n.signingKey, n.cfg.BaseURL, n.log),
		})
		n.log.Info("reads routed to replica", slog.String("replica", rep.Name()), slog.Duration("max_lag", n.cfg.ReplicaMaxLag))
	}
	return reads, deps, nil
}
