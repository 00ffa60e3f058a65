package console

import (
	nethttp "net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/projections"
)

// groupsData is the groups page: every live group with its customer
// count and a link to its customers; an admin also creates, renames and
// deletes them (GET /v1/groups, POST/PATCH/DELETE /v1/groups).
type groupsData struct {
	Groups []groupRow
	// Name keeps the create form's input after a refusal.
	Name string
}

type groupRow struct {
	projections.Group
	// CustomersURL is the customer table filtered by the group.
	CustomersURL string
}

func (c *Console) groups(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	lagging := c.waitForPosition(r, projections.Groups, projections.CustomerList)
	name, v, err := c.groupsPage(r, s, view{Lagging: lagging})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) groupsPage(r *nethttp.Request, s sessionInfo, v view) (string, view, error) {
	gs, err := c.d.Queries.Groups(r.Context(), s.TenantID)
	if err != nil {
		return "", v, err
	}
	d := groupsData{}
	for _, g := range gs {
		d.Groups = append(d.Groups, groupRow{Group: g, CustomersURL: "/customers?" + url.Values{"group": {g.ID}}.Encode()})
	}
	if r.Method == nethttp.MethodPost && r.URL.Path == "/groups" {
		d.Name = r.PostForm.Get("name")
	}
	v.Title, v.Nav, v.Data = "Groups", "groups", d
	return "groups", v, nil
}

// groupCommand runs one of the page's commands: success comes back to the
// page (waiting for it), a refusal is shown at the form named at.
func (c *Console) groupCommand(w nethttp.ResponseWriter, r *nethttp.Request, at, done string,
	run func(s sessionInfo) (commands.GroupResult, error)) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	res, err := run(s)
	if err != nil {
		if ref, known := c.d.Refusal(err); known && (ref.Status == nethttp.StatusNotFound || ref.Status == nethttp.StatusGone) {
			c.problem(w, r, err) // no row to show it at
			return
		}
		c.refused(w, r, err, at, func(v view) (string, view, error) { return c.groupsPage(r, s, v) })
		return
	}
	redirectAfter(w, r, "/groups", res.Position, done)
}

func (c *Console) createGroup(w nethttp.ResponseWriter, r *nethttp.Request) {
	c.groupCommand(w, r, "create-group", "groupcreated", func(s sessionInfo) (commands.GroupResult, error) {
		return c.d.Commands.CreateGroup(r.Context(), c.meta(s), strings.TrimSpace(r.PostForm.Get("name")))
	})
}

func (c *Console) renameGroup(w nethttp.ResponseWriter, r *nethttp.Request) {
	id := chi.URLParam(r, "id")
	c.groupCommand(w, r, "group-"+id, "grouprenamed", func(s sessionInfo) (commands.GroupResult, error) {
		return c.d.Commands.RenameGroup(r.Context(), c.meta(s), id, strings.TrimSpace(r.PostForm.Get("name")))
	})
}

func (c *Console) deleteGroup(w nethttp.ResponseWriter, r *nethttp.Request) {
	id := chi.URLParam(r, "id")
	c.groupCommand(w, r, "group-"+id, "groupdeleted", func(s sessionInfo) (commands.GroupResult, error) {
		return c.d.Commands.DeleteGroup(r.Context(), c.meta(s), id)
	})
}
