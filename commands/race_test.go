package commands_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/keyring"
)

// ruleOnly fails the test for any error that is not a RuleError.
func ruleOnly(t *testing.T, err error) {
	t.Helper()
	var re *domain.RuleError
	if err != nil && !errors.As(err, &re) {
		t.Errorf("unexpected error: %v", err)
	}
}

// checkInvariants replays the customer and checks the policy's team rules
// in every state the stream ever passed through.
func checkInvariants(t *testing.T, b *testBundle, customerID string, pol domain.Policy) {
	t.Helper()
	hadTeam := false
	for i, c := range b.states(t, customerID) {
		if pol.MaxAssignees != nil && len(c.Team) > *pol.MaxAssignees {
			t.Fatalf("version %d: %d assignees > max %d", i+1, len(c.Team), *pol.MaxAssignees)
		}
		if len(c.Team) > 0 {
			hadTeam = true
		}
		if pol.RequireAssignee && hadTeam && len(c.Team) == 0 {
			t.Fatalf("version %d: team dropped to zero", i+1)
		}
		leads := 0
		for _, m := range c.Team {
			if m.Lead {
				leads++
			}
		}
		if leads > 1 || (pol.RequireLead && len(c.Team) > 0 && leads != 1) {
			t.Fatalf("version %d: %d leads in a team of %d", i+1, leads, len(c.Team))
		}
	}
}

func TestAssignRaceMaxAssignees(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	pol := domain.Policy{MaxAssignees: ptr(3), RequireLead: true, MembersCanSelfAssign: true}
	b.policy(t, pol)
	c := b.customer(t)
	users := b.users(t, 32)

	var wg sync.WaitGroup
	errs := make([]error, len(users))
	for i, u := range users {
		wg.Go(func() { _, errs[i] = cmd.AssignUser(ctx, b.admin, c, u) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantErr(t, err, domain.CodeMaxAssigneesReached)
	}
	if ok != 3 {
		t.Fatalf("%d assignments succeeded, want 3", ok)
	}
	checkInvariants(t, b, c, pol)
}

func TestTeamStorm(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	pol := domain.Policy{MaxAssignees: ptr(4), RequireLead: true, RequireAssignee: true, MembersCanSelfAssign: true}
	customers := []string{b.customer(t), b.customer(t)} // before require_assignee, which would want teams
	b.policy(t, pol)
	users := b.users(t, 8)
	for _, c := range customers {
		b.assign(t, c, users[0], users[1])
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	succeeded := map[string]int{}
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 42))
			for range 25 {
				c := customers[r.IntN(len(customers))]
				u, w := users[r.IntN(len(users))], users[r.IntN(len(users))]
				var err error
				var op string
				switch r.IntN(4) {
				case 0:
					op = "assign"
					_, err = cmd.AssignUser(ctx, b.admin, c, u)
				case 1:
					op = "unassign"
					_, err = cmd.UnassignUser(ctx, b.admin, c, u)
				case 2:
					op = "replace"
					_, err = cmd.ReplaceTeamMember(ctx, b.admin, c, u, w)
				case 3:
					op = "lead"
					_, err = cmd.MakeTeamLead(ctx, b.admin, c, u)
				}
				ruleOnly(t, err)
				if err == nil {
					mu.Lock()
					succeeded[op]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("successful commands: %v", succeeded)
	for _, c := range customers {
		checkInvariants(t, b, c, pol)
	}
}

func TestBulkEditRacesSingleCommands(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	pol := domain.Policy{MaxAssignees: ptr(2), MembersCanSelfAssign: true}
	b.policy(t, pol)
	x, a, other := b.user(t), b.user(t), b.user(t)

	for round := range 8 {
		customers := make([]string, 10)
		for i := range customers {
			customers[i] = b.customer(t)
			b.assign(t, customers[i], x)
		}
		target := customers[round%len(customers)]
		bulkMeta := b.admin
		bulkMeta.CorrelationID = fmt.Sprintf("0190c1f2-0000-7000-8000-%012d", round)

		var wg sync.WaitGroup
		var bulkErr, singleErr error
		wg.Go(func() {
			_, bulkErr = cmd.BulkEdit(ctx, bulkMeta, commands.BulkRequest{Action: "add", CustomerIDs: customers, UserIDs: []string{a}})
		})
		wg.Go(func() { _, singleErr = cmd.AssignUser(ctx, b.admin, target, other) })
		wg.Wait()

		var written int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE metadata->>'correlation_id' = $1`, bulkMeta.CorrelationID).Scan(&written); err != nil {
			t.Fatal(err)
		}
		var rejected *commands.BulkRejectedError
		switch {
		case bulkErr == nil && written == len(customers):
			wantErr(t, singleErr, domain.CodeMaxAssigneesReached)
		case errors.As(bulkErr, &rejected) && written == 0:
			wantErr(t, singleErr, "")
			if len(rejected.Errors) != 1 || rejected.Errors[0].CustomerID != target {
				t.Fatalf("round %d: rejection %+v", round, rejected.Errors)
			}
		default:
			t.Fatalf("round %d: bulk %v wrote %d events; single %v", round, bulkErr, written, singleErr)
		}
		for _, c := range customers {
			checkInvariants(t, b, c, pol)
		}
	}
}

func TestDeactivateRacesAssign(t *testing.T) {
	t.Parallel()
	for _, transfer := range []bool{false, true} {
		t.Run(fmt.Sprintf("transfer=%v", transfer), func(t *testing.T) {
			t.Parallel()
			cmd, b := setup(t)
			ctx := context.Background()
			u, heir := b.user(t), b.user(t)
			customers := make([]string, 24)
			for i := range customers {
				customers[i] = b.customer(t)
			}
			to := ""
			if transfer {
				to = heir
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, len(customers))
			for i, c := range customers {
				wg.Go(func() {
					<-start
					_, errs[i] = cmd.AssignUser(ctx, b.admin, c, u)
				})
			}
			var deactErr error
			wg.Go(func() {
				<-start
				_, deactErr = cmd.DeactivateUser(ctx, b.admin, u, to)
			})
			close(start)
			wg.Wait()
			wantErr(t, deactErr, "")
			assigned, refused := 0, 0
			for _, err := range errs {
				if err == nil {
					assigned++
				} else {
					wantErr(t, err, domain.CodeUserDeactivated)
					refused++
				}
			}
			t.Logf("assigned before deactivation: %d, refused: %d", assigned, refused)
			heirs := 0
			for _, c := range customers {
				states := b.states(t, c)
				final := states[len(states)-1]
				if _, on := final.Member(u); on {
					t.Fatalf("customer %s still has the deactivated user", c)
				}
				if _, on := final.Member(heir); on {
					heirs++
				}
			}
			if transfer && heirs != assigned {
				t.Fatalf("%d customers handed to the heir, %d were assigned", heirs, assigned)
			}
			// No assignment of u was recorded after its deactivation.
			var late int
			err := b.pool.QueryRow(ctx, `SELECT count(*) FROM events a, events d
				WHERE d.type = 'UserDeactivated' AND d.data->>'user_id' = $1
				  AND a.type = 'UserAssigned' AND a.data->>'user_id' = $1 AND a.position > d.position`, u).Scan(&late)
			if err != nil || late != 0 {
				t.Fatalf("%d assignments after deactivation (%v)", late, err)
			}
		})
	}
}

func TestIdempotentRetriesRace(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c, u := b.customer(t), b.user(t)
	m := keyed(b.admin, "same-key", "assign")
	const n = 12
	var wg sync.WaitGroup
	results := make([]commands.CustomerResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = cmd.AssignUser(ctx, m, c, u) })
	}
	wg.Wait()
	for i := range n {
		wantErr(t, errs[i], "")
		if results[i].Position != results[0].Position || results[i].Version != 2 {
			t.Fatalf("result %d: %+v vs %+v", i, results[i], results[0])
		}
	}
	if s := b.states(t, c); len(s) != 2 {
		t.Fatalf("%d events on the customer", len(s))
	}
}

// teamsAfterEachCommit replays a customer and returns its team after each
// committed transaction (the events of one append are one step: a set or a
// transfer may pass through a larger team between its own events, which no
// reader ever sees).
func teamsAfterEachCommit(t *testing.T, b *testBundle, customerID string) [][]domain.Member {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT type, schema_version, data, recorded_at, transaction_id::text
		FROM events WHERE stream_id = $1 ORDER BY stream_version`, customerID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var (
		c      domain.Customer
		out    [][]domain.Member
		lastTx string
	)
	for rows.Next() {
		var typ, tx string
		var schema int
		var data []byte
		var at time.Time
		if err := rows.Scan(&typ, &schema, &data, &at, &tx); err != nil {
			t.Fatal(err)
		}
		if lastTx != "" && tx != lastTx {
			out = append(out, c.Team)
		}
		if schema == keyring.SealedSchema {
			lastTx = tx
			continue // the team is all this replay needs
		}
		e, err := domain.DecodeEvent(typ, schema, data)
		if err != nil {
			t.Fatal(err)
		}
		c.Apply(e, at)
		lastTx = tx
	}
	return append(out, c.Team)
}

// BulkEdit set over many one-owner customers, raced by single-customer
// commands on the same customers: the set is all or nothing, and no
// committed state ever has two owners.
func TestBulkSetRacesSingleCommands(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	customers := seedCustomers(t, b, commands.MaxBulkCustomers)
	pol := domain.Policy{MaxAssignees: ptr(1), RequireLead: true, MembersCanSelfAssign: true}
	b.policy(t, pol)
	u1, u2, u3, u4 := b.user(t), b.user(t), b.user(t), b.user(t)
	if _, err := cmd.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "add", CustomerIDs: customers, UserIDs: []string{u1}}); err != nil {
		t.Fatal(err)
	}

	setMeta := b.admin
	setMeta.CorrelationID = "0190c1f2-0000-7000-8000-00000000b01c"
	var (
		wg     sync.WaitGroup
		setErr error
	)
	wg.Go(func() {
		_, setErr = cmd.BulkEdit(ctx, setMeta, commands.BulkRequest{Action: "set", CustomerIDs: customers, UserIDs: []string{u2}})
	})
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range 30 {
				c := customers[r.IntN(len(customers))]
				var err error
				if r.IntN(2) == 0 {
					_, err = cmd.ReplaceTeamMember(ctx, b.admin, c, u1, u3)
				} else {
					_, err = cmd.AssignUser(ctx, b.admin, c, u4) // always full: refused
				}
				ruleOnly(t, err)
			}
		})
	}
	wg.Wait()

	var touched int
	if err := b.pool.QueryRow(ctx, `SELECT count(DISTINCT stream_id) FROM events WHERE metadata->>'correlation_id' = $1`,
		setMeta.CorrelationID).Scan(&touched); err != nil {
		t.Fatal(err)
	}
	switch {
	case setErr == nil && touched != len(customers):
		t.Fatalf("the set succeeded but changed %d of %d customers", touched, len(customers))
	case setErr != nil && touched != 0:
		t.Fatalf("the set failed (%v) but changed %d customers", setErr, touched)
	}
	t.Logf("set: %v; %d customers changed", setErr, touched)
	for _, c := range customers {
		teams := teamsAfterEachCommit(t, b, c)
		for i, team := range teams {
			if len(team) > 1 || (len(team) == 1 && !team[0].Lead) {
				t.Fatalf("customer %s after commit %d: %+v", c, i, team)
			}
		}
		if final := teams[len(teams)-1]; setErr == nil && (len(final) != 1 || final[0].UserID != u2) {
			t.Fatalf("customer %s ends with %+v, want %s alone", c, final, u2)
		}
	}
}

// A transfer of all of a user's customers, raced by single-customer
// commands on the same customers: all or nothing, every committed state
// within the policy, and the heir ends up on every customer.
func TestTransferRacesSingleCommands(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	customers := seedCustomers(t, b, commands.MaxBulkCustomers)
	pol := domain.Policy{MaxAssignees: ptr(2), RequireLead: true, MembersCanSelfAssign: true}
	b.policy(t, pol)
	mover, heir, u3 := b.user(t), b.user(t), b.user(t)
	if _, err := cmd.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "add", CustomerIDs: customers, UserIDs: []string{mover}}); err != nil {
		t.Fatal(err)
	}
	meta := b.admin
	meta.CorrelationID = "0190c1f2-0000-7000-8000-0000000071a5"
	var (
		wg          sync.WaitGroup
		transferErr error
	)
	wg.Go(func() {
		_, transferErr = cmd.TransferCustomers(ctx, meta, commands.TransferRequest{From: mover, To: heir})
	})
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 11))
			for range 30 {
				c := customers[r.IntN(len(customers))]
				var err error
				switch r.IntN(3) {
				case 0:
					_, err = cmd.AssignUser(ctx, b.admin, c, u3)
				case 1:
					_, err = cmd.UnassignUser(ctx, b.admin, c, u3)
				case 2:
					_, err = cmd.AssignUser(ctx, b.admin, c, heir)
				}
				ruleOnly(t, err)
			}
		})
	}
	wg.Wait()
	if transferErr != nil {
		t.Fatalf("transfer: %v", transferErr)
	}
	var touched int
	if err := b.pool.QueryRow(ctx, `SELECT count(DISTINCT stream_id) FROM events WHERE metadata->>'correlation_id' = $1`,
		meta.CorrelationID).Scan(&touched); err != nil {
		t.Fatal(err)
	}
	if touched != len(customers) {
		t.Fatalf("the transfer changed %d of %d customers", touched, len(customers))
	}
	for _, c := range customers {
		teams := teamsAfterEachCommit(t, b, c)
		for i, team := range teams {
			leads := 0
			for _, m := range team {
				if m.Lead {
					leads++
				}
			}
			if len(team) > 2 || (len(team) > 0 && leads != 1) {
				t.Fatalf("customer %s after commit %d: %+v", c, i, team)
			}
		}
		final := teams[len(teams)-1]
		onHeir, onMover := false, false
		for _, m := range final {
			onHeir = onHeir || m.UserID == heir
			onMover = onMover || m.UserID == mover
		}
		if !onHeir || onMover {
			t.Fatalf("customer %s ends with %+v", c, final)
		}
	}
}

// A command racing a lowered max_assignees is decided on the policy its
// events are recorded after: no team grows once PolicyChanged is in the
// log, and the policy's answer counts exactly the customers over the new
// limit (nothing runs after it). Single commands and bulk edits race it,
// on two Commands instances (two processes' caches).
func TestPolicyChangeRacesCommands(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	other := commands.New(b.store, testdb.Keyring(t), slog.New(slog.DiscardHandler))
	ctx := context.Background()
	var all []string // the policy counts every customer of the tenant
	for round := range 4 {
		b.policy(t, domain.Policy{MembersCanSelfAssign: true})
		users := b.users(t, 3)
		var customers []string
		for range 12 {
			c := b.customer(t)
			b.assign(t, c, users[0])
			customers = append(customers, c)
		}
		all = append(all, customers...)
		var wg sync.WaitGroup
		var over int
		wg.Go(func() {
			time.Sleep(time.Duration(round) * time.Millisecond)
			res, err := cmd.ChangePolicy(ctx, b.admin, domain.Policy{MaxAssignees: ptr(1), MembersCanSelfAssign: true})
			if err != nil {
				t.Error(err)
				return
			}
			over = *res.CustomersOverLimit
		})
		for i, c := range customers {
			c2 := cmd
			if i%2 == 1 {
				c2 = other
			}
			wg.Go(func() {
				switch i % 3 {
				case 0:
					_, err := c2.SetTeam(ctx, b.admin, c, users, "")
					ruleOnly(t, err)
				case 1:
					_, err := c2.AssignUser(ctx, b.admin, c, users[1])
					ruleOnly(t, err)
				default:
					_, err := c2.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "add", CustomerIDs: []string{c}, UserIDs: []string{users[2]}})
					var rejected *commands.BulkRejectedError
					if err != nil && !errors.As(err, &rejected) {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		var policyAt int64
		if err := b.pool.QueryRow(ctx, `SELECT max(position) FROM events WHERE stream_id = $1 AND type = 'PolicyChanged'`, b.tenantID).Scan(&policyAt); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range all {
			if states := b.states(t, c); len(states[len(states)-1].Team) > 1 {
				n++
			}
		}
		for _, c := range customers {
			var grown int
			if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = $1 AND type = 'UserAssigned' AND position > $2`, c, policyAt).Scan(&grown); err != nil {
				t.Fatal(err)
			}
			if grown > 0 {
				t.Fatalf("round %d: customer %s was assigned %d users after max_assignees 1 was set", round, c, grown)
			}
		}
		if n != over {
			t.Fatalf("round %d: the policy counted %d customers over the limit, %d are", round, over, n)
		}
	}
}

// Requests sharing a key with different bodies, racing into one group:
// each gets what its own body is owed. The body the key was first used
// with gets its answer replayed (a success, or a refusal), whichever body
// the group met first; the other body is a reused key.
func TestSameKeyDifferentBodiesInOneGroup(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	for round := range 6 {
		c := b.customer(t)
		u1, u2 := b.user(t), b.user(t)
		key := fmt.Sprintf("k%d", round)
		won := keyed(b.admin, key, "assign u2")
		first, err := cmd.AssignUser(ctx, won, c, u2)
		if round%2 == 1 {
			// The key's answer is a refusal: u2 is on the team already.
			_, err = cmd.AssignUser(ctx, keyed(b.admin, key+"r", "assign u2"), c, u2)
			wantErr(t, err, domain.CodeAlreadyAssigned)
			won = keyed(b.admin, key+"r", "assign u2")
		} else {
			wantErr(t, err, "")
		}
		lost := won
		lost.RequestHash = keyed(b.admin, "", "assign u1").RequestHash
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				if i%2 == 0 {
					_, err := cmd.AssignUser(ctx, lost, c, u1)
					if !errors.Is(err, eventstore.ErrIdempotencyKeyReused) {
						t.Errorf("round %d: another body: %v, want key reused", round, err)
					}
					return
				}
				res, err := cmd.AssignUser(ctx, won, c, u2)
				switch {
				case round%2 == 1 && !domain.IsRule(err, domain.CodeAlreadyAssigned):
					t.Errorf("round %d: the refused body again: %v, want its refusal", round, err)
				case round%2 == 0 && (err != nil || res.Position != first.Position):
					t.Errorf("round %d: the first body again: %v (position %d, want %d)", round, err, res.Position, first.Position)
				}
			})
		}
		wg.Wait()
	}
}
