package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// Assignee is one entry of the assigned-user column.
type Assignee struct {
	UserID     string    `json:"user_id"`
	Name       string    `json:"name"`
	Lead       bool      `json:"lead"`
	AssignedAt time.Time `json:"assigned_at"`
}

// CustomerItem is a customer as the customer list shows it.
type CustomerItem struct {
	ID         string     `json:"id"`
	FirstName  string     `json:"first_name"`
	LastName   string     `json:"last_name"`
	Email      string     `json:"email"`
	Phone      string     `json:"phone"`
	ExternalID string     `json:"external_id"`
	Title      string     `json:"title"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	Version    int64      `json:"version"`
	Assignees  []Assignee `json:"assignees"`
	// Groups are the customer's live groups, by name.
	Groups []GroupRef `json:"groups"`
}

// GroupRef names a group a customer is in.
type GroupRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CustomerFilter narrows the customer list. Zero fields do not filter.
type CustomerFilter struct {
	// AssignedUser is a user ID, or "none" for customers without assignees.
	AssignedUser string
	// AssignedUsers are several user IDs: customers assigned to any of
	// them. Used instead of AssignedUser (which it must leave empty).
	AssignedUsers []string
	// Q matches first, last or full name or email, case-insensitively.
	Q      string
	Status string
	// Group is a group ID: its customers.
	Group string
	// Also, when set, narrows the list further: a customer must match it
	// too (a saved view's filter with the request's own; v3).
	Also *CustomerFilter
}

// ErrNotFound is returned for an ID the read model does not know in the
// tenant: the event store's sentinel, one "not found" for every layer.
var ErrNotFound = eventstore.ErrNotFound

func customerListProjection() *projection {
	return &projection{
		name: CustomerList,
		tables: []table{
			{name: "customer_list", key: []string{"customer_id"},
				columns: []string{"customer_id", "tenant_id", "first_name", "last_name", "email", "phone",
					"external_id", "status", "status_before_block", "created_at", "version", "assignees", "title"}},
			// Apart, so that a team change touches no trigram index
			// (migration 0011).
			{name: "customer_search", key: []string{"customer_id"}, columns: []string{"customer_id", "tenant_id", "search"}},
			// The customer's groups, a row each: membership is customer
			// state (CustomerAddedToGroup is in its stream), so it is folded
			// here. Group names are the groups read model's (groups.go),
			// joined when read, so a rename rewrites no customer's rows.
			{name: "customer_groups", key: []string{"customer_id", "group_id"}, columns: []string{"customer_id", "group_id", "tenant_id"}},
			// The customer's follow-ups (v3; follow_ups.go).
			followUpsTable,
			// An erased customer's version, which its customer_list row
			// kept (see foldVersions).
			{name: "customer_list_erased", key: []string{"customer_id"}, columns: []string{"customer_id", "version"}},
		},
		fold: &foldDef{
			rows: func(out foldSink, c *customerState) {
				if !c.created() {
					// A stream begins with its creation event; a fold
					// without it has no row to show.
					return
				}
				// Before the erased customer's return: its erasure
				// removes its follow-ups' rows.
				followUpRows(out, c)
				if c.Erased {
					// An erased customer leaves the list, its search
					// text and its groups; its version stays.
					out.add("customer_list_erased", uid(c.ID), c.Version)
					return
				}
				p := c.Profile
				out.add("customer_list", uid(c.ID), uid(c.TenantID), p.FirstName, p.LastName, p.Email, p.Phone, p.ExternalID,
					c.Status, c.StatusBeforeBlock, c.CreatedAt, c.Version, assigneesJSON(c.Team), p.Title)
				out.add("customer_search", uid(c.ID), uid(c.TenantID), searchText(p))
				for _, g := range c.Groups {
					out.add("customer_groups", uid(c.ID), uid(g), uid(c.TenantID))
				}
			},
		},
	}
}

// searchText is what q matches: first name, last name and email,
// lower-cased as likePattern lower-cases q.
func searchText(p domain.Profile) string {
	return strings.ToLower(p.FirstName + " " + p.LastName + " " + p.Email)
}

// assigneesJSON is the assignees column's document, the team in order:
// [{"user_id", "lead", "assigned_at"}, ...]. Names are not stored:
// customerItemColumns looks them up when the list is read, so a renamed
// user shows under the new name everywhere at once, and the fold needs no
// names. Written by hand: a rebuild makes one per customer, and
// encoding/json took half of the customer list's rows (1.4 µs a team).
func assigneesJSON(team domain.Team) rawJSON {
	b := append(make([]byte, 0, 2+100*len(team)), '[')
	for i, m := range team {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(append(b, `{"user_id":`...), m.UserID)
		b = strconv.AppendBool(append(b, `,"lead":`...), m.Lead)
		b = m.AssignedAt.UTC().AppendFormat(append(b, `,"assigned_at":"`...), time.RFC3339Nano)
		b = append(b, `"}`...)
	}
	return rawJSON(append(b, ']'))
}

// appendJSONString appends s as a JSON string: as it is when it needs no
// escaping (IDs always), else as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// customerItemColumns reads a CustomerItem from customer_list aliased c.
// The assignees get their users' current names, in team order, each by its
// primary key (a join let the planner hash all of users for every row: 30
// ms a page at 10,000 users). Its groups are joined with the groups read
// model's current names, live groups only (a deleted group's memberships
// stay in customer_groups).
const customerItemColumns = `c.customer_id::text, c.first_name, c.last_name, c.email, c.phone, c.external_id,
       c.status, c.created_at, c.version,
       (SELECT coalesce(jsonb_agg(a.x || jsonb_build_object('name',
                   coalesce((SELECT u.name FROM users u WHERE u.id = (a.x->>'user_id')::uuid), '')) ORDER BY a.i), '[]')
          FROM jsonb_array_elements(c.assignees) WITH ORDINALITY AS a(x, i)),
       c.title,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', cg.group_id, 'name', g.name) ORDER BY g.name, cg.group_id), '[]')
          FROM customer_groups cg CROSS JOIN LATERAL (` + qGroupNow + `) g
         WHERE cg.customer_id = c.customer_id AND NOT g.deleted)`

func scanCustomerItem(row pgx.Row, extra ...any) (CustomerItem, error) {
	var it CustomerItem
	var assignees, groups []byte
	dest := append([]any{&it.ID, &it.FirstName, &it.LastName, &it.Email, &it.Phone, &it.ExternalID,
		&it.Status, &it.CreatedAt, &it.Version, &assignees, &it.Title, &groups}, extra...)
	if err := row.Scan(dest...); err != nil {
		return CustomerItem{}, err
	}
	it.CreatedAt = it.CreatedAt.UTC()
	if err := json.Unmarshal(assignees, &it.Assignees); err != nil {
		return CustomerItem{}, fmt.Errorf("decode assignees: %w", err)
	}
	if err := json.Unmarshal(groups, &it.Groups); err != nil {
		return CustomerItem{}, fmt.Errorf("decode groups: %w", err)
	}
	return it, nil
}

// customerItemOf is scanCustomerItem for queryAll.
func customerItemOf(row pgx.CollectableRow) (CustomerItem, error) { return scanCustomerItem(row) }

// searchCond is the condition that customer_list c's row, of the tenant in
// parameter tenant, matches the LIKE pattern in parameter pattern. The
// search text is read through ledger_search (migration visibility): the
// read side may not read customer_search itself, whose trigram index a
// row-level policy would keep from serving the search. IS TRUE keeps the
// IN from being pulled up into a join: as a join, a generic plan nested
// the function's rows under the list's (720 ms for 2,500 matches, growing
// with their square); as a hashed SubPlan the function runs once per
// query and the list is walked in its order as before, each row probing
// the hash.
func searchCond(tenant, pattern string) string {
	return "(c.customer_id IN (SELECT ledger_search(" + tenant + "::uuid, " + pattern + "))) IS TRUE"
}

// visibleCond is the queries' own visibility rule (the read models'
// policies are the second): for a member viewer, the customer in column
// customerCol must be one the member serves, unless the tenant lets members
// see all. Empty for a viewer who sees all and for the system's reads.
func visibleCond(ctx context.Context, args *sqlArgs, customerCol string) string {
	v, ok := ViewerOf(ctx)
	if !ok || v.SeesAll() {
		return ""
	}
	return "((SELECT ledger_viewer_sees_all()) OR EXISTS (SELECT 1 FROM my_clients vm WHERE vm.customer_id = " +
		customerCol + " AND vm.user_id = " + args.add(v.UserID) + "::uuid))"
}

// visibleListCond is visibleCond on customer_list c, by its own assignees.
func visibleListCond(ctx context.Context, args *sqlArgs) string {
	v, ok := ViewerOf(ctx)
	if !ok || v.SeesAll() {
		return ""
	}
	return "((SELECT ledger_viewer_sees_all()) OR c.assignees @> " + args.add(memberDoc(v.UserID)) + "::jsonb)"
}

// memberDoc is the assignees document that contains (@>) every team with
// user on it.
func memberDoc(user string) string {
	b, _ := json.Marshal([]map[string]string{{"user_id": user}})
	return string(b)
}

// rowConds are the conditions of f on customer_list c's own columns that
// do not depend on how the rows are found: the search, the status and the
// group.
func rowConds(args *sqlArgs, f CustomerFilter) []string {
	var conds []string
	if f.Q != "" {
		conds = append(conds, searchCond("$1", args.add(likePattern(f.Q))))
	}
	if f.Status != "" {
		conds = append(conds, "c.status = "+args.add(f.Status))
	}
	if f.Group != "" {
		// A deleted group has no customers any more.
		conds = append(conds, "EXISTS (SELECT 1 FROM customer_groups cg CROSS JOIN LATERAL ("+qGroupNow+
			") g WHERE cg.customer_id = c.customer_id AND cg.group_id = "+args.add(f.Group)+"::uuid AND NOT g.deleted)")
	}
	return conds
}

// and appends cond to conds unless it is empty.
func and(conds []string, cond string) []string {
	if cond == "" {
		return conds
	}
	return append(conds, cond)
}

// likePattern turns user text into a LIKE pattern matching it anywhere,
// lower-cased like the search column, with LIKE's wildcards escaped.
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(q)) + "%"
}

// sqlArgs numbers the placeholders of a query built from fragments.
type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

type customerCursor struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"id"`
}

func (c *customerCursor) valid() bool { return !c.CreatedAt.IsZero() && isUUID(c.ID) }

// Customers returns one page of the tenant's customers, oldest first
// (created_at, then id). limit is clamped by the caller (<= 0 means 50).
func (q *Queries) Customers(ctx context.Context, tenantID string, f CustomerFilter, limit int, cursor string) (Page[CustomerItem], error) {
	limit = clampLimit(limit)
	var after *customerCursor
	if cursor != "" {
		after = new(customerCursor)
		if err := decodeCursor("customers", cursor, after); err != nil {
			return Page[CustomerItem]{}, err
		}
	}
	from, conds, args, created, id, ok := customerQuery(ctx, tenantID, f)
	if !ok {
		return Page[CustomerItem]{Items: []CustomerItem{}}, nil
	}
	if after != nil {
		conds = append(conds, "("+created+", "+id+") > ("+args.add(after.CreatedAt)+", "+args.add(after.ID)+"::uuid)")
	}
	sql := `SELECT ` + customerItemColumns + ` FROM ` + from + ` WHERE ` + strings.Join(conds, " AND ") +
		` ORDER BY ` + created + `, ` + id + ` LIMIT ` + args.add(limit+1)
	items, err := queryAll(ctx, q.db(ctx), customerItemOf, sql, args...)
	if err != nil {
		return Page[CustomerItem]{}, fmt.Errorf("list customers: %w", err)
	}
	return pageOf(items, limit, "customers", func(last CustomerItem) any {
		return customerCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}), nil
}

// customerQuery builds the FROM and WHERE of the customer list filtered by
// f, and names its order columns (created, id); ok is false when f can
// match nothing (a malformed user ID).
func customerQuery(ctx context.Context, tenantID string, f CustomerFilter) (from string, conds []string, args sqlArgs, created, id string, ok bool) {
	byUser := f.AssignedUser != "" && f.AssignedUser != "none"
	if (byUser && !isUUID(f.AssignedUser)) || (f.Group != "" && !isUUID(f.Group)) {
		return "", nil, nil, "", "", false
	}
	conds = []string{"c.tenant_id = " + args.add(tenantID)}
	conds = and(conds, visibleListCond(ctx, &args))
	switch {
	case f.AssignedUser == "none":
		conds = append(conds, "c.unassigned")
	case byUser:
		// The user's customers come from my_clients (below); the row's own
		// column must agree, so the answer is consistent with what it shows.
		conds = append(conds, "c.assignees @> "+args.add(memberDoc(f.AssignedUser))+"::jsonb")
	}
	conds = append(conds, rowConds(&args, f)...)
	if f.Also != nil {
		more, ok := alsoConds(&args, *f.Also)
		if !ok {
			return "", nil, nil, "", "", false
		}
		conds = append(conds, more...)
	}
	// The list's order is created_at, then id. Filtered by an assigned user,
	// the user's customers come from my_clients, which carries each
	// customer's created_at and has an index in that order (migration
	// 0010): the query walks the user's customers in order, keeps those
	// whose own row agrees, and stops at a full page. (The assignees column
	// has no index: see migration 0008.)
	from, created, id = "customer_list c", "c.created_at", "c.customer_id"
	switch {
	case byUser:
		from, created, id = "my_clients m JOIN customer_list c ON c.customer_id = m.customer_id", "m.customer_created_at", "m.customer_id"
		conds = append(conds, "m.tenant_id = $1", "m.user_id = "+args.add(f.AssignedUser)+"::uuid")
	case len(f.AssignedUsers) > 0:
		// Several users: their customers from my_clients once each (a
		// customer may be on several of their teams), in list order; the
		// row's own column must name one of them.
		var users, agree []string
		for _, u := range f.AssignedUsers {
			if isUUID(u) {
				users, agree = append(users, u), append(agree, memberDoc(u))
			}
		}
		if len(users) == 0 {
			return "", nil, nil, "", "", false
		}
		from = "(SELECT DISTINCT customer_id, customer_created_at FROM my_clients WHERE tenant_id = $1 AND user_id = ANY(" +
			args.add(users) + "::uuid[])) m JOIN customer_list c ON c.customer_id = m.customer_id"
		created, id = "m.customer_created_at", "m.customer_id"
		conds = append(conds, "c.assignees @> ANY("+args.add(agree)+"::jsonb[])")
	}
	return from, conds, args, created, id, true
}

// alsoConds are the conditions of a narrowing filter (CustomerFilter.Also)
// on the customer list's row c alone, so they add to any FROM the main
// filter chose. ok is false when it can match nothing.
func alsoConds(args *sqlArgs, f CustomerFilter) (conds []string, ok bool) {
	if (f.Group != "" && !isUUID(f.Group)) || f.Also != nil {
		return nil, false
	}
	users := f.AssignedUsers
	if f.AssignedUser != "" && f.AssignedUser != "none" {
		users = append(users, f.AssignedUser)
	}
	switch {
	case f.AssignedUser == "none":
		conds = append(conds, "c.unassigned")
	case len(users) > 0:
		var agree []string
		for _, u := range users {
			if !isUUID(u) {
				return nil, false
			}
			agree = append(agree, memberDoc(u))
		}
		conds = append(conds, "c.assignees @> ANY("+args.add(agree)+"::jsonb[])")
	}
	return append(conds, rowConds(args, f)...), true
}

// CountCustomers counts the tenant's customers matching f (a bulk call's
// selection by filter is bounded by this count).
func (q *Queries) CountCustomers(ctx context.Context, tenantID string, f CustomerFilter) (int, error) {
	from, conds, args, _, _, ok := customerQuery(ctx, tenantID, f)
	if !ok {
		return 0, nil
	}
	var n int
	if err := q.db(ctx).QueryRow(ctx, `SELECT count(*) FROM `+from+` WHERE `+strings.Join(conds, " AND "), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count customers: %w", err)
	}
	return n, nil
}

// eachPageSize is the page size of the streaming exports: big enough to be
// fast, small enough that no statement stays open long.
const eachPageSize = 1000

// EachCustomer calls fn for every customer matching f, in list order, reading
// page by page so that memory stays constant and no query is held open while
// fn writes. It stops at fn's first error and returns it.
func (q *Queries) EachCustomer(ctx context.Context, tenantID string, f CustomerFilter, fn func(CustomerItem) error) error {
	return eachItem(func(cursor string) (Page[CustomerItem], error) {
		return q.Customers(ctx, tenantID, f, eachPageSize, cursor)
	}, fn)
}

const qCustomersByID = `SELECT ` + customerItemColumns + ` FROM customer_list c
WHERE c.tenant_id = $1 AND c.customer_id = ANY($2::uuid[])`

// CustomersByID returns the tenant's customers among ids, keyed by id;
// unknown ids (and malformed ones) are absent.
func (q *Queries) CustomersByID(ctx context.Context, tenantID string, ids []string) (map[string]CustomerItem, error) {
	valid := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !isUUID(id) })
	out := make(map[string]CustomerItem, len(valid))
	if len(valid) == 0 {
		return out, nil
	}
	args := sqlArgs{tenantID, valid}
	sql := qCustomersByID
	if cond := visibleListCond(ctx, &args); cond != "" {
		sql += " AND " + cond
	}
	items, err := queryAll(ctx, q.db(ctx), customerItemOf, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("customers by id: %w", err)
	}
	for _, it := range items {
		out[it.ID] = it
	}
	return out, nil
}

// Customer returns one customer of the tenant, or ErrNotFound.
func (q *Queries) Customer(ctx context.Context, tenantID, customerID string) (CustomerItem, error) {
	m, err := q.CustomersByID(ctx, tenantID, []string{customerID})
	if err != nil {
		return CustomerItem{}, err
	}
	it, ok := m[customerID]
	if !ok {
		return CustomerItem{}, ErrNotFound
	}
	return it, nil
}
