package commands_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

type answer struct {
	res commands.CustomerResult
	err error
}

// inOneGroup queues the commands one after the other (in that order)
// while the committers are held, then lets them go as one group, and
// returns their answers in order. It checks that they made exactly one
// transaction.
func inOneGroup(t *testing.T, cmd *commands.Commands, cmds ...func() (commands.CustomerResult, error)) []answer {
	t.Helper()
	before := cmd.GroupStats()
	cmd.HoldGroups()
	out := make([]answer, len(cmds))
	var wg sync.WaitGroup
	for i, run := range cmds {
		wg.Go(func() {
			out[i].res, out[i].err = run()
		})
		// Wait until it queued, so the group's order is the list's.
		for cmd.Queued() < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	cmd.ReleaseGroups()
	wg.Wait()
	got := cmd.GroupStats().Sub(before)
	if got.Groups() != 1 || got.Commands() != uint64(len(cmds)) {
		t.Fatalf("%d commands made %d group(s) of %d commands in all, want one", len(cmds), got.Groups(), got.Commands())
	}
	return out
}

// Two commands on one customer in one group: the second decides on what
// the first left (MakeTeamLead of a user the same group assigned).
func TestGroupCommandsOnOneCustomerSeeEachOther(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c := b.customer(t)
	u := b.users(t, 2)
	got := inOneGroup(t, cmd,
		func() (commands.CustomerResult, error) { return cmd.AssignUser(ctx, b.admin, c, u[0]) },
		func() (commands.CustomerResult, error) { return cmd.AssignUser(ctx, b.admin, c, u[1]) },
		func() (commands.CustomerResult, error) { return cmd.MakeTeamLead(ctx, b.admin, c, u[1]) },
		// A no-op on the lead answers the position of the group's last
		// event on the customer.
		func() (commands.CustomerResult, error) { return cmd.MakeTeamLead(ctx, b.admin, c, u[1]) },
	)
	for i, a := range got {
		if a.err != nil {
			t.Fatalf("command %d: %v", i, a.err)
		}
	}
	for i := 1; i < 3; i++ {
		if got[i].res.Position <= got[i-1].res.Position || got[i].res.Version != got[i-1].res.Version+1 {
			t.Fatalf("command %d at position %d version %d after %d/%d", i, got[i].res.Position, got[i].res.Version,
				got[i-1].res.Position, got[i-1].res.Version)
		}
	}
	if got[3].res.Position != got[2].res.Position || got[3].res.Version != got[2].res.Version {
		t.Fatalf("no-op answered %d/%d, want %d/%d", got[3].res.Position, got[3].res.Version, got[2].res.Position, got[2].res.Version)
	}
	ids, lead := teamOf(got[3].res.CustomerView)
	if len(ids) != 2 || lead != u[1] {
		t.Fatalf("team %v lead %s", ids, lead)
	}
	// The stream says the same as the answers, and its chain holds.
	states := b.states(t, c)
	final := states[len(states)-1]
	if final.Version != got[3].res.Version || len(final.Team) != 2 {
		t.Fatalf("stream at version %d with %d members", final.Version, len(final.Team))
	}
	if _, err := b.store.Verify(ctx, nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// A refusal in a group answers its own error and fails none of its
// neighbours; it writes nothing.
func TestGroupRefusalBesideSuccesses(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c1, c2 := b.customer(t), b.customer(t)
	u := b.users(t, 2)
	b.policy(t, domain.Policy{MaxAssignees: ptr(1), MembersCanSelfAssign: true})
	events := b.eventCount(t)
	got := inOneGroup(t, cmd,
		func() (commands.CustomerResult, error) { return cmd.AssignUser(ctx, b.admin, c1, u[0]) },
		func() (commands.CustomerResult, error) { return cmd.AssignUser(ctx, b.admin, c1, u[1]) },
		func() (commands.CustomerResult, error) { return cmd.UnassignUser(ctx, b.admin, c2, u[1]) },
		func() (commands.CustomerResult, error) { return cmd.AssignUser(ctx, b.admin, c2, u[1]) },
		func() (commands.CustomerResult, error) {
			return cmd.AssignUser(ctx, b.admin, "00000000-0000-7000-8000-000000000000", u[0])
		},
	)
	wantErr(t, got[0].err, "")
	wantErr(t, got[1].err, domain.CodeMaxAssigneesReached)
	wantErr(t, got[2].err, domain.CodeUserNotAssigned)
	wantErr(t, got[3].err, "")
	wantErr(t, got[4].err, "not_found")
	if n := b.eventCount(t); n != events+2 {
		t.Fatalf("%d events appended, want 2", n-events)
	}
}

// An idempotent retry that lands in the same group as its original gets
// the original's answer and appends nothing; a different request under
// the same key is refused; a later retry replays from the database.
func TestGroupIdempotentRetryInSameGroup(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c := b.customer(t)
	u := b.users(t, 2)
	m := keyed(b.admin, "assign-once", "assign "+u[0])
	other := keyed(b.admin, "assign-once", "assign "+u[1])
	events := b.eventCount(t)
	got := inOneGroup(t, cmd,
		func() (commands.CustomerResult, error) { return cmd.AssignUser(ctx, m, c, u[0]) },
		func() (commands.CustomerResult, error) { return cmd.AssignUser(ctx, m, c, u[0]) },
		func() (commands.CustomerResult, error) { return cmd.AssignUser(ctx, other, c, u[1]) },
	)
	wantErr(t, got[0].err, "")
	wantErr(t, got[1].err, "")
	wantErr(t, got[2].err, "key_reused")
	if got[1].res.Position != got[0].res.Position || got[1].res.Version != got[0].res.Version {
		t.Fatalf("retry answered %+v, original %+v", got[1].res, got[0].res)
	}
	if n := b.eventCount(t); n != events+1 {
		t.Fatalf("%d events appended, want 1", n-events)
	}
	later, err := cmd.AssignUser(ctx, m, c, u[0])
	if err != nil {
		t.Fatalf("later retry: %v", err)
	}
	if later.Position != got[0].res.Position {
		t.Fatalf("later retry answered position %d, original %d", later.Position, got[0].res.Position)
	}
}

// A group whose transaction fails before COMMIT (its connection killed, a
// serialization failure) runs again whole: every command is answered as
// if alone, and each appended exactly once.
func TestGroupFailureRetriesTheGroup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fail func(ctx context.Context, tx *eventstore.Tx) error
	}{
		{"connection terminated", func(ctx context.Context, tx *eventstore.Tx) error {
			rows, err := tx.Query(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
			if err != nil {
				return err
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			return errors.New("the backend survived pg_terminate_backend")
		}},
		{"serialization failure", func(context.Context, *eventstore.Tx) error {
			return eventstore.Translate(&pgconn.PgError{Code: "40001", Message: "could not serialize access (injected)"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, b := setup(t)
			ctx := context.Background()
			c1, c2 := b.customer(t), b.customer(t)
			u := b.users(t, 2)
			var attempts []int
			cmd.BeforeGroupWrite(func(ctx context.Context, attempt int, tx *eventstore.Tx) error {
				attempts = append(attempts, attempt)
				if attempt == 1 {
					return tc.fail(ctx, tx)
				}
				return nil
			})
			events := b.eventCount(t)
			got := inOneGroup(t, cmd,
				func() (commands.CustomerResult, error) { return cmd.AssignUser(ctx, b.admin, c1, u[0]) },
				func() (commands.CustomerResult, error) { return cmd.AssignUser(ctx, b.admin, c1, u[1]) },
				func() (commands.CustomerResult, error) {
					return cmd.AssignUser(ctx, keyed(b.admin, "k", "assign"), c2, u[0])
				},
				func() (commands.CustomerResult, error) { return cmd.UnassignUser(ctx, b.admin, c2, u[1]) },
			)
			cmd.BeforeGroupWrite(nil)
			if len(attempts) != 2 {
				t.Fatalf("attempts %v, want [1 2]", attempts)
			}
			wantErr(t, got[0].err, "")
			wantErr(t, got[1].err, "")
			wantErr(t, got[2].err, "")
			wantErr(t, got[3].err, domain.CodeUserNotAssigned)
			if n := b.eventCount(t); n != events+3 {
				t.Fatalf("%d events appended, want 3", n-events)
			}
			ids, _ := teamOf(got[1].res.CustomerView)
			if len(ids) != 2 {
				t.Fatalf("team %v after the retry", ids)
			}
			// The keyed command's answer was stored by the retry.
			again, err := cmd.AssignUser(ctx, keyed(b.admin, "k", "assign"), c2, u[0])
			if err != nil || again.Position != got[2].res.Position {
				t.Fatalf("replay: %+v, %v; want position %d", again, err, got[2].res.Position)
			}
		})
	}
}

// Commands that arrive while a group is still gathering (its lock round
// trip in flight, here held up by a lock on its customer) wait for it to
// decide and then go together as the next group, rather than each taking an
// idle committer in a group of its own.
func TestGroupCommandsArrivingWhileOneGathersGoTogether(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	first := b.customer(t)
	u := b.users(t, 1)
	others := make([]string, 5)
	for i := range others {
		others[i] = b.customer(t)
	}
	before := cmd.GroupStats()

	// Another transaction holds the first customer's stream head.
	release := lockStream(t, b, first)
	var wg sync.WaitGroup
	errs := make([]error, len(others)+1)
	wg.Go(func() { _, errs[0] = cmd.AssignUser(ctx, b.admin, first, u[0]) })
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
		}
	}
	waitFor("the first command's group started", func() bool { return cmd.GroupStats().Sub(before).Groups() == 1 })
	for i, c := range others {
		wg.Go(func() { _, errs[i+1] = cmd.AssignUser(ctx, b.admin, c, u[0]) })
	}
	// No committer takes them while the first group gathers.
	waitFor("the later commands all queued", func() bool { return cmd.Queued() == len(others) })
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	got := cmd.GroupStats().Sub(before)
	if got.Groups() != 2 || got.Sizes[1] != 1 || got.Sizes[len(others)] != 1 {
		t.Fatalf("groups by size %v, want one of 1 and one of %d", got.Sizes, len(others))
	}
}

// A lone command is committed on its caller's goroutine, bounded by the
// caller's context: a caller that gives up while the stream is locked gets
// its context's error at once, nothing of its command is written, and the
// unit goes on committing others.
func TestLoneCommandStopsWithItsCaller(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c, other := b.customer(t), b.customer(t)
	u := b.users(t, 2)
	before := cmd.GroupStats()
	events := b.eventCount(t)

	release := lockStream(t, b, c)
	callCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := cmd.AssignUser(callCtx, b.admin, c, u[0])
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AssignUser with its stream locked past its deadline: %v, want the deadline's error", err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("the caller got its answer after %v", took)
	}
	release()
	// A group that outlived its caller would take the lock now and commit.
	time.Sleep(300 * time.Millisecond)
	if got := b.eventCount(t); got != events {
		t.Fatalf("%d events after a command whose caller gave up, want %d", got, events)
	}
	// The unit is not left short of a committer: commands go on, alone
	// and together.
	if _, err := cmd.AssignUser(ctx, b.admin, other, u[0]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(u))
	for i, id := range u {
		wg.Go(func() { _, errs[i] = cmd.AssignUser(ctx, b.admin, c, id) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("command %d after the cancelled one: %v", i, err)
		}
	}
	view, err := cmd.GetCustomer(ctx, b.admin.TenantID, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Assignees) != len(u) {
		t.Fatalf("team of %d after assigning %d users, want all of them", len(view.Assignees), len(u))
	}
	if got := cmd.GroupStats().Sub(before); got.Sizes[1] < 2 {
		t.Fatalf("groups by size %v: the lone commands were not groups of one", got.Sizes)
	}
}

// lockStream holds the stream's head row locked, as another transaction
// would, until release is called (or the test ends).
func lockStream(t *testing.T, b *testBundle, streamID string) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) }) //nolint:errcheck // released already, as a rule
	if _, err := tx.Exec(ctx, `SELECT 1 FROM streams WHERE stream_id = $1 FOR UPDATE`, streamID); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
