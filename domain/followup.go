package domain

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"time"
)

// Follow-ups (contract v3). A follow-up is the customer's: its events go to
// the customer's stream, so the decision that it fell due is taken under the
// same lock as every team change, on the team as it stands at that moment
// (a customer reassigned before the due time reminds its new team), and the
// note is sealed with the customer's data key like the profile (erasure
// shreds it).

// Follow-up recipients.
const (
	FollowUpToTeam = "team"
	FollowUpToLead = "lead"
)

// Follow-up statuses. A cancelled follow-up is gone: it is not listed and
// its ID is not found.
const (
	FollowUpStatusOpen      = "open"
	FollowUpStatusDone      = "done"
	FollowUpStatusCancelled = "cancelled"
)

// MaxFollowUpNote bounds a follow-up's note, in characters.
const MaxFollowUpNote = 10_000

// CodeFollowUpDone refuses snoozing a follow-up that is done (HTTP 409).
const CodeFollowUpDone = "follow_up_done"

// ErrFollowUpNotFound is a follow-up the customer does not have (or one
// that was cancelled); the commands answer it as not found.
var ErrFollowUpNotFound = errors.New("follow-up not found")

// FollowUp is one follow-up of a customer.
type FollowUp struct {
	ID        string
	DueAt     time.Time
	Note      string
	To        string
	Status    string
	CreatedBy string
	CreatedAt time.Time
	// Fired is true once FollowUpDue was recorded for the current DueAt;
	// a snooze sets a new DueAt and clears it.
	Fired bool
	// DueTeam is the team as it stood at DueAt, kept (DueTeamKept) when
	// the team first changes at or after DueAt while the follow-up is
	// still pending: a reminder recorded late (a backlog after downtime,
	// or the scheduler's next round) goes to the team of the moment it
	// was due, not to today's. Until then that team is the customer's.
	DueTeam     Team
	DueTeamKept bool
}

// Pending reports whether f still has to fall due: open, and not yet
// recorded due for its current due time.
func (f FollowUp) Pending() bool { return f.Status == FollowUpStatusOpen && !f.Fired }

type FollowUpScheduled struct {
	FollowUpID string    `json:"follow_up_id"`
	CustomerID string    `json:"customer_id"`
	DueAt      time.Time `json:"due_at"`
	Note       string    `json:"note"`
	To         string    `json:"to"`
	CreatedBy  string    `json:"created_by"`
}

type FollowUpCompleted struct {
	FollowUpID string `json:"follow_up_id"`
	CustomerID string `json:"customer_id"`
}

// FollowUpSnoozed moves the due time to Until.
type FollowUpSnoozed struct {
	FollowUpID string    `json:"follow_up_id"`
	CustomerID string    `json:"customer_id"`
	Until      time.Time `json:"until"`
}

// FollowUpCancelled ends a follow-up; Reason is "erased" when the
// customer's erasure cancelled it.
type FollowUpCancelled struct {
	FollowUpID string `json:"follow_up_id"`
	CustomerID string `json:"customer_id"`
	Reason     string `json:"reason,omitempty"`
}

// FollowUpDue records that a follow-up fell due and whom it reminded: the
// recipients decided at that moment from the customer's team.
type FollowUpDue struct {
	FollowUpID string    `json:"follow_up_id"`
	CustomerID string    `json:"customer_id"`
	DueAt      time.Time `json:"due_at"`
	To         string    `json:"to"`
	Recipients []string  `json:"recipients"`
}

const (
	TypeFollowUpScheduled = "FollowUpScheduled"
	TypeFollowUpCompleted = "FollowUpCompleted"
	TypeFollowUpSnoozed   = "FollowUpSnoozed"
	TypeFollowUpCancelled = "FollowUpCancelled"
	TypeFollowUpDue       = "FollowUpDue"
)

func (FollowUpScheduled) EventType() string { return TypeFollowUpScheduled }
func (FollowUpCompleted) EventType() string { return TypeFollowUpCompleted }
func (FollowUpSnoozed) EventType() string   { return TypeFollowUpSnoozed }
func (FollowUpCancelled) EventType() string { return TypeFollowUpCancelled }
func (FollowUpDue) EventType() string       { return TypeFollowUpDue }

// IsFollowUpEvent reports whether e is one of a customer's follow-up
// events: records on the customer's stream that do not change the customer
// (If-Match and ETags ignore them, see Customer.MatchesVersion).
func IsFollowUpEvent(e Event) bool {
	switch e.(type) {
	case FollowUpScheduled, FollowUpCompleted, FollowUpSnoozed, FollowUpCancelled, FollowUpDue:
		return true
	}
	return false
}

// FollowUpsApply returns the follow-ups after e recorded at at: a new map
// when e changes them (the maps of copies of a customer are never changed
// in place), fs itself otherwise. A FollowUpScheduled opened as erased (its
// customer's key is gone) keeps its ID, due time, recipients and author
// with an empty note (sealed partly), or, written before that, has no ID
// and adds nothing.
func FollowUpsApply(fs map[string]FollowUp, e Event, at time.Time) map[string]FollowUp {
	f, ok := followUpAfter(fs, e, at)
	if !ok {
		return fs
	}
	out := maps.Clone(fs)
	if out == nil {
		out = map[string]FollowUp{}
	}
	out[f.ID] = f
	return out
}

// FollowUpsApplyInPlace is FollowUpsApply for a map that its caller alone
// holds (a projection's fold): it changes fs, made when nil, and returns
// it. Copying the map on every change made folding a customer's stream
// quadratic in its follow-ups.
func FollowUpsApplyInPlace(fs map[string]FollowUp, e Event, at time.Time) map[string]FollowUp {
	if f, ok := followUpAfter(fs, e, at); ok {
		if fs == nil {
			fs = map[string]FollowUp{}
		}
		fs[f.ID] = f
	}
	return fs
}

// followUpAfter returns the follow-up that e changes as e leaves it, and
// false when e changes none.
func followUpAfter(fs map[string]FollowUp, e Event, at time.Time) (FollowUp, bool) {
	change := func(id string, fn func(f *FollowUp)) (FollowUp, bool) {
		f, ok := fs[id]
		if ok {
			fn(&f)
		}
		return f, ok
	}
	switch e := e.(type) {
	case FollowUpScheduled:
		if e.FollowUpID == "" {
			return FollowUp{}, false
		}
		return FollowUp{ID: e.FollowUpID, DueAt: e.DueAt.UTC(), Note: e.Note, To: e.To,
			Status: FollowUpStatusOpen, CreatedBy: e.CreatedBy, CreatedAt: at}, true
	case FollowUpCompleted:
		return change(e.FollowUpID, func(f *FollowUp) { f.Status = FollowUpStatusDone })
	case FollowUpSnoozed:
		return change(e.FollowUpID, func(f *FollowUp) {
			f.DueAt, f.Fired = e.Until.UTC(), false
			f.DueTeam, f.DueTeamKept = nil, false
		})
	case FollowUpCancelled:
		return change(e.FollowUpID, func(f *FollowUp) { f.Status = FollowUpStatusCancelled })
	case FollowUpDue:
		return change(e.FollowUpID, func(f *FollowUp) {
			f.Fired = true
			f.DueTeam, f.DueTeamKept = nil, false // reminded: no longer needed
		})
	}
	return FollowUp{}, false
}

// keepDueTeams returns the follow-ups as a change of team recorded at at
// leaves them: each pending one due by then that has not kept its team yet
// keeps team, the team before the change. A new map when one does (the
// maps of copies of a customer are never changed in place), fs otherwise.
func keepDueTeams(fs map[string]FollowUp, team Team, at time.Time) map[string]FollowUp {
	var out map[string]FollowUp
	for id, f := range fs {
		if !f.Pending() || f.DueTeamKept || f.DueAt.After(at) {
			continue
		}
		if out == nil {
			out = maps.Clone(fs)
		}
		f.DueTeam, f.DueTeamKept = team, true
		out[id] = f
	}
	if out == nil {
		return fs
	}
	return out
}

// FollowUp returns the customer's live (not cancelled) follow-up id.
func (c Customer) FollowUp(id string) (FollowUp, bool) {
	f, ok := c.FollowUps[id]
	if !ok || f.Status == FollowUpStatusCancelled {
		return FollowUp{}, false
	}
	return f, true
}

// authorizeFollowUp lets admins and the customer's team members manage its
// follow-ups.
func (c Customer) authorizeFollowUp(a Actor) error {
	if a.IsAdmin() {
		return nil
	}
	if a.IsAuditor() {
		return &ForbiddenError{Detail: "an auditor changes nothing"}
	}
	if _, ok := c.Member(a.UserID); ok && a.UserID != "" {
		return nil
	}
	return &ForbiddenError{Detail: "only an admin or a member of the customer's team may manage its follow-ups"}
}

// NormalizeFollowUpTo returns the recipients' kind, "team" when empty.
func NormalizeFollowUpTo(to string) (string, error) {
	switch to {
	case "":
		return FollowUpToTeam, nil
	case FollowUpToTeam, FollowUpToLead:
		return to, nil
	}
	return "", invalid("to", `must be "team" or "lead"`)
}

// ScheduleFollowUp decides a new follow-up id of the customer, due at
// dueAt, by actor a (admin or team member).
func (c Customer) ScheduleFollowUp(a Actor, id string, dueAt time.Time, note, to string) ([]Event, error) {
	if err := c.authorizeFollowUp(a); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, invalid("id", "must not be empty")
	}
	if dueAt.IsZero() {
		return nil, invalid("due_at", "is required (RFC 3339)")
	}
	to, err := NormalizeFollowUpTo(to)
	if err != nil {
		return nil, err
	}
	note = strings.TrimSpace(note)
	if note != "" {
		if err := checkText("note", note, MaxFollowUpNote, true); err != nil {
			return nil, err
		}
	}
	return []Event{FollowUpScheduled{FollowUpID: id, CustomerID: c.ID, DueAt: dueAt.UTC().Truncate(time.Microsecond),
		Note: note, To: to, CreatedBy: a.UserID}}, nil
}

// CompleteFollowUp marks it done; done already changes nothing.
func (c Customer) CompleteFollowUp(a Actor, id string) ([]Event, error) {
	f, err := c.followUpFor(a, id)
	if err != nil || f.Status == FollowUpStatusDone {
		return nil, err
	}
	return []Event{FollowUpCompleted{FollowUpID: id, CustomerID: c.ID}}, nil
}

// SnoozeFollowUp moves an open follow-up's due time to until, which must
// lie after now; it falls due again then (also after it fell due once).
func (c Customer) SnoozeFollowUp(a Actor, id string, until, now time.Time) ([]Event, error) {
	f, err := c.followUpFor(a, id)
	if err != nil {
		return nil, err
	}
	if until.IsZero() {
		return nil, invalid("until", "is required (RFC 3339)")
	}
	if !until.After(now) {
		return nil, invalid("until", "must be in the future")
	}
	if f.Status == FollowUpStatusDone {
		return nil, ruleErr(CodeFollowUpDone, "follow-up %s is done; it cannot be snoozed", id)
	}
	return []Event{FollowUpSnoozed{FollowUpID: id, CustomerID: c.ID, Until: until.UTC().Truncate(time.Microsecond)}}, nil
}

// CancelFollowUp deletes a follow-up (open or done).
func (c Customer) CancelFollowUp(a Actor, id string) ([]Event, error) {
	if _, err := c.followUpFor(a, id); err != nil {
		return nil, err
	}
	return []Event{FollowUpCancelled{FollowUpID: id, CustomerID: c.ID}}, nil
}

func (c Customer) followUpFor(a Actor, id string) (FollowUp, error) {
	f, ok := c.FollowUp(id)
	if !ok {
		return FollowUp{}, ErrFollowUpNotFound
	}
	if err := c.authorizeFollowUp(a); err != nil {
		return FollowUp{}, err
	}
	return f, nil
}

// FollowUpFallsDue decides that follow-up id fell due at now: FollowUpDue
// naming its recipients from the team as it stood at the due time (every
// member, or the lead alone), or nothing when it is not pending or not due
// yet (done, cancelled, snoozed past now, or recorded due already: so
// whoever asks twice, the event is written once). A follow-up to the lead
// of a team with no lead reminds the whole team rather than nobody; one of
// a customer with no team falls due with no recipients.
func (c Customer) FollowUpFallsDue(id string, now time.Time) []Event {
	f, ok := c.FollowUps[id]
	if c.Erased || !ok || !f.Pending() || f.DueAt.After(now) {
		return nil
	}
	team := c.Team
	if f.DueTeamKept {
		team = f.DueTeam
	}
	recipients := []string{}
	if l, ok := team.Lead(); ok && f.To == FollowUpToLead {
		recipients = append(recipients, l.UserID)
	} else {
		for _, m := range team {
			recipients = append(recipients, m.UserID)
		}
	}
	return []Event{FollowUpDue{FollowUpID: id, CustomerID: c.ID, DueAt: f.DueAt, To: f.To, Recipients: recipients}}
}

// cancelFollowUpsForErasure cancels every open follow-up of the customer
// (erasure), in ID order. A done one stays done: no command takes a
// follow-up from done to cancelled, and the audit would read it as never
// done (found by hostile testing).
func (c Customer) cancelFollowUpsForErasure() []Event {
	var out []Event
	for _, id := range slices.Sorted(maps.Keys(c.FollowUps)) {
		if c.FollowUps[id].Status == FollowUpStatusOpen {
			out = append(out, FollowUpCancelled{FollowUpID: id, CustomerID: c.ID, Reason: "erased"})
		}
	}
	return out
}
