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
	// apply applies one delivered event inside tx. It must only write the
	// projection's own tables; the caller moves the checkpoint.
	apply(ctx context.Context, tx queryer, ev *envelope) error
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
