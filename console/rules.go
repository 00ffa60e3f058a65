package console

import (
	"cmp"
	"fmt"
	nethttp "net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/projections"
)

// ruleRow is one rule as the Assignment rules page lists it.
type ruleRow struct {
	commands.RuleView
	Match string
	Users string
}

type rulesData struct {
	Rules     []ruleRow
	Users     []commands.UserView
	Groups    []projections.Group
	Customers []projections.CustomerItem
	// Try is the answer of "Try on a customer": what the rules would do.
	Try *ruleTry
}

type ruleTry struct {
	CustomerID, Customer string
	Outcome              string
	CanAssign            bool
}

// maxTryCustomers bounds the customers the "Try on a customer" picker lists.
const maxTryCustomers = 200

func (c *Console) rules(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	name, v, err := c.rulesPage(r, s, view{Lagging: c.waitForPosition(r, projections.CustomerList)})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) rulesPage(r *nethttp.Request, s sessionInfo, v view) (string, view, error) {
	var d rulesData
	rules, err := c.d.Commands.ListRules(r.Context(), s.TenantID)
	if err != nil {
		return "", v, err
	}
	// The rules' users by name (deactivated ones show by ID).
	if d.Users, err = c.activeUsers(r.Context(), s.TenantID); err != nil {
		return "", v, err
	}
	names := map[string]string{}
	for _, u := range d.Users {
		names[u.ID] = u.Name
	}
	if d.Groups, err = c.d.Queries.Groups(r.Context(), s.TenantID); err != nil {
		return "", v, err
	}
	groupNames := map[string]string{}
	for _, g := range d.Groups {
		groupNames[g.ID] = g.Name
	}
	for _, rv := range rules {
		row := ruleRow{RuleView: rv, Match: matchText(rv.Match, groupNames)}
		var us []string
		for _, id := range rv.Assign.UserIDs {
			n := names[id]
			if n == "" {
				n = id
			}
			if w, ok := rv.Assign.Weights[id]; ok {
				n += fmt.Sprintf(" ×%d", w)
			}
			us = append(us, n)
		}
		row.Users = strings.Join(us, ", ")
		d.Rules = append(d.Rules, row)
	}
	page, err := c.d.Queries.Customers(r.Context(), s.TenantID, projections.CustomerFilter{}, maxTryCustomers, "")
	if err != nil {
		return "", v, err
	}
	d.Customers = page.Items
	if t, ok := v.Data.(*ruleTry); ok {
		d.Try = t
	}
	v.Title, v.Nav, v.Data = "Assignment rules", "rules", d
	return "rules", v, nil
}

// matchText words a rule's match, its group by name (a deleted group's
// rule matches no one; it shows by ID).
func matchText(m domain.RuleMatch, groupNames map[string]string) string {
	var parts []string
	if len(m.EmailDomain) > 0 {
		parts = append(parts, "e-mail @"+strings.Join(m.EmailDomain, ", @"))
	}
	if m.Group != "" {
		parts = append(parts, "group “"+cmp.Or(groupNames[m.Group], m.Group)+"”")
	}
	if m.TitleContains != "" {
		parts = append(parts, "title contains “"+m.TitleContains+"”")
	}
	if m.ExternalIDPrefix != "" {
		parts = append(parts, "external ID starts “"+m.ExternalIDPrefix+"”")
	}
	if len(parts) == 0 {
		return "every customer"
	}
	return strings.Join(parts, "; ")
}

// ruleFromForm reads the create form: domains separated by commas or
// spaces, the ticked users, a weight field per user.
func ruleFromForm(f map[string][]string, get func(string) string) domain.RuleBody {
	b := domain.RuleBody{Name: get("name"), Assign: domain.RuleAssign{Strategy: get("strategy"), UserIDs: f["user_ids"]}}
	for _, d := range strings.FieldsFunc(get("email_domain"), func(r rune) bool { return r == ',' || r == ' ' }) {
		b.Match.EmailDomain = append(b.Match.EmailDomain, d)
	}
	b.Match.Group = get("group")
	b.Match.TitleContains = strings.TrimSpace(get("title_contains"))
	b.Match.ExternalIDPrefix = strings.TrimSpace(get("external_id_prefix"))
	b.Order, _ = strconv.Atoi(strings.TrimSpace(get("order")))
	if b.Assign.Strategy == domain.StrategyWeighted {
		b.Assign.Weights = map[string]int{}
		for _, id := range b.Assign.UserIDs {
			n, _ := strconv.Atoi(get("weight_" + id))
			b.Assign.Weights[id] = n
		}
	}
	return b
}

func (c *Console) createRule(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	res, err := c.d.Commands.CreateRule(r.Context(), c.meta(s), ruleFromForm(r.PostForm, r.PostForm.Get))
	if err != nil {
		c.refused(w, r, err, "create-rule", func(v view) (string, view, error) { return c.rulesPage(r, s, v) })
		return
	}
	redirectAfter(w, r, "/rules", res.Position, "rulecreated")
}

// moveRule moves a rule one place up or down: the rules are numbered 10,
// 20, … in their new order, and each whose order changes is changed.
func (c *Console) moveRule(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	rules, err := c.d.Commands.ListRules(r.Context(), s.TenantID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	i := -1
	for k, rv := range rules {
		if rv.ID == id {
			i = k
		}
	}
	if i < 0 {
		c.problem(w, r, fmt.Errorf("assignment rule %s: %w", id, commands.ErrNotFound))
		return
	}
	j := i - 1
	if r.PostForm.Get("dir") == "down" {
		j = i + 1
	}
	var pos int64
	if j >= 0 && j < len(rules) {
		rules[i], rules[j] = rules[j], rules[i]
		for k, rv := range rules {
			if want := (k + 1) * 10; rv.Order != want {
				rv.Order = want
				res, err := c.d.Commands.ChangeRule(r.Context(), c.meta(s), rv.ID, rv.RuleBody)
				if err != nil {
					c.refused(w, r, err, "rules", func(v view) (string, view, error) { return c.rulesPage(r, s, v) })
					return
				}
				pos = res.Position
			}
		}
	}
	redirectAfter(w, r, "/rules", pos, "rulemoved")
}

func (c *Console) deleteRule(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	res, err := c.d.Commands.DeleteRule(r.Context(), c.meta(s), chi.URLParam(r, "id"))
	if err != nil {
		c.refused(w, r, err, "rules", func(v view) (string, view, error) { return c.rulesPage(r, s, v) })
		return
	}
	redirectAfter(w, r, "/rules", res.Position, "ruledeleted")
}

// tryRule answers what the rules would do to the chosen customer now (the
// bulk auto_assign's dry run: nothing is written).
func (c *Console) tryRule(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := r.PostForm.Get("customer_id")
	if _, err := c.d.ParseID(id, "customer_id"); err != nil {
		c.refused(w, r, err, "try", func(v view) (string, view, error) { return c.rulesPage(r, s, v) })
		return
	}
	res, err := c.d.Commands.BulkAutoAssign(r.Context(), c.meta(s), []string{id}, true, false)
	if err != nil {
		c.refused(w, r, err, "try", func(v view) (string, view, error) { return c.rulesPage(r, s, v) })
		return
	}
	t := &ruleTry{CustomerID: id, Customer: id}
	if items, err := c.d.Queries.CustomersByID(r.Context(), s.TenantID, []string{id}); err == nil {
		if it, ok := items[id]; ok {
			t.Customer = strings.TrimSpace(it.FirstName + " " + it.LastName)
		}
	}
	users, _ := c.activeUsers(r.Context(), s.TenantID)
	nameOf := func(uid string) string {
		for _, u := range users {
			if u.ID == uid {
				return u.Name
			}
		}
		return uid
	}
	switch {
	case len(res.ToBeAssigned) > 0:
		t.Outcome, t.CanAssign = "would assign "+nameOf(res.ToBeAssigned[0].UserID), true
	case len(res.Errors) > 0:
		t.Outcome = res.Errors[0].Code + ": " + res.Errors[0].Detail
	default:
		t.Outcome = "would change nothing (no rule matches, or its rule finds no one eligible)"
	}
	name, v, err := c.rulesPage(r, s, view{Data: t})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

// assignByRules applies the rules to the customer now (AutoAssign) and
// shows its profile.
func (c *Console) assignByRules(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := r.PostForm.Get("customer_id")
	res, err := c.d.Commands.AutoAssign(r.Context(), c.meta(s), id)
	if err != nil {
		c.refused(w, r, err, "try", func(v view) (string, view, error) { return c.rulesPage(r, s, v) })
		return
	}
	redirectAfter(w, r, "/customers/"+res.ID, res.Position, "team")
}
