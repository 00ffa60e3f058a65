package projections

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/sync/errgroup"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// ErrRebuildRunning is returned when another rebuild of the same projection
// is in progress (in any process).
var ErrRebuildRunning = errors.New("a rebuild of this projection is already running")

// Rebuild sizes: big enough to be fast, small enough that no transaction is
// long (a writing transaction holds back every subscriber's snapshot xmin).
const (
	rebuildRangeSize = 100_000 // events per set-based INSERT
	rebuildFoldBatch = 50_000  // positions read per fold query
	rebuildCopyRows  = 50_000  // rows per COPY
	rebuildCatchUp   = 10_000  // events per catch-up transaction
	// CREATE INDEX statements of one table run at once.
	rebuildIndexesPerTable = 2
	rebuildSwapTries       = 10
	rebuildLockWait        = "1s"
	rebuildAdvisoryNS      = "ledger_rebuild:"
)

// rebuildSchema is where a projection's new tables are built. Building them
// in a schema of their own, under their final names, keeps index and
// constraint names identical to the live ones after the swap, and lets the
// live handlers' SQL (unqualified table names) write to them through
// search_path during catch-up.
func rebuildSchema(name string) string { return "rebuild_" + name }

// Rebuild rebuilds the named projection ("all" for every one) from the event
// store while the live one keeps serving: new tables are built beside the
// live ones from a bulk read of the events, committed in batches, caught up,
// and swapped in with the checkpoint in one short transaction that holds the
// projection's checkpoint lock (pausing its live handler meanwhile).
// progress, if not nil, is called now and then with events done and total.
// It works from any process; the Runner need not be running.
func (r *Runner) Rebuild(ctx context.Context, name string, progress func(done, total int64)) error {
	ps, err := selectProjections([]string{name})
	if err != nil {
		return err
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	db := stdlib.OpenDBFromPool(r.pool)
	defer db.Close()
	b := &rebuilder{pool: r.pool, db: db, log: r.log, keys: r.keys, ps: ps, progress: progress, vacuumOff: map[string]bool{}}
	return b.run(ctx)
}

type rebuilder struct {
	pool     *pgxpool.Pool
	keys     *keyring.Keyring
	db       *sql.DB
	log      *slog.Logger
	ps       []*projection
	progress func(done, total int64)

	// vacuumOff are the tables whose rebuild copies prepare built with
	// autovacuum off, and swap turns it back on.
	vacuumOff map[string]bool

	done, total atomic.Int64
	progressMu  sync.Mutex
}

func (b *rebuilder) report(n int64) {
	b.progressMu.Lock()
	defer b.progressMu.Unlock()
	b.progress(b.done.Add(n), b.total.Load())
}

const (
	qTryAdvisory    = `SELECT pg_try_advisory_lock(hashtext($1))`
	qUnlockAdvisory = `SELECT pg_advisory_unlock(hashtext($1))`
	qSnapshotXmin   = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`
	// The events are read through the event store's SQL read interface
	// (migration event_log_reads), never the events table itself.
	qLastBelowXmin = `SELECT e.transaction_id::text, e.position FROM ledger_events_below($1::text::xid8) e ORDER BY e.transaction_id DESC, e.position DESC LIMIT 1`
	qMaxPosition   = `SELECT ledger_head_position()`
	// Logged from the start: loading an UNLOGGED table and then SET LOGGED
	// rewrites the whole heap once more (measured: twice the cost of loading
	// a logged table). The bulk transactions commit without waiting for their
	// WAL flush (qAsyncCommit: nothing depends on them until the swap, whose
	// own commit flushes it all).
	qCreateLike      = `CREATE TABLE %s.%s (LIKE public.%s INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING STORAGE)`
	qTableOptions    = `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = ('public.' || $1)::regclass`
	qTableConstraint = `SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = ('public.' || $1)::regclass AND contype IN ('p', 'u') ORDER BY conname`
	qTableIndexes = `SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
WHERE i.indrelid = ('public.' || $1)::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY i.indexrelid`
	// The select lists name transaction_id::text "transaction_id", and an
	// ORDER BY name means the output column: ordering by it unqualified
	// sorts transaction ids as text ("1000" before "974"), so every ORDER
	// BY here names e.transaction_id.
	qReadAfter = `SELECT e.position, e.transaction_id::text, e.tenant_id::text, e.stream_id::text, e.stream_version,
       e.type, e.schema_version, e.data, e.recorded_at
FROM ledger_events_after($1::text::xid8, $2) e
WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.transaction_id, e.position
LIMIT $3`
	// The live subscriber's own claim (migration 0006): it pauses the live
	// handler between its batches.
	qLockCheckpoint = `SELECT last_transaction_id::text, last_position FROM ledger_checkpoint_claim($1)`
	// The epoch tells live handlers their tables were swapped (migration 0009).
	qSetCheckpoint = `UPDATE projection_checkpoints SET last_transaction_id = $2::text::xid8, last_position = $3,
    tables_epoch = tables_epoch + 1, updated_at = now() WHERE consumer_group = $1`
)

func (b *rebuilder) run(ctx context.Context) (err error) {
	started := time.Now()
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer conn.Release()
	for _, p := range b.ps {
		var ok bool
		if err := conn.QueryRow(ctx, qTryAdvisory, rebuildAdvisoryNS+p.name).Scan(&ok); err != nil {
			return fmt.Errorf("rebuild %s: lock: %w", p.name, err)
		}
		if !ok {
			return fmt.Errorf("rebuild %s: %w", p.name, ErrRebuildRunning)
		}
		defer conn.Exec(context.WithoutCancel(ctx), qUnlockAdvisory, rebuildAdvisoryNS+p.name) //nolint:errcheck
	}
	// A rebuild that fails leaves no copy of the read models behind, under
	// its locks still: they hold customers' names and e-mails, which an
	// erasure afterwards would not reach.
	defer func() {
		if err != nil {
			b.dropSchemas(context.WithoutCancel(ctx))
		}
	}()

	for _, p := range b.ps {
		if err := b.prepare(ctx, p); err != nil {
			return err
		}
	}

	// The bound of the bulk read: every event of a transaction below xmin0
	// is committed, C0 is the last of them, and the rebuilt projections will
	// resume from C0.
	var xmin0 string
	if err := b.pool.QueryRow(ctx, qSnapshotXmin).Scan(&xmin0); err != nil {
		return fmt.Errorf("rebuild: snapshot: %w", err)
	}
	c0, err := lastBelow(ctx, b.pool, xmin0)
	if err != nil {
		return fmt.Errorf("rebuild: bound: %w", err)
	}
	var maxPos int64
	if err := b.pool.QueryRow(ctx, qMaxPosition).Scan(&maxPos); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}

	// The fold and event projections share one read and decode of the
	// events (bulkFold); the SQL derivations read for themselves; a read
	// model that grows on what came before is built by catch-up.
	var folds, sqls, grows []*projection
	for _, p := range b.ps {
		switch {
		case p.decodes():
			folds = append(folds, p)
		case p.grow != nil:
			grows = append(grows, p)
		default:
			sqls = append(sqls, p)
		}
	}
	// Progress counts positions read, by each derivation and by the fold.
	total := maxPos * int64(len(sqls))
	if len(folds) > 0 {
		total += maxPos
	}
	b.total.Store(total)
	b.report(0)

	// Each projection: bulk load, then indexes (faster built once than
	// maintained), catch-up and swap. They all run side by side, so one
	// projection's index build overlaps another's bulk load; the fold
	// projections share one fold, and are caught up and swapped as one
	// (foldDef: they share one record of the versions applied).
	finish := func(ctx context.Context, unit []*projection, loaded, indexed time.Time) error {
		t1 := time.Now()
		from := c0
		if len(unit) == 1 && unit[0].grow != nil && unit[0].load == nil {
			// A read model that depends on what came before and has no
			// bulk load is built by catch-up from the first event, in
			// commit order, through the live write path.
			from = eventstore.Cursor{}
		}
		cur, err := b.catchUp(ctx, unit, from)
		if err != nil {
			return err
		}
		t2 := time.Now()
		err = b.swap(ctx, unit, cur)
		b.log.Debug("rebuild phase", slog.Any("projections", names(unit)),
			slog.Duration("bulk", loaded.Sub(started)), slog.Duration("index", indexed.Sub(loaded)),
			slog.Duration("catch_up", t2.Sub(t1)), slog.Duration("swap", time.Since(t2)))
		return err
	}
	indexAndFinish := func(ctx context.Context, p *projection, loaded time.Time) error {
		if err := b.index(ctx, p); err != nil {
			return err
		}
		return finish(ctx, []*projection{p}, loaded, time.Now())
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range sqls {
		g.Go(func() error {
			if err := b.bulkSQL(gctx, p, maxPos, xmin0); err != nil {
				return err
			}
			return indexAndFinish(gctx, p, time.Now())
		})
	}
	for _, p := range grows {
		g.Go(func() error {
			if p.load != nil {
				if err := p.load(gctx, b.pool, rebuildSchema(p.name), xmin0); err != nil {
					return fmt.Errorf("rebuild %s: bulk load: %w", p.name, err)
				}
			}
			return indexAndFinish(gctx, p, time.Now())
		})
	}
	if len(folds) > 0 {
		g.Go(func() error {
			// The fold read models' indexes are built as each is
			// loaded; the event projections riding along finish alone.
			unit := slices.DeleteFunc(slices.Clone(folds), func(p *projection) bool { return p.fold == nil })
			ig, igctx := errgroup.WithContext(gctx)
			err := b.bulkFold(gctx, folds, maxPos, func(p *projection) {
				loaded := time.Now()
				if p.fold == nil {
					g.Go(func() error { return indexAndFinish(gctx, p, loaded) })
					return
				}
				ig.Go(func() error { return b.index(igctx, p) })
			})
			loaded := time.Now()
			if ierr := ig.Wait(); err == nil {
				err = ierr
			}
			if err != nil || len(unit) == 0 {
				return err
			}
			return finish(gctx, unit, loaded, time.Now())
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	b.progressMu.Lock()
	b.progress(b.total.Load(), b.total.Load())
	b.progressMu.Unlock()
	b.log.Info("projections rebuilt", slog.Any("projections", names(b.ps)), slog.Duration("took", time.Since(started)))
	return nil
}

// lastBelow is the cursor of the last event, in subscriber order, of a
// transaction below xmin (the zero cursor when there is none).
func lastBelow(ctx context.Context, pool *pgxpool.Pool, xmin string) (eventstore.Cursor, error) {
	var c eventstore.Cursor
	var tx string
	err := pool.QueryRow(ctx, qLastBelowXmin, xmin).Scan(&tx, &c.Position)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return eventstore.Cursor{}, nil
	case err != nil:
		return eventstore.Cursor{}, err
	}
	if c.TransactionID, err = strconv.ParseUint(tx, 10, 64); err != nil {
		return eventstore.Cursor{}, err
	}
	return c, nil
}

// dropSchemas drops the rebuild schemas of the projections being rebuilt
// (those already swapped in are gone); it logs what it could not drop,
// which the next rebuild of the projection drops.
func (b *rebuilder) dropSchemas(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, p := range b.ps {
		schema := pgx.Identifier{rebuildSchema(p.name)}.Sanitize()
		if _, err := b.pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			b.log.Error("rebuild: the failed rebuild's tables are left behind; the next rebuild drops them",
				slog.String("schema", rebuildSchema(p.name)), slog.Any("err", err))
		}
	}
}

// prepare (re)creates the projection's rebuild schema with empty tables
// shaped like the live ones, without indexes yet.
func (b *rebuilder) prepare(ctx context.Context, p *projection) error {
	schema := pgx.Identifier{rebuildSchema(p.name)}.Sanitize()
	stmts := []string{`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`, `CREATE SCHEMA ` + schema}
	for _, t := range p.tableNames() {
		id := pgx.Identifier{t}.Sanitize()
		stmts = append(stmts, fmt.Sprintf(qCreateLike, schema, id, id))
		// Storage parameters (customer_list's fillfactor, migration 0008)
		// are not copied by LIKE.
		var opts []string
		if err := b.pool.QueryRow(ctx, qTableOptions, t).Scan(&opts); err != nil {
			return fmt.Errorf("rebuild %s: read storage parameters: %w", p.name, err)
		}
		// Autovacuum stays off until the swap: a freshly loaded table
		// qualifies at once, and a VACUUM started mid-rebuild takes the
		// CPU the rebuild needs (the swapped-in table is vacuumed after).
		if !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "autovacuum_enabled=") }) {
			opts = append(opts, "autovacuum_enabled=false")
			b.vacuumOff[t] = true
		}
		stmts = append(stmts, `ALTER TABLE `+schema+`.`+id+` SET (`+strings.Join(opts, ", ")+`)`)
	}
	for _, s := range stmts {
		if _, err := b.pool.Exec(ctx, s); err != nil {
			return fmt.Errorf("rebuild %s: prepare: %w", p.name, err)
		}
	}
	return nil
}

// inRebuildSchema runs fn in a transaction whose unqualified table names
// resolve to the projection's rebuild tables first.
func (b *rebuilder) inRebuildSchema(ctx context.Context, unit []*projection, fn func(tx *sql.Tx) error) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path = `+rebuildSearchPath(unit)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, qAsyncCommit); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// bulkSQL fills a derived projection range by range, one transaction
// each. The tables have no indexes yet, and the ranges are disjoint: no ON
// CONFLICT (it would need the primary key).
func (b *rebuilder) bulkSQL(ctx context.Context, p *projection, maxPos int64, xmin0 string) error {
	q := fmt.Sprintf(p.derive, `(SELECT * FROM ledger_events_in_positions($1, $2) r WHERE r.transaction_id < $3::text::xid8)`)
	for lo := int64(0); lo < maxPos; lo += rebuildRangeSize {
		hi := min(lo+rebuildRangeSize, maxPos)
		err := b.inRebuildSchema(ctx, []*projection{p}, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, q, lo, hi, xmin0)
			return err
		})
		if err != nil {
			return fmt.Errorf("rebuild %s: bulk insert: %w", p.name, err)
		}
		b.report(hi - lo)
	}
	return nil
}

const qFoldRead = `SELECT e.position, e.tenant_id::text, e.stream_id::text, e.stream_version, e.type, e.schema_version, e.data,
       ` + keyring.WrappedKeySQL + `, e.recorded_at
FROM ledger_events_in_positions($1, $2) e
WHERE e.type = ANY($3)
ORDER BY e.position`

// bulkFold folds every customer's stream and copies the resulting rows into
// the rebuild tables of the fold projections. It reads the events in
// position order, which is each stream's version order, in ranges (the
// table's physical order: no random reads), keeping every customer's
// current state in memory and copying closed stretches as they close.
// It reads whatever is committed up to maxPos, possibly past C0: the fold
// projections skip what they already have (stream versions), so catch-up
// from C0 stays exact.
//
// Three stages overlap: the reader scans, this goroutine decodes (on every
// core) and folds, copiers COPY full buffers. At the end each projection's
// rows are made in turn, on every core, and loaded is called for it once
// they are copied, so its indexes are built while the next one's rows are
// made.
//
// Event projections (notifications) ride along: their rows are made from
// the same decoded events as they are read, and copied with the fold's.
// Every event read is made rows of once; one past C0 is made again by the
// catch-up, whose insert then finds it there.
func (b *rebuilder) bulkFold(ctx context.Context, all []*projection, maxPos int64, loaded func(*projection)) error {
	defer relaxGC()()
	var ps, evps []*projection // folds, event projections
	var types []string
	for _, p := range all {
		if p.fold != nil {
			ps = append(ps, p)
		} else {
			evps = append(evps, p)
		}
	}
	for _, typ := range append(slices.Clone(customerEventTypes), eventTypesOf(evps)...) {
		if slices.ContainsFunc(all, func(p *projection) bool { return p.wants(typ) }) && !slices.Contains(types, typ) {
			types = append(types, typ)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	sink := newCopySink(gctx, b.pool, all, g)
	evSink := sink.fork()
	batches := make(chan []*envelope, 2)
	g.Go(func() error {
		defer close(batches)
		for lo := int64(0); lo < maxPos; lo += rebuildFoldBatch {
			hi := min(lo+rebuildFoldBatch, maxPos)
			batch, err := b.readFoldBatch(gctx, lo, hi, types)
			if err != nil {
				return err
			}
			select {
			case batches <- batch:
				b.report(hi - lo)
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	customers := map[string]*foldCustomer{}
	var foldErr error
	t0 := time.Now()
	var waitRead, waitCopy time.Duration
	for {
		tw := time.Now()
		read, ok := <-batches
		waitRead += time.Since(tw)
		if !ok {
			break
		}
		if foldErr != nil {
			continue // drain, so the reader can stop
		}
		batch, err := decodeAll(b.keys, read)
		if err != nil {
			foldErr = err
			continue
		}
		// The event projections' rows are made beside the fold, off its
		// path, into buffers of their own.
		var made sync.WaitGroup
		if len(evps) > 0 {
			made.Go(func() {
				for _, d := range batch {
					for _, p := range evps {
						if p.wants(d.env.Type) {
							p.events(evSink, d.env, d.event)
						}
					}
				}
			})
		}
		for _, d := range batch {
			d.env.Data = nil // decoded; the folds need only the event
			if len(ps) == 0 || !isCustomerEvent(d.env.Type) {
				continue
			}
			fc := customers[d.env.StreamID]
			if fc == nil {
				fc = &foldCustomer{state: customerState{ID: d.env.StreamID, TenantID: d.env.TenantID}, stretches: newStretchFold()}
				customers[d.env.StreamID] = fc
			}
			// A missing version belongs to a transaction still running when
			// xmin0 was taken or begun after, so it is past C0 and catch-up
			// will apply it.
			if fc.frozen || d.env.StreamVersion != fc.state.Version+1 {
				fc.frozen = true
				continue
			}
			fc.advance(d)
			if closed := fc.stretches.takeClosed(); closed != nil {
				for _, p := range ps {
					if p.fold.stretches != nil {
						p.fold.stretches(sink, &fc.state, closed)
					}
				}
			}
		}
		made.Wait()
		if foldErr == nil {
			tf := time.Now()
			foldErr = sink.flushFull(gctx)
			if foldErr == nil {
				foldErr = evSink.flushFull(gctx)
			}
			waitCopy += time.Since(tf)
		}
	}
	tRead := time.Now()
	if foldErr == nil {
		foldErr = sink.flush(gctx) // the stretches closed last
	}
	if foldErr == nil {
		foldErr = evSink.flush(gctx) // the event projections' last rows
	}
	if foldErr == nil {
		for _, p := range evps {
			g.Go(func() error {
				for _, t := range p.tables {
					sink.tables[t.name].pending.Wait()
				}
				if gctx.Err() == nil {
					loaded(p)
				}
				return nil
			})
		}
	}
	if foldErr == nil {
		foldErr = b.emitFinal(gctx, g, sink, ps, slices.Collect(maps.Values(customers)), loaded)
	}
	tEmit := time.Now()
	sink.close()
	err := g.Wait()
	b.log.Debug("rebuild fold", slog.Duration("read_fold", tRead.Sub(t0)), slog.Duration("wait_read", waitRead), slog.Duration("wait_copy", waitCopy),
		slog.Duration("final_emit", tEmit.Sub(tRead)), slog.Duration("copy_tail", time.Since(tEmit)))
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if foldErr != nil {
		return fmt.Errorf("rebuild: %w", foldErr)
	}
	return nil
}

// emitFinal makes every customer's current rows (and remaining stretches),
// one projection after the other, those with more tables (more to index)
// first: the customer list, whose trigram index is the longest build. Each
// is made on every core and handed to loaded, from a goroutine of g, once
// its rows are copied.
func (b *rebuilder) emitFinal(ctx context.Context, g *errgroup.Group, sink *copySink, ps []*projection,
	customers []*foldCustomer, loaded func(*projection)) error {
	ps = slices.Clone(ps)
	slices.SortStableFunc(ps, func(a, b *projection) int { return len(b.tables) - len(a.tables) })
	shards := runtime.GOMAXPROCS(0)
	for _, p := range ps {
		eg, ectx := errgroup.WithContext(ctx)
		for i := range shards {
			eg.Go(func() error {
				out := sink.fork()
				for k := i; k < len(customers); k += shards {
					fc := customers[k]
					if p.fold.stretches != nil {
						p.fold.stretches(out, &fc.state, fc.stretches.all)
					}
					if p.fold.rows != nil {
						p.fold.rows(out, &fc.state)
					}
					if err := out.flushFull(ectx); err != nil {
						return err
					}
				}
				return out.flush(ectx)
			})
		}
		if err := eg.Wait(); err != nil {
			return err
		}
		g.Go(func() error {
			for _, t := range p.tables {
				sink.tables[t.name].pending.Wait()
			}
			if ctx.Err() == nil {
				loaded(p)
			}
			return nil
		})
	}
	return nil
}

// foldGCPercent is the GOGC the fold runs with: it allocates fast and keeps
// little alive, so the default collects far more often than it needs to.
const foldGCPercent = 400

// relaxGC raises the GC target for the fold (unless GC is off or already
// more relaxed) and returns what restores it.
func relaxGC() (restore func()) {
	old := debug.SetGCPercent(foldGCPercent)
	if old < 0 || old > foldGCPercent {
		debug.SetGCPercent(old)
	}
	return func() { debug.SetGCPercent(old) }
}

// eventTypesOf lists the event types the event projections make rows of.
func eventTypesOf(ps []*projection) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.eventTypes...)
	}
	return out
}

func (b *rebuilder) readFoldBatch(ctx context.Context, lo, hi int64, types []string) ([]*envelope, error) {
	rows, err := b.pool.Query(ctx, qFoldRead, lo, hi, types)
	if err != nil {
		return nil, fmt.Errorf("read customer events: %w", err)
	}
	defer rows.Close()
	out := make([]*envelope, 0, hi-lo)
	envs := make([]envelope, hi-lo)
	for rows.Next() {
		if len(out) == len(envs) {
			envs = append(envs, envelope{})
			envs = envs[:cap(envs)]
		}
		env := &envs[len(out)]
		var schema int32
		if err := rows.Scan(&env.Position, &env.TenantID, &env.StreamID, &env.StreamVersion, &env.Type,
			&schema, &env.Data, &env.Key, &env.RecordedAt); err != nil {
			return nil, fmt.Errorf("read customer events: %w", err)
		}
		env.SchemaVersion = int(schema)
		out = append(out, env)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read customer events: %w", err)
	}
	return out, nil
}

// index gives the rebuild tables the live tables' constraints and indexes,
// under the same names, and fresh planner statistics. The tables are done
// side by side, and so are a table's plain indexes (CREATE INDEX takes a
// lock that does not conflict with itself): a GIN build uses one core, so
// two of them, or one beside another table's, keep both cores busy.
func (b *rebuilder) index(ctx context.Context, p *projection) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, t := range p.tableNames() {
		g.Go(func() error { return b.indexTable(gctx, p, t) })
	}
	return g.Wait()
}

func (b *rebuilder) indexTable(ctx context.Context, p *projection, t string) error {
	schema := pgx.Identifier{rebuildSchema(p.name)}.Sanitize()
	id := pgx.Identifier{t}.Sanitize()
	constraints, err := queryAll(ctx, b.pool, func(row pgx.CollectableRow) (string, error) {
		var name, def string
		err := row.Scan(&name, &def)
		return `ALTER TABLE ` + schema + `.` + id + ` ADD CONSTRAINT ` + pgx.Identifier{name}.Sanitize() + ` ` + def, err
	}, qTableConstraint, t)
	if err != nil {
		return fmt.Errorf("rebuild %s: read constraints: %w", p.name, err)
	}
	defs, err := queryAll(ctx, b.pool, pgx.RowTo[string], qTableIndexes, t)
	if err != nil {
		return fmt.Errorf("rebuild %s: read indexes: %w", p.name, err)
	}
	var indexes []string
	for _, def := range defs {
		live := " ON public." + t + " "
		if !strings.Contains(def, live) {
			return fmt.Errorf("rebuild %s: unexpected index definition %q", p.name, def)
		}
		indexes = append(indexes, strings.Replace(def, live, " ON "+schema+"."+id+" ", 1))
	}
	exec := func(ctx context.Context, s string) error {
		if err := b.execWithMemory(ctx, s); err != nil {
			return fmt.Errorf("rebuild %s: %s: %w", p.name, s, err)
		}
		return nil
	}
	// Constraints lock the table exclusively: one after the other, first.
	for _, s := range constraints {
		if err := exec(ctx, s); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rebuildIndexesPerTable)
	for _, s := range indexes {
		g.Go(func() error { return exec(gctx, s) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return exec(ctx, `ANALYZE `+schema+`.`+id)
}

// execWithMemory runs a statement building an index with memory enough
// to sort in one pass, and without parallel workers: the rebuild builds
// several indexes at once beside its other work, so the cores are busy
// already and workers only add their coordination (measured: 0.5 s less
// PostgreSQL CPU over a 1M rebuild without them).
func (b *rebuilder) execWithMemory(ctx context.Context, stmt string) error {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, `SET LOCAL maintenance_work_mem = '256MB'; SET LOCAL max_parallel_maintenance_workers = 0`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, stmt); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// readAfter reads up to limit events after cur below the snapshot xmin, in
// subscriber order.
func readAfter(ctx context.Context, q queryer, cur eventstore.Cursor, limit int) ([]*envelope, error) {
	rows, err := q.QueryContext(ctx, qReadAfter, strconv.FormatUint(cur.TransactionID, 10), cur.Position, limit)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []*envelope
	for rows.Next() {
		var e envelope
		var txid string
		if err := rows.Scan(&e.Position, &txid, &e.TenantID, &e.StreamID, &e.StreamVersion, &e.Type,
			&e.SchemaVersion, &e.Data, &e.RecordedAt); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		if e.TransactionID, err = strconv.ParseUint(txid, 10, 64); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// catchUp applies the events after cur to the rebuild tables through the
// engine, as a live batch would be (without checkpoints), a batch per
// transaction, until it is near the head.
func (b *rebuilder) catchUp(ctx context.Context, unit []*projection, cur eventstore.Cursor) (eventstore.Cursor, error) {
	eng := newEngine(unit, nil, b.keys)
	for {
		var n int
		err := b.inRebuildSchema(ctx, unit, func(tx *sql.Tx) error {
			var err error
			cur, n, err = applyAfter(ctx, tx, eng, unit, cur)
			return err
		})
		if err != nil {
			return cur, fmt.Errorf("rebuild %s: catch up: %w", strings.Join(names(unit), ", "), err)
		}
		if n < rebuildCatchUp {
			return cur, nil
		}
	}
}

// applyAfter applies one batch of the events after cur to the unit's
// rebuild tables, and returns where it ended and how many events it read.
func applyAfter(ctx context.Context, tx queryer, eng *engine, unit []*projection, cur eventstore.Cursor) (eventstore.Cursor, int, error) {
	evs, err := readAfter(ctx, tx, cur, rebuildCatchUp)
	if err != nil || len(evs) == 0 {
		return cur, 0, err
	}
	after := make(map[string]eventstore.Cursor, len(unit))
	for _, p := range unit {
		after[p.name] = cur
	}
	if err := eng.apply(ctx, tx, evs, after, nil, false); err != nil {
		return cur, 0, err
	}
	return evs[len(evs)-1].cursor(), len(evs), nil
}

// rebuildSearchPath makes the unit's rebuild tables what unqualified table
// names resolve to, the other tables the live ones.
func rebuildSearchPath(unit []*projection) string {
	var path []string
	for _, p := range unit {
		path = append(path, pgx.Identifier{rebuildSchema(p.name)}.Sanitize())
	}
	return strings.Join(append(path, "public"), ", ")
}

// swap applies the last events and swaps the tables in one transaction that
// holds the unit's checkpoint locks, so the live handler is paused between
// its batches and resumes on the new tables from the new checkpoints. A
// lock wait on a busy table gives up after a few seconds and the swap is
// retried, rather than queueing every reader behind it.
func (b *rebuilder) swap(ctx context.Context, unit []*projection, cur eventstore.Cursor) error {
	var err error
	for try := 1; try <= rebuildSwapTries; try++ {
		var swapped eventstore.Cursor
		swapped, err = b.swapOnce(ctx, unit, cur)
		if err == nil {
			b.log.Info("projection swapped", slog.Any("projections", names(unit)), slog.Int64("position", swapped.Position))
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" || ctx.Err() != nil {
			break
		}
		b.log.Warn("projection swap waited too long for a lock; retrying", slog.Any("projections", names(unit)), slog.Int("try", try))
	}
	return fmt.Errorf("rebuild %s: swap: %w", strings.Join(names(unit), ", "), err)
}

func (b *rebuilder) swapOnce(ctx context.Context, unit []*projection, cur eventstore.Cursor) (eventstore.Cursor, error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return cur, err
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '`+rebuildLockWait+`'`); err != nil {
		return cur, err
	}
	// Claimed in the order of all, as the live engine claims them.
	var live eventstore.Cursor
	for _, p := range unit {
		var liveTx string
		var c eventstore.Cursor
		if err := tx.QueryRowContext(ctx, qLockCheckpoint, p.name).Scan(&liveTx, &c.Position); err != nil {
			return cur, fmt.Errorf("lock checkpoint of %s: %w", p.name, err)
		}
		if c.TransactionID, err = strconv.ParseUint(liveTx, 10, 64); err != nil {
			return cur, err
		}
		if live.Less(c) {
			live = c
		}
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path = `+rebuildSearchPath(unit)); err != nil {
		return cur, err
	}
	eng := newEngine(unit, nil, b.keys)
	for {
		var n int
		if cur, n, err = applyAfter(ctx, tx, eng, unit, cur); err != nil {
			return cur, err
		}
		if n < rebuildCatchUp {
			break
		}
	}
	// Every event up to the live checkpoint was below the xmin when the live
	// handler committed, so it is below ours too and the loop read it.
	if cur.Less(live) {
		return cur, fmt.Errorf("rebuilt projection at %v is behind the live one at %v", cur, live)
	}
	stmts := []string{`SET LOCAL search_path = public`}
	for _, p := range unit {
		schema := pgx.Identifier{rebuildSchema(p.name)}.Sanitize()
		for _, t := range p.tableNames() {
			id := pgx.Identifier{t}.Sanitize()
			stmts = append(stmts, `DROP TABLE public.`+id, `ALTER TABLE `+schema+`.`+id+` SET SCHEMA public`)
			if b.vacuumOff[t] {
				stmts = append(stmts, `ALTER TABLE public.`+id+` RESET (autovacuum_enabled)`)
			}
		}
		stmts = append(stmts, `DROP SCHEMA `+schema)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return cur, err
		}
	}
	for _, p := range unit {
		// The swapped-in tables were made by LIKE, which copies no grant,
		// row-level security or policy: the read models' visibility is
		// applied to them again (docs/ARCHITECTURE.md, "Visibility").
		for _, t := range p.tableNames() {
			if _, err := tx.ExecContext(ctx, `SELECT ledger_apply_visibility($1)`, t); err != nil {
				return cur, fmt.Errorf("apply visibility to %s: %w", t, err)
			}
		}
		if _, err := tx.ExecContext(ctx, qSetCheckpoint, p.name, strconv.FormatUint(cur.TransactionID, 10), cur.Position); err != nil {
			return cur, err
		}
	}
	return cur, tx.Commit()
}

// copySink buffers rows per table and hands full buffers to copier
// goroutines, which COPY them into a rebuild schema, one COPY (and
// transaction) per buffer. Forks share the copiers and buffer apart, for
// goroutines making rows side by side.
type copySink struct {
	tables map[string]*copyTable
	jobs   chan copyJob
}

type copyTable struct {
	id      pgx.Identifier
	columns []string
	rows    [][]any
	// pending counts the table's buffers handed over and not yet copied
	// (shared by the forks).
	pending *sync.WaitGroup
}

type copyJob struct {
	t    *copyTable
	rows [][]any
}

// copiers COPY side by side.
const copiers = 2

// newCopySink starts its copiers in g; close ends them.
func newCopySink(ctx context.Context, pool *pgxpool.Pool, ps []*projection, g *errgroup.Group) *copySink {
	s := &copySink{tables: map[string]*copyTable{}, jobs: make(chan copyJob, copiers)}
	for _, p := range ps {
		for _, t := range p.tables {
			s.tables[t.name] = &copyTable{id: pgx.Identifier{rebuildSchema(p.name), t.name}, columns: t.columns, pending: &sync.WaitGroup{}}
		}
	}
	for range copiers {
		g.Go(func() error {
			var failed error
			for job := range s.jobs {
				if failed == nil {
					if err := copyRows(ctx, pool, job); err != nil {
						failed = fmt.Errorf("copy into %s: %w", job.t.id.Sanitize(), err)
					}
				}
				job.t.pending.Done()
			}
			return failed
		})
	}
	return s
}

// fork returns a sink with buffers of its own that hands them to the same
// copiers.
func (s *copySink) fork() *copySink {
	f := &copySink{tables: map[string]*copyTable{}, jobs: s.jobs}
	for name, t := range s.tables {
		f.tables[name] = &copyTable{id: t.id, columns: t.columns, pending: t.pending}
	}
	return f
}

// copyRows copies one buffer in a transaction of its own.
func copyRows(ctx context.Context, pool *pgxpool.Pool, job copyJob) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, qAsyncCommit); err != nil {
		return err
	}
	data, err := copyData(job.rows)
	if err != nil {
		return err
	}
	q := "COPY " + job.t.id.Sanitize() + " (" + quoted(job.t.columns) + ") FROM STDIN BINARY"
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), q); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (s *copySink) add(table string, row ...any) {
	t := s.tables[table]
	t.rows = append(t.rows, row)
}

// remove has nothing to do: a bulk load fills empty tables, and a row a
// fold removes is one it does not give.
func (s *copySink) remove(string, ...any) {}

// flushFull hands over the tables whose buffers are full.
func (s *copySink) flushFull(ctx context.Context) error {
	for _, t := range s.tables {
		if len(t.rows) >= rebuildCopyRows {
			if err := s.send(ctx, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush hands over every buffer.
func (s *copySink) flush(ctx context.Context) error {
	for _, t := range s.tables {
		if err := s.send(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func (s *copySink) send(ctx context.Context, t *copyTable) error {
	if len(t.rows) == 0 {
		return nil
	}
	t.pending.Add(1)
	select {
	case s.jobs <- copyJob{t: t, rows: t.rows}:
		t.rows = nil
		return nil
	case <-ctx.Done():
		t.pending.Done()
		return ctx.Err()
	}
}

// close lets the copiers finish what they were handed and stop.
func (s *copySink) close() { close(s.jobs) }
