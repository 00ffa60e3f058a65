package domain

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// maxGroupName bounds a group's name, in characters: it is a label.
const maxGroupName = 100

// Group is a tenant's label for customers (Calendesk's groups), rebuilt
// from the group's own stream. Which customers are in it is the customers'
// state (CustomerAddedToGroup is in the customer's stream), so deleting a
// group writes nothing to its customers: read models hide a deleted group's
// memberships, and its stream keeps its history.
type Group struct {
	ID      string
	Name    string
	Deleted bool
	// Version is the number of events applied, i.e. the stream version.
	Version int64
}

// Apply evolves g by one event of its stream.
func (g *Group) Apply(e Event) {
	switch e := e.(type) {
	case GroupCreated:
		g.ID, g.Name = e.GroupID, e.Name
	case GroupRenamed:
		g.Name = e.Name
	case GroupDeleted:
		g.Deleted = true
	}
	g.Version++
}

// NormalizeGroupName trims name and checks it: one line without control
// characters, not empty, at most 100 characters.
func NormalizeGroupName(name string) (string, error) {
	if err := checkLine("name", name); err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalid("name", "must not be empty")
	case utf8.RuneCountInString(name) > maxGroupName:
		return "", invalid("name", "at most 100 characters")
	}
	return name, nil
}

// GroupNameKey is the value a group's name is unique by within a tenant:
// names differing only in case or surrounding space are the same name.
func GroupNameKey(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}

// CreateGroup decides creating group id named name.
func CreateGroup(id, name string) ([]Event, error) {
	name, err := NormalizeGroupName(name)
	if err != nil {
		return nil, err
	}
	return []Event{GroupCreated{GroupID: id, Name: name}}, nil
}

// Rename decides renaming the group; (nil, nil) when the name is the same.
func (g Group) Rename(name string) ([]Event, error) {
	name, err := NormalizeGroupName(name)
	if err != nil {
		return nil, err
	}
	if name == g.Name {
		return nil, nil
	}
	return []Event{GroupRenamed{GroupID: g.ID, Name: name}}, nil
}

// Delete decides deleting the group.
func (g Group) Delete() []Event {
	return []Event{GroupDeleted{GroupID: g.ID, Name: g.Name}}
}

// InGroup reports whether the customer is in group groupID.
func (c Customer) InGroup(groupID string) bool { return slices.Contains(c.Groups, groupID) }

// AddToGroup decides adding the customer to a group; nil when it is in it
// already.
func (c Customer) AddToGroup(groupID string) []Event {
	if c.InGroup(groupID) {
		return nil
	}
	return []Event{CustomerAddedToGroup{CustomerID: c.ID, GroupID: groupID}}
}

// RemoveFromGroup decides removing the customer from a group; nil when it
// is not in it.
func (c Customer) RemoveFromGroup(groupID string) []Event {
	if !c.InGroup(groupID) {
		return nil
	}
	return []Event{CustomerRemovedFromGroup{CustomerID: c.ID, GroupID: groupID}}
}

// CustomerAction is a bulk action on customers (POST /v1/customers/bulk).
type CustomerAction string

const (
	CustomerActionBlock           CustomerAction = "block"
	CustomerActionUnblock         CustomerAction = "unblock"
	CustomerActionDelete          CustomerAction = "delete"
	CustomerActionAddToGroup      CustomerAction = "add_to_group"
	CustomerActionRemoveFromGroup CustomerAction = "remove_from_group"
)

// Valid reports whether a is one of the contract's actions.
func (a CustomerAction) Valid() bool {
	switch a {
	case CustomerActionBlock, CustomerActionUnblock, CustomerActionDelete, CustomerActionAddToGroup, CustomerActionRemoveFromGroup:
		return true
	}
	return false
}

// NeedsGroup reports whether the action names a group.
func (a CustomerAction) NeedsGroup() bool {
	return a == CustomerActionAddToGroup || a == CustomerActionRemoveFromGroup
}

// DecideCustomerAction decides one customer's part of a bulk action. A
// customer already as the action would leave it is unchanged (nil events,
// nil error), not an error: blocking a blocked customer changes nothing.
func DecideCustomerAction(c Customer, a CustomerAction, groupID string) ([]Event, error) {
	if c.Erased {
		if a == CustomerActionDelete {
			return nil, nil
		}
		return nil, ruleErr(CodeErased, "customer %s was erased", c.ID)
	}
	switch a {
	case CustomerActionDelete:
		return c.Erase(), nil
	case CustomerActionBlock:
		if c.Status == CustomerStatusBlocked {
			return nil, nil
		}
		return c.Block()
	case CustomerActionUnblock:
		if c.Status != CustomerStatusBlocked {
			return nil, nil
		}
		return c.Unblock()
	case CustomerActionAddToGroup:
		return c.AddToGroup(groupID), nil
	case CustomerActionRemoveFromGroup:
		return c.RemoveFromGroup(groupID), nil
	}
	return nil, invalid("action", "unknown customer action "+string(a))
}
