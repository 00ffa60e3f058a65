package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/assignment-ledger/ledger/domain"
)

// Follow-ups are customer commands: their events go to the customer's
// stream through the unit of work, decided by domain.Customer on the
// customer as it stands under the stream's lock (see domain/followup.go).

// FollowUpView is a follow-up as the API shows it.
type FollowUpView struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	DueAt      time.Time `json:"due_at"`
	Note       string    `json:"note"`
	To         string    `json:"to"`
	Status     string    `json:"status"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
}

// FollowUpResult is the answer of a follow-up command.
type FollowUpResult struct {
	FollowUpView
	Position int64 `json:"position"`
}

func followUpView(customerID string, f domain.FollowUp) FollowUpView {
	return FollowUpView{ID: f.ID, CustomerID: customerID, DueAt: f.DueAt.UTC(), Note: f.Note, To: f.To, Status: f.Status,
		CreatedBy: f.CreatedBy, CreatedAt: f.CreatedAt.UTC()}
}

// FollowUpRequest is a new follow-up.
type FollowUpRequest struct {
	DueAt time.Time
	Note  string
	// To is "team" (every member, the default) or "lead".
	To string
}

// ScheduleFollowUp adds a follow-up to the customer (admin, or a member of
// its team): FollowUpScheduled, its note sealed with the customer's key.
func (c *Commands) ScheduleFollowUp(ctx context.Context, m Meta, customerID string, req FollowUpRequest) (FollowUpResult, error) {
	id := newID()
	return c.followUpCommand(ctx, "ScheduleFollowUp", m, customerID, id, func(cu domain.Customer, id string) ([]domain.Event, error) {
		return cu.ScheduleFollowUp(m.Actor, id, req.DueAt, req.Note, req.To)
	})
}

// CompleteFollowUp marks the customer's follow-up done (done already:
// nothing changes).
func (c *Commands) CompleteFollowUp(ctx context.Context, m Meta, customerID, followUpID string) (FollowUpResult, error) {
	return c.followUpCommand(ctx, "CompleteFollowUp", m, customerID, followUpID, func(cu domain.Customer, id string) ([]domain.Event, error) {
		return cu.CompleteFollowUp(m.Actor, id)
	})
}

// SnoozeFollowUp moves an open follow-up's due time to until (after now).
func (c *Commands) SnoozeFollowUp(ctx context.Context, m Meta, customerID, followUpID string, until time.Time) (FollowUpResult, error) {
	return c.followUpCommand(ctx, "SnoozeFollowUp", m, customerID, followUpID, func(cu domain.Customer, id string) ([]domain.Event, error) {
		return cu.SnoozeFollowUp(m.Actor, id, until, now())
	})
}

// CancelFollowUp deletes the customer's follow-up: FollowUpCancelled; it
// is not found afterwards.
func (c *Commands) CancelFollowUp(ctx context.Context, m Meta, customerID, followUpID string) (FollowUpResult, error) {
	return c.followUpCommand(ctx, "CancelFollowUp", m, customerID, followUpID, func(cu domain.Customer, id string) ([]domain.Event, error) {
		return cu.CancelFollowUp(m.Actor, id)
	})
}

// ActorScheduler is the actor of FollowUpDue events.
const ActorScheduler = "follow-up scheduler"

// FollowUpFallsDue records that the customer's follow-up fell due at now
// (FollowUpDue, its recipients taken from the team under the stream's
// lock), unless it is not pending or not due by now. Two processes asking at
// once, or one asking again after a restart, write it once: the second
// decides on the stream with the first's event in it. fired reports
// whether this call wrote it.
func (c *Commands) FollowUpFallsDue(ctx context.Context, tenantID, customerID, followUpID string, at time.Time) (position int64, fired bool, err error) {
	m := Meta{TenantID: tenantID, Actor: domain.Actor{Name: ActorScheduler}}
	var wrote bool
	res, err := c.customerCommand(ctx, "FollowUpFallsDue", m, customerID, nil,
		func(cu domain.Customer, _ map[string]domain.User, _ domain.Policy) ([]domain.Event, error) {
			events := cu.FollowUpFallsDue(followUpID, at)
			wrote = len(events) > 0
			return events, nil
		})
	if errors.Is(err, ErrErased) {
		return 0, false, nil // its follow-ups were cancelled by the erasure
	}
	if err != nil {
		return 0, false, fmt.Errorf("follow-up %s falls due: %w", followUpID, err)
	}
	return res.Position, wrote, nil
}

func (c *Commands) followUpCommand(ctx context.Context, name string, m Meta, customerID, followUpID string,
	decide func(cu domain.Customer, id string) ([]domain.Event, error)) (FollowUpResult, error) {
	fid, ok := parseID(followUpID)
	if !ok {
		return FollowUpResult{}, notFound("follow-up", followUpID)
	}
	m, err := m.prepare()
	if err != nil {
		return FollowUpResult{}, err
	}
	cid, ok := parseID(customerID)
	if !ok {
		return FollowUpResult{}, notFound("customer", customerID)
	}
	res, err := c.unit.run(ctx, &customerOp{name: name, m: m, customerID: cid, followUp: fid,
		decide: func(cu domain.Customer, _ map[string]domain.User, _ domain.Policy) ([]domain.Event, error) {
			events, err := decide(cu, fid)
			if errors.Is(err, domain.ErrFollowUpNotFound) {
				return nil, notFound("follow-up", fid)
			}
			return events, err
		}})
	if err != nil {
		return FollowUpResult{}, err
	}
	if res.FollowUp == nil {
		return FollowUpResult{}, notFound("follow-up", fid)
	}
	return FollowUpResult{FollowUpView: *res.FollowUp, Position: res.Position}, nil
}
