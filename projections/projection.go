// Package projections builds the read models from the event store: one
// Watermill handler and consumer group per projection over the events table
// itself, exactly-once checkpoints, wake-up on LISTEN/NOTIFY, read-your-writes
// waiting, rebuild without downtime, and the queries the HTTP layer serves.
package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Projection names, also their consumer groups and the names of their
// main tables.
const (
	MyClients           = "my_clients"
	CustomerList        = "customer_list"
	AssignmentIntervals = "assignment_intervals"
	AuditLog            = "audit_log"
	Notifications       = "notifications"
)

// ErrUnknownProjection is returned for a name that is not a projection.
var ErrUnknownProjection = errors.New("unknown projection")

// projection is one read model.
type projection interface {
	name() string
	// tables are the public tables the projection owns; a rebuild recreates
	// and swaps exactly these.
	tables() []string
	// apply applies one event inside tx, in one statement built by gated
	// and run with g. Only a rebuild's catch-up and swap use it (with the
	// zero gate, on the rebuild tables); the live handler applies batches.
	apply(ctx context.Context, tx queryer, ev *envelope, g gate) error
	// The live handler applies whole batches (see batchApplier).
	batchApplier
}

// gate ties a projection's one write statement for an event to its
// checkpoint. The statement's first CTE, cp, moves the consumer group's
// checkpoint to the event and returns a row only when the event was past
// it, and every write of the statement is conditional on
// EXISTS (SELECT 1 FROM cp). A statement is atomic, so a commit that
// Watermill makes while a handler runs (shutdown, ack deadline) can never
// catch an event half applied, and an event applied again in the same
// transaction writes nothing. Reads before the statement write nothing, so
// a commit between them and the write is harmless.
//
// The zero gate (a rebuild, whose tables have no checkpoint of their own)
// writes unconditionally.
type gate struct {
	group string
	txid  string // xid8 as text
	pos   int64
}

const (
	qGateLive = `cp AS (UPDATE projection_checkpoints SET last_transaction_id = $%[1]d::text::xid8, last_position = $%[2]d::bigint, updated_at = now()
    WHERE consumer_group = $%[3]d::text AND (last_transaction_id, last_position) < ($%[1]d::text::xid8, $%[2]d::bigint) RETURNING 1)`
	qGateRebuild = `cp AS (SELECT $%[1]d::text, $%[2]d::bigint, $%[3]d::text)`
)

// gatedStmt is one write statement in its live and its rebuild form.
type gatedStmt struct {
	live, rebuild string
}

// gated prefixes q, which uses parameters $1..$n and refers to cp, with
// the cp CTE (parameters $n+1..$n+3).
func gated(n int, q string) gatedStmt {
	with := func(cte string) string {
		cte = fmt.Sprintf(cte, n+1, n+2, n+3)
		if rest, ok := strings.CutPrefix(q, "WITH "); ok {
			return "WITH " + cte + ",\n" + rest
		}
		return "WITH " + cte + "\n" + q
	}
	return gatedStmt{live: with(qGateLive), rebuild: with(qGateRebuild)}
}

// exec runs the statement under g.
func (s gatedStmt) exec(ctx context.Context, tx queryer, g gate, args ...any) error {
	q := s.live
	if g.group == "" {
		q = s.rebuild
	}
	_, err := tx.ExecContext(ctx, q, append(args, g.txid, g.pos, g.group)...)
	return err
}

// sqlBulk is a projection rebuilt by set-based SQL over a range of events:
// $1 < position <= $2 and transaction_id < $3 (text).
type sqlBulk interface {
	bulkSQL() string
}

// foldBulk is a projection rebuilt from a fold of each customer's stream.
type foldBulk interface {
	// copyColumns are the columns emit fills, per table.
	copyColumns() map[string][]string
	// emit adds the rows of one customer's final state to sink.
	emit(sink *copySink, c *customerState) error
}

// stretchBulk is a fold projection that also records every stretch, each
// emitted once it is closed (or at the end, when still open).
type stretchBulk interface {
	emitStretch(sink *copySink, c *customerState, s *stretch)
}

// all returns every projection, in a fixed order.
func all() []projection {
	return []projection{myClients{}, customerList{}, assignmentIntervals{}, auditLog{}, notifications{}}
}

// AllNames lists every projection.
func AllNames() []string {
	var out []string
	for _, p := range all() {
		out = append(out, p.name())
	}
	return out
}

// selectProjections resolves names ("all" or none meaning every projection).
func selectProjections(names []string) ([]projection, error) {
	if len(names) == 0 || slices.Contains(names, "all") {
		return all(), nil
	}
	var out []projection
	for _, n := range names {
		i := slices.IndexFunc(all(), func(p projection) bool { return p.name() == n })
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrUnknownProjection, n)
		}
		if !slices.ContainsFunc(out, func(p projection) bool { return p.name() == n }) {
			out = append(out, all()[i])
		}
	}
	return out, nil
}
