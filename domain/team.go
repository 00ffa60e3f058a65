package domain

// SetTeam decides making the team exactly users (Endear's toggles and one
// Save): the differences as UserUnassigned, UserAssigned and TeamLeadChanged
// events, judged on the resulting team rather than one change at a time.
// lead names the lead ("" for: the current lead if kept, else under
// require_lead the first of users). (nil, nil) when nothing would change.
//
// The rules, on the resulting team: a user added must be active
// (user_deactivated); the team may not grow beyond max_assignees
// (max_assignees_reached), but a team already over a lowered limit may keep
// its size while members change, as with Replace; a team may not be
// emptied under require_assignee (customer_must_keep_an_assignee), nor its
// lead removed with nobody taking over under require_lead
// (lead_cannot_be_removed); the lead must be on the team
// (user_not_assigned).
//
// The events leave the old lead for last and hand the lead over first
// (TeamLeadChanged), so that no prefix of them leaves a team without its
// lead while another member is on it, as DeactivateUser does.
func (c Customer) SetTeam(users []User, lead string, pol Policy) ([]Event, error) {
	events, _, err := c.setTeam(users, lead, pol)
	return events, err
}

// SetTeamBy is SetTeam decided for actor a. Admins may set any team.
// Members may only add or remove themselves, when the policy lets them
// self-assign: their request must be what AssignUser or UnassignUser on
// themselves would do, so a member can neither choose the lead nor hand it
// over by leaving (lead_cannot_be_removed under require_lead, as for
// UnassignUser).
func (c Customer) SetTeamBy(a Actor, users []User, lead string, pol Policy) ([]Event, error) {
	if a.IsAdmin() {
		return c.SetTeam(users, lead, pol)
	}
	want := make(map[string]bool, len(users))
	for _, u := range users {
		want[u.ID] = true
	}
	changed := ""
	for _, u := range users {
		if _, on := c.Member(u.ID); !on {
			if u.ID != a.UserID {
				return nil, &ForbiddenError{Detail: "members may only add or remove themselves"}
			}
			changed = u.ID
		}
	}
	for _, m := range c.Team {
		if !want[m.UserID] {
			if m.UserID != a.UserID {
				return nil, &ForbiddenError{Detail: "members may only add or remove themselves"}
			}
			changed = m.UserID
		}
	}
	if changed != "" {
		if err := AuthorizeAssignment(a, pol, changed); err != nil {
			return nil, err
		}
	}
	if current, _ := c.Lead(); lead != "" && lead != current.UserID {
		return nil, &ForbiddenError{Detail: "only an admin may choose the team lead"}
	}
	events, err := c.SetTeam(users, lead, pol)
	if err != nil {
		return nil, err
	}
	if c.isLead(a.UserID) && !want[a.UserID] && pol.RequireLead {
		return nil, ruleErr(CodeLeadCannotBeRemoved, "user %s leads the team of customer %s; an admin must make another member lead first", a.UserID, c.ID)
	}
	return events, nil
}

// setTeam is SetTeam, also naming the user a refusal is blamed on (for a
// bulk edit's failing pair): the offending user, the lead, or the last
// member removed.
func (c Customer) setTeam(users []User, lead string, pol Policy) (events []Event, culprit string, err error) {
	want := make(map[string]bool, len(users))
	for _, u := range users {
		if want[u.ID] {
			return nil, u.ID, invalid("user_ids", "user "+u.ID+" is listed twice")
		}
		want[u.ID] = true
	}
	if lead != "" && !want[lead] {
		return nil, lead, ruleErr(CodeUserNotAssigned, "lead %s is not one of the team's users for customer %s", lead, c.ID)
	}
	var added []User
	for _, u := range users {
		if _, on := c.Member(u.ID); on {
			continue
		}
		if !u.Active() {
			return nil, u.ID, ruleErr(CodeUserDeactivated, "user %s is deactivated", u.ID)
		}
		if err := u.assignable(); err != nil {
			return nil, u.ID, err
		}
		added = append(added, u)
	}
	var removed []string
	for _, m := range c.Team {
		if !want[m.UserID] {
			removed = append(removed, m.UserID)
		}
	}
	if len(added) == 0 && len(removed) == 0 && (lead == "" || c.isLead(lead)) {
		return nil, "", nil
	}
	size := len(users)
	if pol.MaxAssignees != nil && size > *pol.MaxAssignees && size > len(c.Team) {
		excess := size - *pol.MaxAssignees
		return nil, added[max(0, len(added)-excess)].ID, ruleErr(CodeMaxAssigneesReached,
			"customer %s may have at most %d assignees; the team would have %d", c.ID, *pol.MaxAssignees, size)
	}
	oldLead, hasLead := c.Lead()
	if size == 0 && len(c.Team) > 0 {
		if pol.RequireAssignee {
			return nil, removed[len(removed)-1], ruleErr(CodeCustomerMustKeepAnAssignee,
				"customer %s must keep an assignee; replace the last one instead", c.ID)
		}
		if pol.RequireLead && hasLead {
			return nil, oldLead.UserID, ruleErr(CodeLeadCannotBeRemoved,
				"user %s leads the team of customer %s; it cannot be removed until another member takes over", oldLead.UserID, c.ID)
		}
	}
	newLead := lead
	switch {
	case newLead != "":
	case hasLead && want[oldLead.UserID]:
		newLead = oldLead.UserID
	case pol.RequireLead && size > 0:
		newLead = users[0].ID
	}

	cur := c
	emit := func(e Event) {
		events = append(events, e)
		cur.Apply(e, c.CreatedAt) // the time is not used for decisions
	}
	leadLeaves := hasLead && !want[oldLead.UserID]
	for _, id := range removed {
		if !(leadLeaves && id == oldLead.UserID) {
			emit(UserUnassigned{CustomerID: c.ID, UserID: id})
		}
	}
	for _, u := range added {
		_, curHasLead := cur.Lead()
		emit(UserAssigned{CustomerID: c.ID, UserID: u.ID, Lead: u.ID == newLead && !curHasLead})
	}
	if newLead != "" {
		if l, ok := cur.Lead(); !ok || l.UserID != newLead {
			emit(TeamLeadChanged{CustomerID: c.ID, UserID: newLead, PreviousUserID: l.UserID})
		}
	}
	if leadLeaves {
		emit(UserUnassigned{CustomerID: c.ID, UserID: oldLead.UserID})
	}
	return events, "", nil
}

func (c Customer) isLead(userID string) bool {
	m, ok := c.Member(userID)
	return ok && m.Lead
}
