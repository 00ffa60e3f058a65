package console

import (
	"bytes"
	"errors"
	"io"
	nethttp "net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/projections"
)

type auditData struct {
	From, To, Type, Actor, UserID, CustomerID string
	// CustomerQ is the customer filter's search (a name or e-mail);
	// CustomerChoices the customers it matches when it matches several
	// (the log waits for a choice), CustomerNote says why no row is shown.
	CustomerQ       string
	CustomerChoices []projections.CustomerItem
	CustomerNote    string
	Users           []commands.UserView
	Names           map[string]string
	// Customers names the customers of the page's rows.
	Customers map[string]string
	Items     []projections.AuditEntry
	NextURL   string
	// CSVURL and NDJSONURL download the filtered log (every page).
	CSVURL, NDJSONURL string
}

// dateLayout is the audit's date pickers' format (whole UTC days).
const dateLayout = "2006-01-02"

var errBadAuditFormat = &domain.ValidationError{Field: "format", Detail: "must be csv or ndjson"}

var errBadDate = &domain.ValidationError{Field: "from", Detail: "dates must look like 2026-01-31"}

// audit is the tenant's event log with the API's filters, keyset-paged by
// position (Queries.Audit, as GET /v1/audit).
func (c *Console) audit(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	// The audit is the API's admin and auditor read; the console keeps
	// that rule by asking the domain, not by hiding a link.
	if err := domain.RequireReader(s.Actor); err != nil {
		c.refused(w, r, err, "filters", func(v view) (string, view, error) {
			v.Title, v.Nav, v.Data = "Audit", "audit", auditData{}
			return "audit", v, nil
		})
		return
	}
	name, v, err := c.auditPage(r, s, view{Lagging: c.waitForPosition(r, projections.AuditLog)})
	if err != nil {
		c.refused(w, r, err, "filters", func(v view) (string, view, error) {
			r2 := r.Clone(r.Context())
			r2.URL.RawQuery = ""
			return c.auditPage(r2, s, v)
		})
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

// auditExport downloads the filtered audit log as CSV or NDJSON: the
// API's export (admins and auditors, like the page).
func (c *Console) auditExport(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	if err := domain.RequireReader(s.Actor); err != nil || c.d.AuditExport == nil {
		nethttp.Error(w, "only an admin or an auditor may read the audit log", nethttp.StatusForbidden)
		return
	}
	// The page's links ask for csv or ndjson; any other format is refused
	// as the API refuses one, never answered as CSV.
	switch r.URL.Query().Get("format") {
	case "", "csv", "ndjson":
	default:
		c.problem(w, r, errBadAuditFormat)
		return
	}
	c.d.AuditExport(w, r, s.Principal)
}

func (c *Console) auditPage(r *nethttp.Request, s sessionInfo, v view) (string, view, error) {
	q := r.URL.Query()
	d := auditData{From: q.Get("from"), To: q.Get("to"), Type: q.Get("type"), Actor: q.Get("actor"),
		UserID: q.Get("user_id"), CustomerID: q.Get("customer_id"), CustomerQ: strings.TrimSpace(q.Get("customer_q")),
		Names: map[string]string{}, Customers: map[string]string{}}
	for _, id := range [][2]string{{"actor", d.Actor}, {"user_id", d.UserID}, {"customer_id", d.CustomerID}} {
		if err := c.checkIDs(id[0], id[1]); err != nil {
			return "", v, err
		}
	}
	waiting, err := c.auditCustomer(r, s, &d)
	if err != nil {
		return "", v, err
	}
	f := projections.AuditFilter{Type: d.Type, Actor: d.Actor, UserID: d.UserID, CustomerID: d.CustomerID}
	if d.From != "" {
		t, err := time.ParseInLocation(dateLayout, d.From, time.UTC)
		if err != nil {
			return "", v, errBadDate
		}
		f.From = t
	}
	if d.To != "" {
		t, err := time.ParseInLocation(dateLayout, d.To, time.UTC)
		if err != nil {
			return "", v, errBadDate
		}
		f.To = t.Add(24*time.Hour - time.Microsecond) // the whole day
	}
	users, err := c.d.Commands.ListUsers(r.Context(), s.TenantID, commands.UsersFilter{}, nil, maxUsersShown)
	if err != nil {
		return "", v, err
	}
	d.Users = users
	for _, u := range users {
		d.Names[u.ID] = u.Name
	}
	var pg projections.Page[projections.AuditEntry]
	if !waiting {
		if pg, err = c.d.Queries.Audit(r.Context(), s.TenantID, f, pageSize, q.Get("cursor")); err != nil {
			return "", v, err
		}
	}
	d.Items = pg.Items
	ids := make([]string, 0, len(d.Items))
	for _, e := range d.Items {
		if e.CustomerID != "" {
			ids = append(ids, e.CustomerID)
		}
	}
	byID, err := c.d.Queries.CustomersByID(r.Context(), s.TenantID, ids)
	if err != nil {
		return "", v, err
	}
	for id := range byID {
		d.Customers[id] = customerName(byID, id)
	}
	// The exports take the API's filters: whole UTC days as timestamps.
	eq := url.Values{}
	for _, k := range []string{"type", "actor", "user_id"} {
		if val := q.Get(k); val != "" {
			eq.Set(k, val)
		}
	}
	if d.CustomerID != "" {
		eq.Set("customer_id", d.CustomerID)
	}
	if !f.From.IsZero() {
		eq.Set("from", f.From.Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		eq.Set("to", f.To.Format(time.RFC3339Nano))
	}
	eq.Set("format", "csv")
	d.CSVURL = "/audit/export?" + eq.Encode()
	eq.Set("format", "ndjson")
	d.NDJSONURL = "/audit/export?" + eq.Encode()
	if pg.NextCursor != "" {
		nq := url.Values{}
		for k, vals := range q {
			if k != "cursor" && k != "pos" && k != "done" && len(vals) > 0 && vals[0] != "" {
				nq.Set(k, vals[0])
			}
		}
		if d.CustomerID != "" {
			nq.Set("customer_id", d.CustomerID)
		}
		nq.Set("cursor", pg.NextCursor)
		d.NextURL = "/audit?" + nq.Encode()
	}
	v.Title, v.Nav, v.Data = "Audit", "audit", d
	return "audit", v, nil
}

// maxCustomerChoices bounds the customers the audit's customer search
// offers to choose from.
const maxCustomerChoices = 20

// auditCustomer resolves the audit's customer filter: a search by name or
// e-mail (customer_q) picks the customer it matches, or offers the ones it
// matches to choose from (waiting: no row is shown until then); a
// customer_id alone (a link, or an erased customer, whose name is gone)
// filters by that customer. A choice whose customer no longer matches an
// edited search is dropped for the search's answer.
func (c *Console) auditCustomer(r *nethttp.Request, s sessionInfo, d *auditData) (waiting bool, err error) {
	if d.CustomerQ == "" {
		if d.CustomerID != "" {
			byID, err := c.d.Queries.CustomersByID(r.Context(), s.TenantID, []string{d.CustomerID})
			if err != nil {
				return false, err
			}
			if _, ok := byID[d.CustomerID]; ok {
				d.CustomerQ = customerName(byID, d.CustomerID)
			}
		}
		return false, nil
	}
	pg, err := c.d.Queries.Customers(r.Context(), s.TenantID, projections.CustomerFilter{Q: d.CustomerQ}, maxCustomerChoices+1, "")
	if err != nil {
		return false, err
	}
	matches := pg.Items
	if d.CustomerID != "" && slices.ContainsFunc(matches, func(it projections.CustomerItem) bool { return it.ID == d.CustomerID }) {
		if len(matches) > 1 {
			d.CustomerChoices = matches[:min(len(matches), maxCustomerChoices)]
		}
		return false, nil
	}
	d.CustomerID = ""
	switch {
	case len(matches) == 0:
		d.CustomerNote = "No customer matches “" + d.CustomerQ + "”."
		return true, nil
	case len(matches) == 1:
		d.CustomerID = matches[0].ID
		return false, nil
	}
	d.CustomerChoices = matches[:min(len(matches), maxCustomerChoices)]
	d.CustomerNote = "Several customers match “" + d.CustomerQ + "”: choose one."
	if len(matches) > maxCustomerChoices {
		d.CustomerNote = "More than " + strconv.Itoa(maxCustomerChoices) + " customers match “" + d.CustomerQ + "”: choose one, or search for more of the name."
	}
	return true, nil
}

type importData struct {
	Report *commands.ImportReport
	DryRun bool
	// CSV is the file of a dry run, carried to the import so the user
	// need not choose it again.
	CSV            string
	UpdateExisting bool
	// Invite creates the new clients as invited and e-mails each its
	// invitation (?invite=true).
	Invite bool
}

func (c *Console) importPage(w nethttp.ResponseWriter, r *nethttp.Request) {
	if _, ok := c.requireSession(w, r); !ok {
		return
	}
	c.render(w, r, nethttp.StatusOK, "import", view{Title: "Import clients", Nav: "import", Data: importData{}})
}

func (c *Console) importTemplate(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	if err := domain.RequireAdmin(s.Actor); err != nil {
		c.refused(w, r, err, "import", func(v view) (string, view, error) {
			v.Title, v.Nav, v.Data = "Import clients", "import", importData{}
			return "import", v, nil
		})
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="clients-template.csv"`)
	_, _ = w.Write(c.d.Commands.ImportTemplate())
}

// maxImportBytes is the API's limit on one import file.
const maxImportBytes = 10 << 20

var errNoFile = &domain.ValidationError{Field: "file", Detail: "choose a CSV file"}

// importClients runs ImportClients on the uploaded file (or the one a dry
// run carried over): "Check" is its dry run, "Import" the real thing. A
// file with bad rows shows the report of every bad row.
func (c *Console) importClients(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	if c.d.ImportLimit != nil {
		if err := c.d.ImportLimit(w, r); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	d := importData{DryRun: r.PostForm.Get("mode") != "import", UpdateExisting: r.PostForm.Get("update_existing") == "on",
		Invite: r.PostForm.Get("invite") == "on"}
	var data []byte
	if f, _, err := r.FormFile("file"); err == nil {
		data, err = io.ReadAll(io.LimitReader(f, maxImportBytes+1))
		_ = f.Close()
		if err != nil {
			c.fail(w, r, err)
			return
		}
	} else {
		data = []byte(r.PostForm.Get("csv"))
	}
	page := func(v view) (string, view, error) {
		v.Title, v.Nav, v.Data = "Import clients", "import", d
		return "import", v, nil
	}
	if len(data) == 0 {
		c.refused(w, r, errNoFile, "import", page)
		return
	}
	if len(data) > maxImportBytes {
		c.refused(w, r, &domain.ValidationError{Field: "file", Detail: "is larger than 10 MiB"}, "import", page)
		return
	}
	rep, err := c.d.Commands.ImportClients(r.Context(), c.meta(s), bytes.NewReader(data),
		commands.ImportOptions{DryRun: d.DryRun, UpdateExisting: d.UpdateExisting, Invite: d.Invite})
	var rejected *commands.ImportRejectedError
	switch {
	case errors.As(err, &rejected):
		d.Report = &rejected.Report
		c.render(w, r, nethttp.StatusUnprocessableEntity, "import", view{Title: "Import clients", Nav: "import", Data: d})
		return
	case err != nil:
		c.refused(w, r, err, "import", page)
		return
	}
	d.Report = &rep
	if d.DryRun {
		d.CSV = string(data)
		c.render(w, r, nethttp.StatusOK, "import", view{Title: "Import clients", Nav: "import", Data: d})
		return
	}
	c.render(w, r, nethttp.StatusOK, "import", view{Title: "Import clients", Nav: "import", Data: d, Notice: "Import done.",
		Pos: rep.Position})
}

type inviteData struct {
	FirstName, LastName, Email, Phone string
	Team                              map[string]bool
	Link                              string
	Customer                          commands.CustomerView
	Invited                           bool
	// SendEmail e-mails the client its invitation (send_email).
	SendEmail bool
	// Picker chooses the team.
	Picker pickerData
}

// teamLegend is the team pickers' legend on the forms that create a
// customer.
const teamLegend = "Team (the first ticked leads when the policy wants a lead)"

func (c *Console) invitePage(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	p, err := c.teamPicker(r.Context(), s.TenantID, "team", teamLegend, nil, "")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, "invite", view{Title: "Invite a client", Nav: "invite",
		Data: inviteData{Team: map[string]bool{}, Picker: p}})
}

// invite calls InviteClient and shows the invitation link once: only its
// hash is stored, so it cannot be shown again.
func (c *Console) invite(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	d := inviteData{FirstName: strings.TrimSpace(f.Get("first_name")), LastName: strings.TrimSpace(f.Get("last_name")),
		Email: strings.TrimSpace(f.Get("email")), Phone: strings.TrimSpace(f.Get("phone")), Team: map[string]bool{},
		SendEmail: f.Get("send_email") == "on"}
	for _, id := range f["team"] {
		d.Team[id] = true
	}
	_, q, find := pickerFind(r)
	var err error
	if d.Picker, err = c.teamPicker(r.Context(), s.TenantID, "team", teamLegend, f["team"], q); err != nil {
		c.fail(w, r, err)
		return
	}
	if find {
		c.render(w, r, nethttp.StatusOK, "invite", view{Title: "Invite a client", Nav: "invite", Data: d})
		return
	}
	var res commands.InvitationResult
	err = c.checkIDs("team", f["team"]...)
	if err == nil {
		res, err = c.d.Commands.InviteClient(r.Context(), c.meta(s),
			domain.Profile{FirstName: d.FirstName, LastName: d.LastName, Email: d.Email, Phone: d.Phone}, f["team"], d.SendEmail)
	}
	if err != nil {
		c.refused(w, r, err, "invite", func(v view) (string, view, error) {
			v.Title, v.Nav, v.Data = "Invite a client", "invite", d
			return "invite", v, nil
		})
		return
	}
	d.Invited, d.Customer = true, res.Customer
	if d.Picker, err = c.teamPicker(r.Context(), s.TenantID, "team", teamLegend, nil, ""); err != nil {
		c.fail(w, r, err)
		return
	}
	if res.Token != "" {
		d.Link = c.d.BaseURL + "/invitations/" + res.Token
	}
	c.render(w, r, nethttp.StatusOK, "invite", view{Title: "Invite a client", Nav: "invite", Data: d,
		Notice: "Client invited.", Pos: res.Position})
}
