// Package projections builds the read models from the event store and
// answers the queries the HTTP layer serves. One engine applies every read
// model: a batch of events, read once, becomes one write statement per
// transaction, whether it is a live batch, a catch-up after a backlog or a
// rebuild's catch-up (see engine.go and docs/ARCHITECTURE.md).
package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// Projection names, also their checkpoints' names (consumer_group in
// projection_checkpoints) and the names of their main tables.
const (
	MyClients           = "my_clients"
	CustomerList        = "customer_list"
	AssignmentIntervals = "assignment_intervals"
	AuditLog            = "audit_log"
	Notifications       = "notifications"
	Groups              = "groups"
	LedgerTree          = "ledger_tree"
)

// ErrUnknownProjection is returned for a name that is not a projection.
var ErrUnknownProjection = errors.New("unknown projection")

// projection is one read model, declared once: its tables and how events
// become their rows. Exactly one of fold, events and derive is set. The engine
// writes every projection the same way, live or rebuilding; adding a column
// means adding it to the table's columns and to the rows the projection
// gives.
type projection struct {
	name string
	// tables are the tables the projection owns; a rebuild recreates and
	// swaps exactly these.
	tables []table
	// fold, for the customer-stream read models, turns a customer's folded
	// stream into rows.
	fold *foldDef
	// events, for the read models that are a function of single events
	// read as typed domain events (decoded by domain.DecodeEvent, the one
	// upcasting point), gives the rows of one event of eventTypes. Rows are
	// only ever added, keyed so that adding one again changes nothing.
	events     func(out rowSink, env *envelope, e domain.Event)
	eventTypes []string
	// derive, for the read models that are a function of single events
	// without knowing their types' fields, is an INSERT ... SELECT ...
	// FROM %s e whose %s the engine fills with the relation of the batch's
	// events, one of the event store's SQL read functions (a live batch's
	// ledger_events_between, a rebuild's range of positions).
	derive string
	// deriveTypes, when set, are the only event types derive makes rows of:
	// a batch without them writes nothing but the checkpoint.
	deriveTypes []string
	// grow, for read models that depend on what came before them in
	// commit order (the ledger log's tree), reads what it needs in the
	// batch's transaction and adds its writes for the events in (from,
	// end] to the batch's statement. A rebuild applies it from the first
	// event through the same path.
	grow func(ctx context.Context, tx queryer, w *stmt, from, end eventstore.Cursor) error
	// load, for a grow read model, fills its rebuild tables (schema) in
	// one pass with every event of the transactions below xmin0, as grow
	// would have applied them one batch after another: the rebuild then
	// catches up from C0 through grow. Without it a rebuild applies grow
	// from the first event.
	load func(ctx context.Context, pool *pgxpool.Pool, schema, xmin0 string) error
}

// table is one table of a read model.
type table struct {
	name string
	// columns are in the order the projection's rows give them.
	columns []string
	// key is the primary key.
	key []string
	// partial marks a table of which a fold gives only the rows that may
	// have changed since it was last written: a row missing from the
	// fold's rows is not gone, only one it removes (foldSink.remove) is.
	// A customer's batch then costs what changed, not its whole history:
	// the stretches (a closed one never changes again, so the fold forgets
	// it once written) and the follow-ups (those the batch changed).
	partial bool
}

// foldDef is how a customer-stream read model makes its rows. The fold
// read models are one group: one engine writes them from one fold of each
// customer, in one statement, and a rebuild of any of them rebuilds them
// all (selectProjections). So they have applied the same version of every
// customer, and one place records it for them all (foldVersions in
// refold.go), rather than a version row per read model per event.
type foldDef struct {
	// rows, when set, gives the customer's current rows.
	rows func(out foldSink, c *customerState)
	// stretches, when set, gives the rows of the stretches ss of members
	// on the customer's team: a live batch passes the open ones and those
	// closed since the fold was last written, a rebuild's bulk load those
	// closed as they close and the open ones at the end.
	stretches func(out foldSink, c *customerState, ss []*stretch)
}

// rowSink receives a projection's rows: the engine's diff for live
// batches, COPY for a rebuild's bulk load.
type rowSink interface {
	add(table string, row ...any)
}

// foldSink receives a fold's rows. remove says that the row with row's
// key is gone from a partial table, where a row the fold does not give
// may still be there (table.partial).
type foldSink interface {
	rowSink
	remove(table string, row ...any)
}

// decodes reports whether the projection is made from decoded events (a
// fold or events): its engine reads every field of an event.
func (p *projection) decodes() bool { return p.fold != nil || p.events != nil }

// wants reports whether the projection makes rows of events of type typ.
func (p *projection) wants(typ string) bool {
	switch {
	case p.fold != nil:
		return isCustomerEvent(typ)
	case p.events != nil:
		return slices.Contains(p.eventTypes, typ)
	}
	return false
}

func (p *projection) tableNames() []string {
	out := make([]string, len(p.tables))
	for i, t := range p.tables {
		out[i] = t.name
	}
	return out
}

func tablesOf(ps []*projection) map[string]*table {
	out := map[string]*table{}
	for _, p := range ps {
		for i := range p.tables {
			out[p.tables[i].name] = &p.tables[i]
		}
	}
	return out
}

// all returns every projection, in a fixed order.
func all() []*projection {
	return []*projection{myClientsProjection(), customerListProjection(), assignmentIntervalsProjection(),
		auditLogProjection(), notificationsProjection(), groupsProjection(), ledgerTreeProjection(),
		viewsProjection()}
}

// AllNames lists every projection.
func AllNames() []string { return names(all()) }

func names(ps []*projection) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.name)
	}
	return out
}

// selectProjections resolves names ("all" or none meaning every projection),
// in the fixed order of all. A fold read model comes with the others: they
// are applied and rebuilt as one (foldDef).
func selectProjections(want []string) ([]*projection, error) {
	every := all()
	if len(want) == 0 || slices.Contains(want, "all") {
		return every, nil
	}
	folds := false
	for _, n := range want {
		i := slices.IndexFunc(every, func(p *projection) bool { return p.name == n })
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrUnknownProjection, n)
		}
		folds = folds || every[i].fold != nil
	}
	return slices.DeleteFunc(every, func(p *projection) bool {
		return !slices.Contains(want, p.name) && !(folds && p.fold != nil)
	}), nil
}
