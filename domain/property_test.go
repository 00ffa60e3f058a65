package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/assignment-ledger/ledger/domain"
)

// world is a tenant under one policy: a small pool of users, some
// deactivated from the start, and a few customers. Commands are decided by
// the domain and their events applied as the event store would.
type world struct {
	pol       domain.Policy
	users     map[string]domain.User
	userIDs   []string
	customers []domain.Customer
	hadMember map[string]bool
	clock     time.Time
}

func newWorld(t *rapid.T) *world {
	w := &world{
		pol: domain.Policy{
			MaxAssignees:    rapid.Ptr(rapid.IntRange(1, 4), true).Draw(t, "max_assignees"),
			RequireAssignee: rapid.Bool().Draw(t, "require_assignee"),
			RequireLead:     rapid.Bool().Draw(t, "require_lead"),
		},
		users:     map[string]domain.User{},
		hadMember: map[string]bool{},
		clock:     t0,
	}
	for i := range 6 {
		id := fmt.Sprintf("u%d", i)
		u := active(id)
		if rapid.IntRange(0, 3).Draw(t, "deactivated_"+id) == 0 {
			u.Status = domain.UserStatusDeactivated
		}
		w.users[id] = u
		w.userIDs = append(w.userIDs, id)
	}
	for i := range 3 {
		w.customers = append(w.customers, customer(fmt.Sprintf("c%d", i)))
	}
	return w
}

func (w *world) user(t *rapid.T, label string) domain.User {
	return w.users[rapid.SampledFrom(w.userIDs).Draw(t, label)]
}

func (w *world) customerIndex(t *rapid.T) int {
	return rapid.IntRange(0, len(w.customers)-1).Draw(t, "customer")
}

// apply appends events to customer i, checking what each event may do
// before it is applied: it adds only active users, and it survives the
// event store's encoding.
func (w *world) apply(t *rapid.T, i int, events []domain.Event) {
	c := &w.customers[i]
	for _, e := range events {
		if id, ok := domain.CustomerIDOf(e); !ok || id != c.ID {
			t.Fatalf("event %#v for customer %s", e, c.ID)
		}
		var added string
		switch e := e.(type) {
		case domain.UserAssigned:
			added = e.UserID
		case domain.TeamMemberReplaced:
			added = e.WithUserID
		}
		if added != "" && !w.users[added].Active() {
			t.Fatalf("%#v adds deactivated user %s", e, added)
		}
		typ, v, data, err := domain.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := domain.DecodeEvent(typ, v, data)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("round trip of %#v gave %#v, %v", e, back, err)
		}
		w.clock = w.clock.Add(time.Second)
		version := c.Version
		c.Apply(back, w.clock)
		if c.Version != version+1 {
			t.Fatalf("version %d after %d", c.Version, version)
		}
	}
	if len(c.Team) > 0 {
		w.hadMember[c.ID] = true
	}
}

// decided applies the outcome of a single-customer command, insisting that
// a refusal carries no events and is a RuleError.
func (w *world) decided(t *rapid.T, i int, events []domain.Event, err error) {
	if err != nil {
		if events != nil {
			t.Fatalf("refused command returned events: %v", err)
		}
		var re *domain.RuleError
		if !errors.As(err, &re) {
			t.Fatalf("refusal is not a RuleError: %T %v", err, err)
		}
		return
	}
	w.apply(t, i, events)
}

func (w *world) check(t *rapid.T) {
	for _, c := range w.customers {
		if w.pol.MaxAssignees != nil && len(c.Team) > *w.pol.MaxAssignees {
			t.Fatalf("%s has %d members, max %d", c.ID, len(c.Team), *w.pol.MaxAssignees)
		}
		leads := 0
		seen := map[string]bool{}
		for _, m := range c.Team {
			if seen[m.UserID] {
				t.Fatalf("%s has %s twice", c.ID, m.UserID)
			}
			seen[m.UserID] = true
			if !w.users[m.UserID].Active() {
				t.Fatalf("%s has deactivated %s", c.ID, m.UserID)
			}
			if m.Lead {
				leads++
			}
		}
		if leads > 1 {
			t.Fatalf("%s has %d leads", c.ID, leads)
		}
		if w.pol.RequireLead && len(c.Team) > 0 && leads != 1 {
			t.Fatalf("%s has %d members and no lead under require_lead", c.ID, len(c.Team))
		}
		if w.pol.RequireAssignee && w.hadMember[c.ID] && len(c.Team) == 0 {
			t.Fatalf("%s lost its last member under require_assignee", c.ID)
		}
	}
}

func TestPropertyTeamInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t)
		t.Repeat(map[string]func(*rapid.T){
			"assign": func(t *rapid.T) {
				i := w.customerIndex(t)
				evs, err := w.customers[i].Assign(w.user(t, "user"), w.pol)
				w.decided(t, i, evs, err)
			},
			"unassign": func(t *rapid.T) {
				i := w.customerIndex(t)
				evs, err := w.customers[i].Unassign(w.user(t, "user").ID, w.pol)
				w.decided(t, i, evs, err)
			},
			"make lead": func(t *rapid.T) {
				i := w.customerIndex(t)
				evs, err := w.customers[i].MakeLead(w.user(t, "user").ID)
				w.decided(t, i, evs, err)
			},
			"replace": func(t *rapid.T) {
				i := w.customerIndex(t)
				evs, err := w.customers[i].Replace(w.user(t, "user").ID, w.user(t, "with"), w.pol)
				w.decided(t, i, evs, err)
			},
			"deactivate": func(t *rapid.T) {
				u := w.user(t, "user")
				var to *domain.User
				if rapid.Bool().Draw(t, "transfer") {
					v := w.user(t, "transfer_to")
					to = &v
				}
				var theirs []domain.Customer
				for _, c := range w.customers {
					if _, ok := c.Member(u.ID); ok {
						theirs = append(theirs, c)
					}
				}
				userEvs, custEvs, err := domain.DeactivateUser(u, to, theirs, w.pol)
				if err != nil {
					if userEvs != nil || custEvs != nil {
						t.Fatalf("refused deactivation returned events: %v", err)
					}
					return
				}
				for _, e := range userEvs {
					u.Apply(e, w.clock)
				}
				w.users[u.ID] = u
				for i, c := range w.customers {
					w.apply(t, i, custEvs[c.ID])
					if _, ok := w.customers[i].Member(u.ID); ok {
						t.Fatalf("deactivated %s still on %s", u.ID, c.ID)
					}
				}
			},
			"bulk": func(t *rapid.T) {
				action := rapid.SampledFrom([]domain.BulkAction{domain.BulkAdd, domain.BulkRemove}).Draw(t, "action")
				cs := rapid.SliceOfN(rapid.IntRange(0, len(w.customers)-1), 0, 4).Draw(t, "customers")
				us := rapid.SliceOfN(rapid.SampledFrom(w.userIDs), 0, 5).Draw(t, "users")
				var customers []domain.Customer
				for _, i := range cs {
					customers = append(customers, w.customers[i])
				}
				var users []domain.User
				for _, id := range us {
					users = append(users, w.users[id])
				}
				plan := domain.PlanBulk(action, customers, users, w.pol)
				pairs := len(plan.ToBeAssigned) + len(plan.ToBeDeassigned) + len(plan.Unchanged) + len(plan.Errors)
				distinct := len(uniq(cs)) * len(uniq(us))
				if pairs != distinct {
					t.Fatalf("plan covers %d pairs, want %d", pairs, distinct)
				}
				// Each customer's events are valid on their own, so apply
				// them even when other pairs failed: a stronger check than
				// the all-or-nothing use.
				for i, c := range w.customers {
					w.apply(t, i, plan.Events[c.ID])
				}
			},
			"": func(t *rapid.T) { w.check(t) },
		})
	})
}

func uniq[T comparable](xs []T) []T {
	var out []T
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// Invitations decide a whole first team at once; under any policy the
// result must satisfy the same invariants as single commands.
func TestPropertyInviteClient(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t)
		ids := rapid.SliceOfNDistinct(rapid.SampledFrom(w.userIDs), 0, 6, rapid.ID[string]).Draw(t, "team")
		var team []domain.User
		for _, id := range ids {
			team = append(team, w.users[id])
		}
		evs, err := domain.InviteClient("c9", domain.Profile{Email: "c9@x.io"}, team, w.pol)
		if err != nil {
			return
		}
		var c domain.Customer
		c.Apply(evs[0], t0)
		w.customers = []domain.Customer{c}
		w.apply(t, 0, evs[1:])
		if len(w.customers[0].Team) != len(team) {
			t.Fatalf("team of %d from %d users", len(w.customers[0].Team), len(team))
		}
		w.check(t)
	})
}
