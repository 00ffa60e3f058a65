package projections

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// world generates a random but valid workload through the event store and
// keeps the domain's own view of every customer, to check projections
// against. Not safe for concurrent use.
type world struct {
	t       testing.TB
	store   *eventstore.Store
	rng     *rand.Rand
	clock   time.Time
	tenants []*wTenant
	// history of every customer stream, in version order.
	history map[string][]histEvent
	names   map[string]string
	lastPos int64
	events  int

	maxUsers int
	// direct, when set, makes the world COPY events straight into the
	// events table (no hash chain, no checks): only for generating large
	// event stores to measure rebuilds.
	direct *pgxpool.Pool
	rows   [][]any
	users  [][]any
}

type wTenant struct {
	id        string
	users     []string
	customers []*wCustomer
	groups    []*wGroup
}

// wGroup is a group of the workload, as the domain folds its stream.
type wGroup struct {
	g domain.Group
}

type wCustomer struct {
	tenant string
	c      domain.Customer
}

type histEvent struct {
	event domain.Event
	at    time.Time
}

func newWorld(t testing.TB, store *eventstore.Store, seed uint64) *world {
	return &world{
		t: t, store: store, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		clock:   time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC),
		history: map[string][]histEvent{},
		names:   map[string]string{},

		maxUsers: 12,
	}
}

// tick advances the clock by 0-3 ms: events at the same instant happen.
func (w *world) tick() time.Time {
	w.clock = w.clock.Add(time.Duration(w.rng.IntN(4)) * time.Millisecond).Add(time.Duration(w.rng.IntN(2)) * time.Microsecond)
	return w.clock
}

func (w *world) append(ctx context.Context, tenantID, streamID, streamType string, expected int64, actor string,
	side func(context.Context, keyring.Execer) error, events ...domain.Event) (time.Time, error) {
	var data []eventstore.EventData
	for _, e := range events {
		typ, sv, b, err := domain.EncodeEvent(e)
		if err != nil {
			w.t.Fatalf("encode: %v", err)
		}
		data = append(data, eventstore.EventData{Type: typ, SchemaVersion: sv, Data: b})
	}
	now := w.tick()
	if w.direct != nil {
		meta := fmt.Sprintf(`{"actor":{"user_id":%q,"name":%q},"correlation_id":%q}`, actor, w.names[actor], uuid.NewString())
		for i, d := range data {
			w.rows = append(w.rows, []any{tenantID, streamID, expected + int64(i) + 1, d.Type, int32(d.SchemaVersion),
				string(d.Data), meta, now, []byte{0}, []byte{0}})
		}
		w.events += len(events)
		if len(w.rows) >= 20_000 {
			w.flush(ctx)
		}
		return now.UTC().Truncate(time.Microsecond), nil
	}
	var res eventstore.AppendResult
	err := w.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
		if side != nil {
			if err := side(ctx, tx); err != nil {
				return err
			}
		}
		var err error
		res, err = tx.Append(ctx, eventstore.AppendRequest{
			TenantID: tenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: streamID, StreamType: streamType, ExpectedVersion: expected, Events: data}},
			Metadata: eventstore.Metadata{Actor: eventstore.Actor{UserID: actor, Name: w.names[actor]}, CorrelationID: uuid.NewString()},
			Now:      now,
		})
		return err
	})
	if err != nil {
		return time.Time{}, err
	}
	w.lastPos = max(w.lastPos, res.Position)
	w.events += len(events)
	return now.UTC().Truncate(time.Microsecond), nil
}

func (w *world) newTenant(ctx context.Context) *wTenant {
	tn := &wTenant{id: uuid.NewString()}
	if _, err := w.append(ctx, tn.id, tn.id, "tenant", eventstore.NoStream, "", nil,
		domain.TenantCreated{TenantID: tn.id, Name: "T " + tn.id[:8]}); err != nil {
		w.t.Fatalf("tenant: %v", err)
	}
	w.tenants = append(w.tenants, tn)
	return tn
}

func (w *world) newUser(ctx context.Context, tn *wTenant) {
	id := uuid.NewString()
	name := fmt.Sprintf("User %s", id[:6])
	email := id[:8] + "@example.com"
	side := func(ctx context.Context, tx keyring.Execer) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, tenant_id, name, email, role, status, created_at)
			VALUES ($1, $2, $3, $4, 'member', 'active', now())`, id, tn.id, name, email)
		return err
	}
	if w.direct != nil {
		w.users = append(w.users, []any{id, tn.id, name, email, "member", "active", w.clock})
		side = nil
	}
	if _, err := w.append(ctx, tn.id, id, "user", eventstore.NoStream, "", side,
		domain.UserCreated{UserID: id, Name: name, Email: email, Role: domain.RoleMember}); err != nil {
		w.t.Fatalf("user: %v", err)
	}
	w.names[id] = name
	tn.users = append(tn.users, id)
}

func (w *world) profile() domain.Profile {
	first := []string{"Ada", "Grace", "Alan", "Édith", "Zoë", "Linus"}[w.rng.IntN(6)]
	last := []string{"Lovelace", "Hopper", "Turing", "Piaf", "O'Neil", "100%_Sure"}[w.rng.IntN(6)]
	return domain.Profile{FirstName: first, LastName: last, Email: fmt.Sprintf("c%d@example.com", w.rng.IntN(1_000_000)),
		Phone: "+1 555 0100", ExternalID: fmt.Sprintf("x-%d", w.rng.IntN(1_000_000)), Title: []string{"", "", "Dr", "CEO"}[w.rng.IntN(4)]}
}

func (w *world) newCustomer(ctx context.Context, tn *wTenant) {
	id := uuid.NewString()
	var e domain.Event = domain.CustomerRegistered{CustomerID: id, Profile: w.profile()}
	if w.rng.IntN(3) == 0 {
		e = domain.ClientInvited{CustomerID: id, Profile: w.profile()}
	}
	wc := &wCustomer{tenant: tn.id}
	events := []domain.Event{e}
	// Invitations come with a team in the same batch.
	if _, ok := e.(domain.ClientInvited); ok && len(tn.users) > 1 {
		events = append(events, domain.UserAssigned{CustomerID: id, UserID: tn.users[0], Lead: true},
			domain.UserAssigned{CustomerID: id, UserID: tn.users[1]})
	}
	w.commit(ctx, tn, wc, id, events...)
	tn.customers = append(tn.customers, wc)
}

// commit appends events to the customer's stream and applies them to the
// domain's view.
func (w *world) commit(ctx context.Context, tn *wTenant, wc *wCustomer, id string, events ...domain.Event) {
	actor := ""
	if len(tn.users) > 0 {
		actor = tn.users[w.rng.IntN(len(tn.users))]
	}
	at, err := w.append(ctx, tn.id, id, "customer", wc.c.Version, actor, nil, events...)
	if err != nil {
		w.t.Fatalf("append to customer %s: %v", id, err)
	}
	for _, e := range events {
		wc.c.Apply(e, at)
		w.history[id] = append(w.history[id], histEvent{event: e, at: at})
	}
}

// step appends one random valid command's events.
func (w *world) step(ctx context.Context) {
	if len(w.tenants) == 0 || (len(w.tenants) < 3 && w.rng.IntN(200) == 0) {
		tn := w.newTenant(ctx)
		for range 3 {
			w.newUser(ctx, tn)
		}
	}
	tn := w.tenants[w.rng.IntN(len(w.tenants))]
	switch r := w.rng.IntN(100); {
	case r < 3 && len(tn.users) < w.maxUsers:
		w.newUser(ctx, tn)
		return
	case r < 15 || len(tn.customers) == 0:
		w.newCustomer(ctx, tn)
		return
	case r < 18:
		w.groupStep(ctx, tn)
		return
	}
	wc := tn.customers[w.rng.IntN(len(tn.customers))]
	c := wc.c
	var members, others []string
	for _, u := range tn.users {
		if _, ok := c.Member(u); ok {
			members = append(members, u)
		} else {
			others = append(others, u)
		}
	}
	pick := func(ids []string) string { return ids[w.rng.IntN(len(ids))] }
	if w.rng.IntN(10) == 0 && len(tn.users) > 0 {
		w.commit(ctx, tn, wc, c.ID, w.followUpStep(c, members, tn.users))
		return
	}
	var events []domain.Event
	switch op := w.rng.IntN(10); {
	case op < 4 && len(others) > 0:
		perm := w.rng.Perm(len(others))
		events = append(events, domain.UserAssigned{CustomerID: c.ID, UserID: others[perm[0]], Lead: w.rng.IntN(3) == 0})
		if len(others) > 1 && w.rng.IntN(4) == 0 { // a bulk edit: two in one batch
			events = append(events, domain.UserAssigned{CustomerID: c.ID, UserID: others[perm[1]]})
		}
	case op < 6 && len(members) > 0:
		events = append(events, domain.UserUnassigned{CustomerID: c.ID, UserID: pick(members)})
	case op < 7 && len(members) > 0:
		u := pick(members)
		if m, _ := c.Member(u); !m.Lead {
			prev, _ := c.Lead()
			events = append(events, domain.TeamLeadChanged{CustomerID: c.ID, UserID: u, PreviousUserID: prev.UserID})
		}
	case op < 8 && len(members) > 0 && len(others) > 0:
		u := pick(members)
		m, _ := c.Member(u)
		events = append(events, domain.TeamMemberReplaced{CustomerID: c.ID, UserID: u, WithUserID: pick(others), Lead: m.Lead})
	case op < 9 && w.rng.IntN(3) == 0 && len(tn.groups) > 0:
		// Group membership, also in groups since deleted.
		g := tn.groups[w.rng.IntN(len(tn.groups))].g.ID
		if len(c.Groups) > 0 && w.rng.IntN(3) == 0 {
			g = c.Groups[w.rng.IntN(len(c.Groups))]
		}
		if c.InGroup(g) {
			events = append(events, c.RemoveFromGroup(g)...)
		} else {
			events = append(events, c.AddToGroup(g)...)
		}
	case op < 9:
		switch c.Status {
		case domain.CustomerStatusBlocked:
			events = append(events, domain.CustomerUnblocked{CustomerID: c.ID})
		case domain.CustomerStatusInvited:
			switch w.rng.IntN(3) {
			case 0:
				events = append(events, domain.InvitationAccepted{CustomerID: c.ID})
			case 1:
				events = append(events, domain.CustomerBlocked{CustomerID: c.ID})
			default: // the relay's record of the invitation e-mail
				events = append(events, domain.InvitationEmailed{CustomerID: c.ID, MessageID: uuid.NewString(), Outcome: "sent"})
			}
		default:
			events = append(events, domain.CustomerBlocked{CustomerID: c.ID})
		}
	default:
		events = append(events, domain.CustomerUpdated{CustomerID: c.ID, Profile: w.profile()})
	}
	if len(events) == 0 {
		events = append(events, domain.CustomerUpdated{CustomerID: c.ID, Profile: w.profile()})
	}
	w.commit(ctx, tn, wc, c.ID, events...)
}

// followUpStep schedules a follow-up of the customer, or completes,
// snoozes, cancels or records due one it has.
func (w *world) followUpStep(c domain.Customer, members []string, users []string) domain.Event {
	var live []domain.FollowUp
	for _, f := range c.FollowUps {
		if f.Status != domain.FollowUpStatusCancelled {
			live = append(live, f)
		}
	}
	slices.SortFunc(live, func(a, b domain.FollowUp) int { return strings.Compare(a.ID, b.ID) })
	due := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(w.rng.IntN(1000)) * time.Hour)
	if len(live) > 0 && w.rng.IntN(3) > 0 {
		f := live[w.rng.IntN(len(live))]
		switch op := w.rng.IntN(4); {
		case op == 0 && f.Status == domain.FollowUpStatusOpen:
			return domain.FollowUpCompleted{FollowUpID: f.ID, CustomerID: c.ID}
		case op == 1 && f.Status == domain.FollowUpStatusOpen:
			return domain.FollowUpSnoozed{FollowUpID: f.ID, CustomerID: c.ID, Until: due}
		case op == 2:
			return domain.FollowUpCancelled{FollowUpID: f.ID, CustomerID: c.ID}
		case op == 3 && f.Pending():
			return domain.FollowUpDue{FollowUpID: f.ID, CustomerID: c.ID, DueAt: f.DueAt, To: f.To, Recipients: members}
		}
	}
	to := domain.FollowUpToTeam
	if w.rng.IntN(2) == 0 {
		to = domain.FollowUpToLead
	}
	return domain.FollowUpScheduled{FollowUpID: uuid.NewString(), CustomerID: c.ID, DueAt: due,
		Note: fmt.Sprintf("note %d", w.rng.IntN(1000)), To: to, CreatedBy: users[w.rng.IntN(len(users))]}
}

// groupStep creates, renames or deletes one of the tenant's groups.
func (w *world) groupStep(ctx context.Context, tn *wTenant) {
	var live []*wGroup
	for _, g := range tn.groups {
		if !g.g.Deleted {
			live = append(live, g)
		}
	}
	var wg *wGroup
	var e domain.Event
	switch op := w.rng.IntN(4); {
	case op < 2 || len(live) == 0:
		wg = &wGroup{}
		tn.groups = append(tn.groups, wg)
		e = domain.GroupCreated{GroupID: uuid.NewString(), Name: fmt.Sprintf("Group %d", w.rng.IntN(1000))}
	case op < 3:
		wg = live[w.rng.IntN(len(live))]
		e = domain.GroupRenamed{GroupID: wg.g.ID, Name: fmt.Sprintf("Renamed %d", w.rng.IntN(1000))}
	default:
		wg = live[w.rng.IntN(len(live))]
		e = wg.g.Delete()[0]
	}
	id := wg.g.ID
	if c, ok := e.(domain.GroupCreated); ok {
		id = c.GroupID
	}
	if _, err := w.append(ctx, tn.id, id, "group", wg.g.Version, "", nil, e); err != nil {
		w.t.Fatalf("group: %v", err)
	}
	wg.g.Apply(e)
}

// run appends at least n events.
func (w *world) run(ctx context.Context, n int) {
	target := w.events + n
	for w.events < target {
		w.step(ctx)
	}
}

// flush copies buffered events and users (direct mode).
func (w *world) flush(ctx context.Context) {
	if len(w.users) > 0 {
		if _, err := w.direct.CopyFrom(ctx, pgx.Identifier{"users"},
			[]string{"id", "tenant_id", "name", "email", "role", "status", "created_at"}, pgx.CopyFromRows(w.users)); err != nil {
			w.t.Fatalf("copy users: %v", err)
		}
		w.users = w.users[:0]
	}
	if len(w.rows) > 0 {
		if _, err := w.direct.CopyFrom(ctx, pgx.Identifier{"events"},
			[]string{"tenant_id", "stream_id", "stream_version", "type", "schema_version", "data", "metadata",
				"recorded_at", "prev_hash", "hash"}, pgx.CopyFromRows(w.rows)); err != nil {
			w.t.Fatalf("copy events: %v", err)
		}
		w.rows = w.rows[:0]
	}
}
