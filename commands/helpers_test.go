package commands_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// testBundle is what a test needs besides the Commands under test.
type testBundle struct {
	pool     *pgxpool.Pool
	store    *eventstore.Store
	cmd      *commands.Commands
	tenantID string
	adminID  string
	admin    commands.Meta
	seq      atomic.Int64
}

func setup(t testing.TB) (*commands.Commands, *testBundle) {
	t.Helper()
	pool := testdb.New(t)
	store := eventstore.New(pool)
	cmd := commands.New(store, testdb.Keyring(t), slog.New(slog.DiscardHandler))
	res, err := cmd.Bootstrap(context.Background(), "Acme", "Ada Admin", "ada@acme.example")
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	b := &testBundle{pool: pool, store: store, cmd: cmd, tenantID: res.TenantID, adminID: res.UserID}
	b.admin = commands.Meta{TenantID: res.TenantID, Actor: domain.Actor{UserID: res.UserID, Name: "Ada Admin", Role: domain.RoleAdmin}}
	return cmd, b
}

// otherTenant bootstraps a second tenant and returns its admin meta.
func (b *testBundle) otherTenant(t testing.TB) commands.Meta {
	t.Helper()
	res, err := b.cmd.Bootstrap(context.Background(), "Other", "Olga Other", "olga@other.example")
	if err != nil {
		t.Fatalf("bootstrap other: %v", err)
	}
	return commands.Meta{TenantID: res.TenantID, Actor: domain.Actor{UserID: res.UserID, Name: "Olga Other", Role: domain.RoleAdmin}}
}

func (b *testBundle) userIn(t testing.TB, admin commands.Meta, role domain.Role) string {
	t.Helper()
	n := b.seq.Add(1)
	res, err := b.cmd.CreateUser(context.Background(), admin, fmt.Sprintf("User %d", n), fmt.Sprintf("user%d@acme.example", n), role)
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return res.ID
}

// user creates a member of the bundle's tenant.
func (b *testBundle) user(t testing.TB) string { return b.userIn(t, b.admin, domain.RoleMember) }

func (b *testBundle) users(t testing.TB, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = b.user(t)
	}
	return ids
}

// memberMeta is the meta of a member acting for themselves.
func (b *testBundle) memberMeta(id string) commands.Meta {
	return commands.Meta{TenantID: b.tenantID, Actor: domain.Actor{UserID: id, Name: "member", Role: domain.RoleMember}}
}

func (b *testBundle) customerIn(t testing.TB, admin commands.Meta) string {
	t.Helper()
	n := b.seq.Add(1)
	res, err := b.cmd.RegisterCustomer(context.Background(), admin, domain.Profile{FirstName: "Cust", LastName: fmt.Sprint(n), Email: fmt.Sprintf("c%d@client.example", n)})
	if err != nil {
		t.Fatalf("register customer: %v", err)
	}
	return res.ID
}

func (b *testBundle) customer(t testing.TB) string { return b.customerIn(t, b.admin) }

func (b *testBundle) policy(t testing.TB, p domain.Policy) {
	t.Helper()
	if _, err := b.cmd.ChangePolicy(context.Background(), b.admin, p); err != nil {
		t.Fatalf("change policy: %v", err)
	}
}

func (b *testBundle) assign(t testing.TB, customerID string, userIDs ...string) commands.CustomerResult {
	t.Helper()
	var res commands.CustomerResult
	for _, u := range userIDs {
		var err error
		if res, err = b.cmd.AssignUser(context.Background(), b.admin, customerID, u); err != nil {
			t.Fatalf("assign %s: %v", u, err)
		}
	}
	return res
}

func (b *testBundle) eventCount(t testing.TB) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// states replays a customer stream and returns the customer after every
// event.
func (b *testBundle) states(t testing.TB, customerID string) []domain.Customer {
	t.Helper()
	events, err := b.store.ReadStream(context.Background(), b.tenantID, customerID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testdb.Keyring(t).OpenStream(context.Background(), b.pool, customerID, events); err != nil {
		t.Fatal(err)
	}
	var c domain.Customer
	var out []domain.Customer
	for _, ev := range events {
		e, err := domain.DecodeEvent(ev.Type, ev.SchemaVersion, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		c.Apply(e, ev.RecordedAt)
		out = append(out, c)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func keyed(m commands.Meta, key, request string) commands.Meta {
	h := sha256.Sum256([]byte(request))
	m.IdempotencyKey, m.RequestHash = key, h[:]
	return m
}

// wantErr checks err: "" none, "not_found", "precondition", "forbidden",
// "validation", "key_reused", or a RuleError code.
func wantErr(t testing.TB, err error, want string) {
	t.Helper()
	var ok bool
	switch want {
	case "":
		ok = err == nil
	case "not_found":
		ok = errors.Is(err, commands.ErrNotFound)
	case "precondition":
		ok = errors.Is(err, commands.ErrPreconditionFailed)
	case "forbidden":
		var f *domain.ForbiddenError
		ok = errors.As(err, &f)
	case "validation":
		var v *domain.ValidationError
		ok = errors.As(err, &v)
	case "key_reused":
		ok = errors.Is(err, eventstore.ErrIdempotencyKeyReused)
	default:
		ok = domain.IsRule(err, want)
	}
	if !ok {
		t.Fatalf("want error %q, got %T: %v", want, err, err)
	}
}

func teamOf(v commands.CustomerView) (ids []string, lead string) {
	for _, a := range v.Assignees {
		ids = append(ids, a.UserID)
		if a.Lead {
			lead = a.UserID
		}
	}
	return ids, lead
}
