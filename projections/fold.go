package projections

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/keyring"
)

// customerState is a customer as customer_list shows it.
type customerState struct {
	ID                string
	TenantID          string
	Profile           domain.Profile
	Status            string
	StatusBeforeBlock string
	CreatedAt         time.Time
	Version           int64
	// Team is evolved by domain.Team.Apply, the one fold of team events,
	// with each member's Seq the position of the event that put it there.
	Team domain.Team
	// Groups are the IDs of the groups the customer is in, in joining
	// order (as domain.Customer keeps them). Replaced, never changed in
	// place: the fold cache keeps states it has written.
	Groups []string
	// Erased is set by CustomerErased.
	Erased bool
	// FollowUps are the customer's follow-ups, evolved in place by
	// domain.FollowUpsApplyInPlace: a fold's state is its own (the fold
	// cache keeps the fold itself, never a copy of its state).
	FollowUps map[string]domain.FollowUp
	// FollowUpsChanged are the IDs of the follow-ups changed since the
	// fold was last written: only their rows are given, so that an event
	// of a customer with years of follow-ups costs what it changed
	// (table.partial). A fold never written (a rebuild's, a customer read
	// from its stream's start) tracks none and gives them all.
	FollowUpsChanged map[string]bool
	// MembersChanged are the users whose place on the team changed (joined,
	// left, lead flag, re-assigned) since the fold was last written, and
	// every member of an erased customer: only their my_clients rows are
	// given (table.partial), so that an event costs what it changed, not
	// the whole team. A fold never written tracks none and gives the team.
	MembersChanged map[string]bool
	// written is set once the engine has written the fold's rows.
	written bool
}

// apply evolves the state as domain.Customer.Apply does, the team through
// the same domain.Team.Apply.
func (c *customerState) apply(e domain.Event, at time.Time, pos int64) {
	switch e := e.(type) {
	case domain.CustomerRegistered:
		c.ID, c.Profile, c.Status, c.CreatedAt = e.CustomerID, e.Profile, string(domain.CustomerStatusActive), at
	case domain.ClientInvited:
		c.ID, c.Profile, c.Status, c.CreatedAt = e.CustomerID, e.Profile, string(domain.CustomerStatusInvited), at
	case domain.CustomerUpdated:
		c.Profile = e.Profile
	case domain.InvitationAccepted:
		c.Status = string(domain.CustomerStatusActive)
	case domain.CustomerBlocked:
		c.StatusBeforeBlock, c.Status = c.Status, string(domain.CustomerStatusBlocked)
	case domain.CustomerUnblocked:
		c.Status, c.StatusBeforeBlock = cmp.Or(c.StatusBeforeBlock, string(domain.CustomerStatusActive)), ""
	case domain.CustomerAddedToGroup:
		if !slices.Contains(c.Groups, e.GroupID) {
			c.Groups = append(slices.Clip(c.Groups), e.GroupID)
		}
	case domain.CustomerRemovedFromGroup:
		c.Groups = slices.DeleteFunc(slices.Clone(c.Groups), func(g string) bool { return g == e.GroupID })
	case domain.InvitationEmailed, domain.CustomerMessaged:
		// Only the version moves: the lists do not show e-mails.
	case domain.CustomerErased:
		// The fold read models give an erased customer no rows but its
		// IDs (assignment_intervals, versions); the profile is forgotten.
		c.Erased, c.Profile = true, domain.Profile{Erased: true}
		for _, m := range c.Team {
			c.track(&c.MembersChanged, m.UserID)
		}
		for id := range c.FollowUps {
			c.track(&c.FollowUpsChanged, id) // each becomes a tombstone
		}
	case domain.UserAssigned, domain.UserUnassigned, domain.TeamLeadChanged, domain.TeamMemberReplaced:
		c.Team = c.Team.Apply(e, at, pos)
	case domain.FollowUpScheduled, domain.FollowUpCompleted, domain.FollowUpSnoozed, domain.FollowUpCancelled, domain.FollowUpDue:
		c.FollowUps = domain.FollowUpsApplyInPlace(c.FollowUps, e, at)
		if id := followUpID(e); id != "" {
			c.track(&c.FollowUpsChanged, id)
		}
	}
	c.Version++
}

// track records in set that the row of id changed, when the fold tracks
// changes (it was written: a fold never written gives every row).
func (c *customerState) track(set *map[string]bool, id string) {
	if !c.written {
		return
	}
	if *set == nil {
		*set = map[string]bool{}
	}
	(*set)[id] = true
}

// followUpID is the follow-up a follow-up event is about.
func followUpID(e domain.Event) string {
	switch e := e.(type) {
	case domain.FollowUpScheduled:
		return e.FollowUpID
	case domain.FollowUpCompleted:
		return e.FollowUpID
	case domain.FollowUpSnoozed:
		return e.FollowUpID
	case domain.FollowUpCancelled:
		return e.FollowUpID
	case domain.FollowUpDue:
		return e.FollowUpID
	}
	return ""
}

// created reports whether the customer's creation event has been applied.
func (c *customerState) created() bool { return !c.CreatedAt.IsZero() }

// stretch is one member's stretch on a customer's team: an
// assignment_intervals row without the customer's IDs.
type stretch struct {
	UserID     string
	Lead       bool
	AssignedAt time.Time
	Seq        int64
	From       time.Time
	FromPos    int64
	To         *time.Time
	ToPos      *int64
	// pending: in stretchFold.all, its row still to give.
	pending bool
}

// stretchChanges turns a team change at (at, pos) into closed and opened
// stretches: a member whose place changed in any way (left, lead flag,
// re-assigned) ends its stretch, and its new place starts one.
func stretchChanges(before, after domain.Team) (closed []string, opened []domain.Member) {
	// kept reports whether team t has m in the same place.
	kept := func(m domain.Member, t domain.Team) bool {
		return slices.ContainsFunc(t, func(n domain.Member) bool {
			return n.UserID == m.UserID && n.Lead == m.Lead && n.AssignedAt.Equal(m.AssignedAt) && n.Seq == m.Seq
		})
	}
	for _, m := range before {
		if !kept(m, after) {
			closed = append(closed, m.UserID)
		}
	}
	for _, n := range after {
		if !kept(n, before) {
			opened = append(opened, n)
		}
	}
	return closed, opened
}

// customerEventTypes are the events of a customer's stream.
var customerEventTypes = []string{
	domain.TypeCustomerRegistered, domain.TypeClientInvited, domain.TypeCustomerUpdated,
	domain.TypeInvitationAccepted, domain.TypeCustomerBlocked, domain.TypeCustomerUnblocked,
	domain.TypeUserAssigned, domain.TypeUserUnassigned, domain.TypeTeamLeadChanged, domain.TypeTeamMemberReplaced,
	domain.TypeCustomerAddedToGroup, domain.TypeCustomerRemovedFromGroup,
	domain.TypeInvitationEmailed, domain.TypeCustomerMessaged, domain.TypeCustomerErased,
	// Follow-ups (v3).
	domain.TypeFollowUpScheduled, domain.TypeFollowUpCompleted, domain.TypeFollowUpSnoozed,
	domain.TypeFollowUpCancelled, domain.TypeFollowUpDue,
}

func isCustomerEvent(typ string) bool { return slices.Contains(customerEventTypes, typ) }

// teamEventTypes are the events that change a customer's team (those of
// domain.IsTeamEvent).
var teamEventTypes = []string{
	domain.TypeUserAssigned, domain.TypeUserUnassigned, domain.TypeTeamLeadChanged, domain.TypeTeamMemberReplaced,
}

// foldCustomer is one customer being folded.
type foldCustomer struct {
	state     customerState
	stretches *stretchFold
	// frozen: a version was missing (its transaction committed after its
	// range was read), so the fold keeps the prefix it has and the rest of
	// the stream comes through catch-up, which fills the gap.
	frozen bool
}

// advance applies d, the event after fc's version, to the fold: the
// state once (its team included), then the stretches the team's change
// closed and opened, whose members' places changed.
func (fc *foldCustomer) advance(d decoded) {
	before := fc.state.Team
	fc.state.apply(d.event, d.env.RecordedAt, d.env.Position)
	if domain.IsTeamEvent(d.event) {
		closed, opened := stretchChanges(before, fc.state.Team)
		fc.stretches.changed(closed, opened, d.env.RecordedAt, d.env.Position)
		for _, id := range closed {
			fc.state.track(&fc.state.MembersChanged, id)
		}
		for _, m := range opened {
			fc.state.track(&fc.state.MembersChanged, m.UserID)
		}
	}
}

type decoded struct {
	env   *envelope
	event domain.Event
}

// decode opens a sealed event with the key read beside it (an erased
// customer's opens to its ID alone) and decodes it.
func decode(keys *keyring.Keyring, env *envelope) (decoded, error) {
	schema, data, _, err := keys.Open(env.Type, env.SchemaVersion, env.Data, env.Key)
	if err != nil {
		return decoded{}, fmt.Errorf("event %d: %w", env.Position, err)
	}
	env.Key = nil
	e, err := domain.DecodeEvent(env.Type, schema, data)
	if err != nil {
		return decoded{}, fmt.Errorf("event %d: %w", env.Position, err)
	}
	env.RecordedAt = env.RecordedAt.UTC()
	return decoded{env: env, event: e}, nil
}
