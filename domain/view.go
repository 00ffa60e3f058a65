package domain

import (
	"strings"
)

// Saved views (contract v3): a named customer-list filter, a member's own
// or shared by an admin with the whole tenant. A view is a stream of its
// own; every event repeats the whole view, so any one of them tells the
// view from then on (the read model keeps the latest).

// ViewFilter is the customer list's filters as a view keeps them, as sent
// (assigned_user may say "me": the user who uses the view). The HTTP layer
// checks them with the list's own filter rules.
type ViewFilter struct {
	Q            string `json:"q"`
	Status       string `json:"status"`
	AssignedUser string `json:"assigned_user"`
	Group        string `json:"group"`
}

type ViewCreated struct {
	ViewID  string     `json:"view_id"`
	OwnerID string     `json:"owner_id"`
	Name    string     `json:"name"`
	Filter  ViewFilter `json:"filter"`
	Shared  bool       `json:"shared"`
}

type ViewChanged struct {
	ViewID  string     `json:"view_id"`
	OwnerID string     `json:"owner_id"`
	Name    string     `json:"name"`
	Filter  ViewFilter `json:"filter"`
	Shared  bool       `json:"shared"`
}

type ViewDeleted struct {
	ViewID  string     `json:"view_id"`
	OwnerID string     `json:"owner_id"`
	Name    string     `json:"name"`
	Filter  ViewFilter `json:"filter"`
	Shared  bool       `json:"shared"`
}

const (
	TypeViewCreated = "ViewCreated"
	TypeViewChanged = "ViewChanged"
	TypeViewDeleted = "ViewDeleted"
)

func (ViewCreated) EventType() string { return TypeViewCreated }
func (ViewChanged) EventType() string { return TypeViewChanged }
func (ViewDeleted) EventType() string { return TypeViewDeleted }

// View is a saved view, folded from its stream.
type View struct {
	ID      string
	OwnerID string
	Name    string
	Filter  ViewFilter
	Shared  bool
	Deleted bool
	Version int64
}

// Apply evolves v by one event of its stream.
func (v *View) Apply(e Event) {
	switch e := e.(type) {
	case ViewCreated:
		v.ID, v.OwnerID, v.Name, v.Filter, v.Shared = e.ViewID, e.OwnerID, e.Name, e.Filter, e.Shared
	case ViewChanged:
		v.Name, v.Filter, v.Shared = e.Name, e.Filter, e.Shared
	case ViewDeleted:
		v.Deleted = true
	}
	v.Version++
}

// VisibleTo reports whether a may see and use v: a shared view, or one's
// own. Another user's private view is unknown to everyone else, admins
// included.
func (v View) VisibleTo(a Actor) bool {
	return !v.Deleted && (v.Shared || (a.UserID != "" && v.OwnerID == a.UserID))
}

func normalizeViewFilter(f ViewFilter) (ViewFilter, error) {
	for field, s := range map[string]string{"filter.q": f.Q, "filter.status": f.Status, "filter.assigned_user": f.AssignedUser, "filter.group": f.Group} {
		if err := checkLine(field, s); err != nil {
			return ViewFilter{}, err
		}
	}
	return ViewFilter{Q: strings.TrimSpace(f.Q), Status: f.Status, AssignedUser: strings.TrimSpace(f.AssignedUser), Group: f.Group}, nil
}

func refuseAuditor(a Actor) error {
	if a.IsAuditor() || a.UserID == "" {
		return &ForbiddenError{Detail: "an auditor changes nothing"}
	}
	return nil
}

// CreateView decides a new view id owned by a; only an admin may share
// one with the tenant.
func CreateView(a Actor, id, name string, f ViewFilter, shared bool) ([]Event, error) {
	if err := refuseAuditor(a); err != nil {
		return nil, err
	}
	if shared && !a.IsAdmin() {
		return nil, &ForbiddenError{Detail: "only an admin may share a view with the tenant"}
	}
	name, err := normalizeName("name", name, true)
	if err != nil {
		return nil, err
	}
	if f, err = normalizeViewFilter(f); err != nil {
		return nil, err
	}
	return []Event{ViewCreated{ViewID: id, OwnerID: a.UserID, Name: name, Filter: f, Shared: shared}}, nil
}

// authorizeViewChange lets the owner change or delete a view, and an admin
// a shared one.
func (v View) authorizeViewChange(a Actor) error {
	if err := refuseAuditor(a); err != nil {
		return err
	}
	if v.OwnerID == a.UserID || (v.Shared && a.IsAdmin()) {
		return nil
	}
	return &ForbiddenError{Detail: "only its owner, or an admin for a shared view, may change a view"}
}

// Change decides a change of v (nil fields stay); the same view again
// appends nothing. Sharing or unsharing is an admin's.
func (v View) Change(a Actor, name *string, f *ViewFilter, shared *bool) ([]Event, error) {
	if err := v.authorizeViewChange(a); err != nil {
		return nil, err
	}
	next := ViewChanged{ViewID: v.ID, OwnerID: v.OwnerID, Name: v.Name, Filter: v.Filter, Shared: v.Shared}
	var err error
	if name != nil {
		if next.Name, err = normalizeName("name", *name, true); err != nil {
			return nil, err
		}
	}
	if f != nil {
		if next.Filter, err = normalizeViewFilter(*f); err != nil {
			return nil, err
		}
	}
	if shared != nil && *shared != v.Shared {
		if !a.IsAdmin() {
			return nil, &ForbiddenError{Detail: "only an admin may share or unshare a view"}
		}
		next.Shared = *shared
	}
	if next.Name == v.Name && next.Filter == v.Filter && next.Shared == v.Shared {
		return nil, nil
	}
	return []Event{next}, nil
}

// Delete decides the view's deletion.
func (v View) Delete(a Actor) ([]Event, error) {
	if err := v.authorizeViewChange(a); err != nil {
		return nil, err
	}
	return []Event{ViewDeleted{ViewID: v.ID, OwnerID: v.OwnerID, Name: v.Name, Filter: v.Filter, Shared: v.Shared}}, nil
}
