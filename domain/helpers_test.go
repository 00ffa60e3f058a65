package domain_test

import (
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/domain"
)

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

func ptr(n int) *int { return &n }

func active(id string) domain.User {
	return domain.User{ID: id, Name: "User " + id, Email: id + "@example.com", Role: domain.RoleMember, Status: domain.UserStatusActive}
}

func deactivated(id string) domain.User {
	u := active(id)
	u.Status = domain.UserStatusDeactivated
	return u
}

// customer builds a customer by applying events, one second apart, the way
// a loader would.
func customer(id string, events ...domain.Event) domain.Customer {
	var c domain.Customer
	c.Apply(domain.CustomerRegistered{CustomerID: id, Profile: domain.Profile{FirstName: "Ann"}}, t0)
	for i, e := range events {
		c.Apply(e, t0.Add(time.Duration(i+1)*time.Second))
	}
	return c
}

// withTeam builds customer c1 whose team is ids in order; lead (if not "")
// is the lead.
func withTeam(lead string, ids ...string) domain.Customer {
	var evs []domain.Event
	for _, id := range ids {
		evs = append(evs, domain.UserAssigned{CustomerID: "c1", UserID: id, Lead: id == lead})
	}
	return customer("c1", evs...)
}

func leadID(c domain.Customer) string {
	m, _ := c.Lead()
	return m.UserID
}

// wantErr checks err against want: "" means no error, "validation" and
// "forbidden" the error kinds, anything else a RuleError code.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch want {
	case "":
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
	case "validation":
		if _, ok := err.(*domain.ValidationError); !ok {
			t.Fatalf("want ValidationError, got %T %v", err, err)
		}
	case "forbidden":
		if _, ok := err.(*domain.ForbiddenError); !ok {
			t.Fatalf("want ForbiddenError, got %T %v", err, err)
		}
	default:
		if !domain.IsRule(err, want) {
			t.Fatalf("want rule %q, got %T %v", want, err, err)
		}
	}
}

func boolPtr(b bool) *bool { return &b }
