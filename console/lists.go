package console

import (
	nethttp "net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/assignment-ledger/ledger/projections"
)

type myClientsData struct {
	Q       string
	Items   []projections.MyClient
	NextURL string
}

func (c *Console) myClients(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	lagging := c.waitForPosition(r, projections.MyClients, projections.CustomerList)
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	pg, err := c.d.Queries.MyClients(r.Context(), s.TenantID, s.UserID, q, pageSize, r.URL.Query().Get("cursor"))
	if err != nil {
		if ref, known := c.d.Refusal(err); known {
			c.render(w, r, ref.Status, "my-clients", view{Title: "My Clients", Nav: "mine", Refusal: &ref, RefusalAt: "filters",
				Data: myClientsData{Q: q}})
			return
		}
		c.fail(w, r, err)
		return
	}
	d := myClientsData{Q: q, Items: pg.Items}
	if pg.NextCursor != "" {
		d.NextURL = "/my-clients?q=" + url.QueryEscape(q) + "&cursor=" + url.QueryEscape(pg.NextCursor)
	}
	c.render(w, r, nethttp.StatusOK, "my-clients", view{Title: "My Clients", Nav: "mine", Lagging: lagging, Data: d})
}

type notificationRow struct {
	projections.Notification
	Customer string
}

type notificationsData struct {
	Items   []notificationRow
	NextURL string
}

var notificationText = map[string]string{
	"assigned":      "You were assigned to",
	"unassigned":    "You were removed from the team of",
	"made_lead":     "You were made team lead of",
	"handed_over":   "You were handed",
	"follow_up_due": "A follow-up fell due for",
}

func (c *Console) notifications(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	lagging := c.waitForPosition(r)
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	unread, items, err := c.d.Queries.Notifications(r.Context(), s.TenantID, s.UserID, pageSize, max(before, 0))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ids := make([]string, 0, len(items))
	for _, n := range items {
		ids = append(ids, n.CustomerID)
	}
	byID, err := c.d.Queries.CustomersByID(r.Context(), s.TenantID, ids)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := notificationsData{}
	for _, n := range items {
		row := notificationRow{Notification: n, Customer: "a customer no longer listed"}
		if cu, ok := byID[n.CustomerID]; ok {
			row.Customer = strings.TrimSpace(cu.FirstName + " " + cu.LastName)
			if row.Customer == "" {
				row.Customer = cu.Email
			}
		}
		if t, ok := notificationText[n.Type]; ok {
			row.Type = t
		}
		d.Items = append(d.Items, row)
	}
	if len(items) == pageSize {
		last := items[len(items)-1].ID
		if p, _, ok := strings.Cut(last, "-"); ok {
			d.NextURL = "/notifications?before=" + p
		}
	}
	c.render(w, r, nethttp.StatusOK, "notifications", view{Title: "Notifications", Nav: "notifications", Unread: unread,
		Lagging: lagging, Data: d})
}

// markRead marks the notifications listed on the page read.
func (c *Console) markRead(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	if err := c.d.Queries.MarkRead(r.Context(), s.TenantID, s.UserID, r.PostForm["ids"]); err != nil {
		c.fail(w, r, err)
		return
	}
	nethttp.Redirect(w, r, "/notifications?done=read", nethttp.StatusSeeOther)
}
