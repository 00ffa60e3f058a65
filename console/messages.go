package console

import (
	nethttp "net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/projections"
)

// messageData is the page after a message was sent: how many e-mails were
// queued and who was skipped, by name.
type messageData struct {
	Result  commands.MessageResult
	Skipped []skippedRow
	// More is how many skipped customers are not listed.
	More    int
	BackURL string
}

type skippedRow struct {
	CustomerID, Customer, Reason string
}

// skipReasons words the command's skip reasons for people.
var skipReasons = map[string]string{
	"blocked":   "blocked",
	"no_email":  "has no e-mail address",
	"not_found": "no longer exists",
	"erased":    "erased",
}

// messageCustomers is the Customers page's "Message" bulk action: the
// ticked customers (or every one matching the filter, as the API's
// selection by filter) are e-mailed through MessageCustomers, and the
// answer page shows the recipients and who was skipped. A refusal (no
// text, no e-mail configured, too many customers) is shown at the form,
// with the ticks and the text kept.
func (c *Console) messageCustomers(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	ids := r.PostForm["customer_ids"]
	subject, body := r.PostForm.Get("subject"), r.PostForm.Get("body")
	backQuery := r.PostForm.Get("back")
	back := func(v view) (string, view, error) {
		if r.PostForm.Get("from") == "row" && len(ids) == 1 {
			// The row's own message page, with the text kept.
			return c.messageOnePage(r, s, v, ids[0], subject, body, backQuery)
		}
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = backQuery
		name, v, err := c.customersPage(r2, s, v)
		if err == nil {
			d := v.Data.(customersData)
			for _, id := range ids {
				d.Checked[id] = true
			}
			d.MessageSubject, d.MessageBody = subject, body
			v.Data = d
		}
		return name, v, err
	}
	// What no selection can change is refused before the selection is
	// read, as the API does.
	_, err := c.d.Commands.CheckMessage(c.meta(s), subject, body)
	if err == nil && r.PostForm.Get("all_matching") == "on" {
		filters, _ := url.ParseQuery(backQuery)
		assigned := apiAssigned(s, filters["assigned_user"])
		if c.d.SelectMatching == nil {
			err = errNothingSelected
		} else {
			ids, err = c.d.SelectMatching(r.Context(), s.Principal, filters.Get("q"), filters.Get("status"), assigned, filters.Get("group"))
		}
	}
	if err == nil && len(ids) == 0 {
		err = errNothingSelected
	}
	if err == nil {
		err = c.checkIDs("customer_ids", ids...)
	}
	var res commands.MessageResult
	if err == nil {
		res, err = c.d.Commands.MessageCustomers(r.Context(), c.meta(s), commands.MessageRequest{CustomerIDs: ids, Subject: subject, Body: body})
	}
	if err != nil {
		c.refused(w, r, err, "message", back)
		return
	}
	d := messageData{Result: res, BackURL: customersURL(backQuery)}
	listed := res.Skipped[:min(len(res.Skipped), maxReviewRows)]
	d.More = len(res.Skipped) - len(listed)
	skippedIDs := make([]string, len(listed))
	for i, sk := range listed {
		skippedIDs[i] = sk.CustomerID
	}
	names, err := c.d.Queries.CustomersByID(r.Context(), s.TenantID, skippedIDs)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, sk := range listed {
		d.Skipped = append(d.Skipped, skippedRow{CustomerID: sk.CustomerID, Customer: customerName(names, sk.CustomerID), Reason: reasonText(sk.Reason)})
	}
	c.render(w, r, nethttp.StatusOK, "message", view{Title: "Message sent", Nav: "customers", Pos: res.Position, Data: d})
}

func customerName(names map[string]projections.CustomerItem, id string) string {
	cu, ok := names[id]
	if !ok {
		return id
	}
	if n := strings.TrimSpace(cu.FirstName + " " + cu.LastName); n != "" {
		return n
	}
	if cu.Email != "" {
		return cu.Email
	}
	return id
}

func reasonText(reason string) string {
	if t, ok := skipReasons[reason]; ok {
		return t
	}
	return reason
}

// messageStatus shows a message's delivery counts (GET /v1/messages/{id}).
func (c *Console) messageStatus(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	m, err := c.d.Commands.GetMessage(r.Context(), s.TenantID, chi.URLParam(r, "id"))
	if err != nil {
		c.problem(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, "message-status", view{Title: "Message: " + m.Subject, Nav: "customers", Data: m})
}

// messageOneData is a row's "Send message" page: one customer's message.
type messageOneData struct {
	Customer      commands.CustomerView
	Subject, Body string
	Back, BackURL string
}

// messageOne is the customer table's per-row "Send message": the message
// form for that one customer, sent as the bulk message of one (POST
// /v1/customers/messages with its ID).
func (c *Console) messageOne(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	name, v, err := c.messageOnePage(r, s, view{}, chi.URLParam(r, "id"), "", "", r.URL.Query().Get("back"))
	if err != nil {
		c.problem(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) messageOnePage(r *nethttp.Request, s sessionInfo, v view, id, subject, body, back string) (string, view, error) {
	cu, err := c.d.Commands.GetCustomer(r.Context(), s.TenantID, id)
	if err != nil {
		return "", v, err
	}
	v.Title, v.Nav = "Message "+fullNameOf(cu), "customers"
	v.Data = messageOneData{Customer: cu, Subject: subject, Body: body, Back: back, BackURL: customersURL(back)}
	return "message-one", v, nil
}
