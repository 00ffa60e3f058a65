package console

import "github.com/assignment-ledger/ledger/domain"

// navItem is one link of the header. A new page adds its line to navItems
// (in the order shown), with who may open it: the header shows a user only
// the pages their role may open, as the page's guard decides (register).
type navItem struct {
	// Key is what a page sets as view.Nav to be marked current.
	Key, Path, Label string
	Who              audience
}

// navItems are the header's links.
var navItems = []navItem{
	{Key: "customers", Path: "/customers", Label: "Customers", Who: anyone},
	{Key: "mine", Path: "/my-clients", Label: "My Clients", Who: anyone},
	{Key: "notifications", Path: "/notifications", Label: "Notifications", Who: anyone},
	{Key: "follow-ups", Path: "/follow-ups", Label: "Follow-ups", Who: anyone},
	{Key: "views", Path: "/views", Label: "Views", Who: anyone},
	{Key: "groups", Path: "/groups", Label: "Groups", Who: anyone},
	{Key: "users", Path: "/users", Label: "Users", Who: readers},
	{Key: "audit", Path: "/audit", Label: "Audit", Who: readers},
	{Key: "workload", Path: "/workload", Label: "Workload", Who: readers},
	{Key: "rules", Path: "/rules", Label: "Rules", Who: readers},
	{Key: "import", Path: "/import", Label: "Import", Who: admins},
	{Key: "invite", Path: "/invite", Label: "Invite", Who: admins},
	{Key: "policy", Path: "/policy", Label: "Policy", Who: admins},
}

// navFor answers the links a's role may open.
func navFor(a domain.Actor) []navItem {
	out := make([]navItem, 0, len(navItems))
	for _, n := range navItems {
		switch {
		case n.Who == readers && !a.ReadsAll(), n.Who == admins && !a.IsAdmin():
			continue
		}
		out = append(out, n)
	}
	return out
}
