package console

import (
	nethttp "net/http"
	"slices"
	"strings"
)

// listColumn is an optional column of the customer table. Name, e-mail,
// status and the Assigned User column are always shown; these are chosen.
type listColumn struct {
	Key, Label string
}

// Column keys. colFollowUps counts each customer's open follow-ups that
// are due (the follow_ups table of the customer list).
const (
	colPhone      = "phone"
	colExternalID = "external_id"
	colTitle      = "title"
	colCreated    = "created"
	colGroups     = "groups"
	colFollowUps  = "followups"
)

// listColumns are the optional columns, in the table's order.
var listColumns = []listColumn{
	{colPhone, "Phone"}, {colExternalID, "External ID"}, {colTitle, "Title"},
	{colCreated, "Created"}, {colGroups, "Groups"}, {colFollowUps, "Follow-ups due"},
}

// columnsCookie keeps a user's choice of columns in their browser. The
// choice is a display preference, not ledger state: the event log is the
// audited record of assignments, so it is not written there, and a table
// of preferences would be a migration for a presentation detail. The
// cookie names the user it belongs to, so another user signing in on the
// same browser starts from the default columns.
const columnsCookie = "ledger_columns"

// columnsYear is how long the browser keeps the choice.
const columnsYear = 365 * 24 * 3600

// offeredColumns are the columns the chooser offers.
func (c *Console) offeredColumns() []listColumn {
	return listColumns
}

// chosenColumns answers the columns to show: the chooser's ticks when the
// request comes from it (cols=1; then they are also kept in the cookie),
// else the user's kept choice, else none. Unknown keys are dropped.
func (c *Console) chosenColumns(w nethttp.ResponseWriter, r *nethttp.Request, userID string) map[string]bool {
	offered := c.offeredColumns()
	keep := func(keys []string) map[string]bool {
		out := map[string]bool{}
		for _, k := range keys {
			if slices.ContainsFunc(offered, func(l listColumn) bool { return l.Key == k }) {
				out[k] = true
			}
		}
		return out
	}
	q := r.URL.Query()
	if q.Get("cols") == "1" {
		chosen := keep(q["col"])
		keys := make([]string, 0, len(chosen))
		for _, l := range offered {
			if chosen[l.Key] {
				keys = append(keys, l.Key)
			}
		}
		if w != nil {
			nethttp.SetCookie(w, &nethttp.Cookie{Name: columnsCookie, Value: userID + ":" + strings.Join(keys, "."), Path: "/",
				HttpOnly: true, SameSite: nethttp.SameSiteLaxMode, Secure: secure(r), MaxAge: columnsYear})
		}
		return chosen
	}
	ck, err := r.Cookie(columnsCookie)
	if err != nil {
		return map[string]bool{}
	}
	owner, list, ok := strings.Cut(ck.Value, ":")
	if !ok || owner != userID || list == "" {
		return map[string]bool{}
	}
	return keep(strings.Split(list, "."))
}
