package domain

import "time"

// Member is one user on a customer's team.
type Member struct {
	UserID     string
	Lead       bool
	AssignedAt time.Time
	// Seq is the log position of the event that put the user in this place
	// on the team, for folds that know positions (the read models, which
	// order and key a team's rows by it); 0 for those that do not (a
	// command's load).
	Seq int64
}

// Team is a customer's team in assignment order, oldest first. It is
// the one fold of team events: the Customer aggregate, the read models and
// every question about who is on a team (deactivation, policy changes)
// evolve a team with Apply and nothing else.
type Team []Member

// IsTeamEvent reports whether e changes a team (Team.Apply returns the
// team it was given for any other event).
func IsTeamEvent(e Event) bool {
	switch e.(type) {
	case UserAssigned, UserUnassigned, TeamLeadChanged, TeamMemberReplaced:
		return true
	}
	return false
}

// Apply returns the team after e, recorded at at and at log position seq
// (0 when unknown): at and seq stamp the member e puts on the team. The
// result is a new slice whenever e changes the team and t itself
// otherwise; t is never modified, so teams can be shared between copies
// of a state and compared before and after.
func (t Team) Apply(e Event, at time.Time, seq int64) Team {
	switch e := e.(type) {
	case UserAssigned:
		return t.join(t.without(e.UserID, ""), Member{UserID: e.UserID, Lead: e.Lead, AssignedAt: at, Seq: seq})
	case UserUnassigned:
		return t.without(e.UserID, "")
	case TeamLeadChanged:
		out := make(Team, len(t))
		for i, m := range t {
			m.Lead = m.UserID == e.UserID
			out[i] = m
		}
		return out
	case TeamMemberReplaced:
		return t.join(t.without(e.UserID, e.WithUserID), Member{UserID: e.WithUserID, Lead: e.Lead, AssignedAt: at, Seq: seq})
	}
	return t
}

// without returns a fresh copy of t without the users a and b ("" matches
// no one), with room for one more member.
func (t Team) without(a, b string) Team {
	out := make(Team, 0, len(t)+1)
	for _, m := range t {
		if m.UserID != a && (b == "" || m.UserID != b) {
			out = append(out, m)
		}
	}
	return out
}

// join appends m to fresh, a copy made by without, taking the lead from
// the others when m leads.
func (Team) join(fresh Team, m Member) Team {
	if m.Lead {
		for i := range fresh {
			fresh[i].Lead = false
		}
	}
	return append(fresh, m)
}

// Member returns userID's place on the team.
func (t Team) Member(userID string) (Member, bool) {
	for _, m := range t {
		if m.UserID == userID {
			return m, true
		}
	}
	return Member{}, false
}

// Lead returns the team lead, if the team has one.
func (t Team) Lead() (Member, bool) {
	for _, m := range t {
		if m.Lead {
			return m, true
		}
	}
	return Member{}, false
}

// TeamOf folds a customer's events (in stream order, without times or
// positions) into its team: who is on it and who leads, for questions that
// need nothing else of the customer.
func TeamOf(events []Event) Team {
	var t Team
	for _, e := range events {
		t = t.Apply(e, time.Time{}, 0)
	}
	return t
}
