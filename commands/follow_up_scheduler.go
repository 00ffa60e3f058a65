package commands

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/assignment-ledger/ledger/projections"
)

// FollowUpScheduler records follow-ups as due when their time comes. It
// keeps no state of its own: what is still to fall due is in the follow_ups
// table of the customer_list read model (pending rows, found through a
// partial index), and each one
// is recorded by FollowUpFallsDue, a command on the customer's stream that
// writes FollowUpDue only if the stream, under its lock, says the
// follow-up is still pending and due. So any number of schedulers (every
// `serve` and `project` process runs one) may ask at once or again (a
// read model that has not caught up yet, a restart) and each follow-up
// falls due once; a process that was down finds everything that fell due
// meanwhile on start (late, never lost). Each recipient's notification is
// the notifications read model's row for that one event.
//
// It wakes at the next due time (a timer), on start, and at least every
// poll interval (a follow-up scheduled meanwhile, here or by another
// process, may be due sooner than the timer).
type FollowUpScheduler struct {
	cmd   *Commands
	q     *projections.Queries
	log   *slog.Logger
	clock func() time.Time
	poll  time.Duration
	batch int
}

// SchedulerOption configures a FollowUpScheduler.
type SchedulerOption func(*FollowUpScheduler)

// WithClock sets the scheduler's clock (tests move time instead of
// sleeping).
func WithClock(now func() time.Time) SchedulerOption {
	return func(s *FollowUpScheduler) { s.clock = now }
}

// NewFollowUpScheduler returns a scheduler over the follow_ups table (of the
// customer_list read model)
// read through q.
func (c *Commands) NewFollowUpScheduler(q *projections.Queries, opts ...SchedulerOption) *FollowUpScheduler {
	s := &FollowUpScheduler{cmd: c, q: q, log: c.log, clock: time.Now, poll: time.Second, batch: 200}
	for _, o := range opts {
		o(s)
	}
	return s
}

// RunOnce records every follow-up due by now as the read model knows it,
// and returns how many FollowUpDue events it wrote. A follow-up that fails
// does not hold up the others: the round goes on and returns the first
// error (the next round asks again).
func (s *FollowUpScheduler) RunOnce(ctx context.Context) (int, error) {
	fired := 0
	var first error
	for {
		at := s.clock().UTC()
		due, err := s.q.DueFollowUps(ctx, at, s.batch)
		if err != nil {
			return fired, errors.Join(first, err)
		}
		progress := false
		for _, d := range due {
			if ctx.Err() != nil {
				return fired, ctx.Err()
			}
			_, wrote, err := s.cmd.FollowUpFallsDue(ctx, d.TenantID, d.CustomerID, d.ID, at)
			if err != nil {
				first = cmp.Or(first, err)
				continue
			}
			if wrote {
				fired++
				progress = true
			}
		}
		// A full batch that wrote something may have more behind it; one
		// that wrote nothing lists rows the read model has not yet seen
		// fall due (or snoozed): the next round sees them settled.
		if len(due) < s.batch || !progress {
			return fired, first
		}
	}
}

// Run records follow-ups as due until ctx ends: at start, at each next due
// time, and at least every poll interval.
func (s *FollowUpScheduler) Run(ctx context.Context) error {
	for {
		fired, err := s.RunOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := s.poll
		if err != nil {
			s.log.WarnContext(ctx, "follow-up scheduler", slog.String("error", err.Error()))
		} else {
			if fired > 0 {
				s.log.DebugContext(ctx, "follow-ups fell due", slog.Int("count", fired))
			}
			if next, ok, err := s.q.NextDue(ctx); err == nil && ok {
				if d := next.Sub(s.clock()); d > 0 && d < wait {
					wait = d
				}
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
