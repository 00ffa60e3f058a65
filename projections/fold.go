package projections

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/keyring"
)

// member is one user on a customer's team as the customer projections keep
// it. Seq is the position of the event that put the user on the team; the
// team is in Seq order, as domain.Customer keeps it in assignment order.
type member struct {
	UserID     string
	Lead       bool
	AssignedAt time.Time
	Seq        int64
}

// applyTeam evolves a team by one event exactly as domain.Customer.Apply
// does (the tests hold the two side by side). It returns a new slice.
func applyTeam(team []member, e domain.Event, at time.Time, pos int64) []member {
	without := func(ids ...string) []member {
		out := make([]member, 0, len(team)+1)
		for _, m := range team {
			if !slices.Contains(ids, m.UserID) {
				out = append(out, m)
			}
		}
		return out
	}
	// join adds the user to t (a new slice of without), taking the lead
	// from the others when lead.
	join := func(t []member, id string, lead bool) []member {
		if lead {
			for i := range t {
				t[i].Lead = false
			}
		}
		return append(t, member{UserID: id, Lead: lead, AssignedAt: at, Seq: pos})
	}
	switch e := e.(type) {
	case domain.UserAssigned:
		return join(without(e.UserID), e.UserID, e.Lead)
	case domain.UserUnassigned:
		return without(e.UserID)
	case domain.TeamLeadChanged:
		t := slices.Clone(team)
		for i := range t {
			t[i].Lead = t[i].UserID == e.UserID
		}
		return t
	case domain.TeamMemberReplaced:
		return join(without(e.UserID, e.WithUserID), e.WithUserID, e.Lead)
	}
	return team
}

// customerState is a customer as customer_list shows it.
type customerState struct {
	ID                string
	TenantID          string
	Profile           domain.Profile
	Status            string
	StatusBeforeBlock string
	CreatedAt         time.Time
	Version           int64
	Team              []member
	// Groups are the IDs of the groups the customer is in, in joining
	// order (as domain.Customer keeps them). Replaced, never changed in
	// place: the fold cache keeps states it has written.
	Groups []string
	// Erased is set by CustomerErased.
	Erased bool
}

// apply mirrors domain.Customer.Apply for everything but the team, which
// applyTeam evolves.
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
	default:
		c.Team = applyTeam(c.Team, e, at, pos)
	}
	c.Version++
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
}

// stretchChanges turns a team change at (at, pos) into closed and opened
// stretches: a member whose place changed in any way (left, lead flag,
// re-assigned) ends its stretch, and its new place starts one.
func stretchChanges(before, after []member) (closed []string, opened []member) {
	// kept reports whether team t has m in the same place.
	kept := func(m member, t []member) bool {
		return slices.ContainsFunc(t, func(n member) bool {
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
}

func isCustomerEvent(typ string) bool { return slices.Contains(customerEventTypes, typ) }

// teamEventTypes are the events that change a customer's team.
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

// advance applies d, the event after fc's version, to the fold.
func (fc *foldCustomer) advance(d decoded) {
	fc.stretches.apply(d)
	if slices.Contains(teamEventTypes, d.env.Type) {
		// The stretch fold has just evolved the same team with applyTeam,
		// which never changes the slice it is given: share it rather than
		// compute it twice.
		fc.state.Team = fc.stretches.team
		fc.state.Version++
		return
	}
	fc.state.apply(d.event, d.env.RecordedAt, d.env.Position)
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
