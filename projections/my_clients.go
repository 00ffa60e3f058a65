package projections

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
)

// MyClient is one of a user's customers: the customer as the list shows it,
// plus this user's place on its team.
type MyClient struct {
	CustomerItem
	Lead       bool      `json:"lead"`
	AssignedAt time.Time `json:"assigned_at"`
}

func myClientsProjection() *projection {
	return &projection{
		name: MyClients,
		tables: []table{
			{name: "my_clients", key: []string{"customer_id", "user_id"},
				columns: []string{"customer_id", "user_id", "tenant_id", "lead", "assigned_at", "seq", "customer_created_at"},
				partial: true},
		},
		fold: &foldDef{
			rows: func(out foldSink, c *customerState) {
				// Parsed and boxed once for all the customer's rows.
				id, tenant := any(uid(c.ID)), any(uid(c.TenantID))
				row := func(m domain.Member) []any {
					return []any{id, uid(m.UserID), tenant, m.Lead, m.AssignedAt, m.Seq, c.CreatedAt}
				}
				if !c.written {
					if !c.Erased { // an erased customer leaves My Clients
						for _, m := range c.Team {
							out.add("my_clients", row(m)...)
						}
					}
					return
				}
				for u := range c.MembersChanged {
					if m, ok := c.Team.Member(u); ok && !c.Erased {
						out.add("my_clients", row(m)...)
					} else {
						out.remove("my_clients", row(domain.Member{UserID: u})...)
					}
				}
			},
		},
	}
}

type myClientsCursor struct {
	AssignedAt time.Time `json:"t"`
	ID         string    `json:"id"`
}

func (c *myClientsCursor) valid() bool { return !c.AssignedAt.IsZero() && isUUID(c.ID) }

const qMyClientsPage = `SELECT ` + customerItemColumns + `, m.lead, m.assigned_at
FROM my_clients m JOIN customer_list c ON c.customer_id = m.customer_id
WHERE `

// MyClients returns one page of the user's customers, newest assignment
// first (assigned_at, then customer id, both descending); q searches them
// like the customer list. It reads my_clients and customer_list, so a
// read-your-writes wait should name both.
func (q *Queries) MyClients(ctx context.Context, tenantID, userID, search string, limit int, cursor string) (Page[MyClient], error) {
	limit = clampLimit(limit)
	page := Page[MyClient]{Items: []MyClient{}}
	if !isUUID(userID) {
		return page, nil
	}
	var after *myClientsCursor
	if cursor != "" {
		after = new(myClientsCursor)
		if err := decodeCursor("my_clients", cursor, after); err != nil {
			return Page[MyClient]{}, err
		}
	}
	var args sqlArgs
	conds := []string{"m.tenant_id = " + args.add(tenantID), "m.user_id = " + args.add(userID), "c.tenant_id = m.tenant_id"}
	conds = and(conds, visibleListCond(ctx, &args))
	if search != "" {
		conds = append(conds, searchCond("$1", args.add(likePattern(search))))
	}
	if after != nil {
		conds = append(conds, "(m.assigned_at, m.customer_id) < ("+args.add(after.AssignedAt)+", "+args.add(after.ID)+"::uuid)")
	}
	sql := qMyClientsPage + strings.Join(conds, " AND ") +
		" ORDER BY m.assigned_at DESC, m.customer_id DESC LIMIT " + args.add(limit+1)
	items, err := queryAll(ctx, q.db(ctx), func(row pgx.CollectableRow) (MyClient, error) {
		var mc MyClient
		it, err := scanCustomerItem(row, &mc.Lead, &mc.AssignedAt)
		mc.CustomerItem, mc.AssignedAt = it, mc.AssignedAt.UTC()
		return mc, err
	}, sql, args...)
	if err != nil {
		return Page[MyClient]{}, fmt.Errorf("my clients: %w", err)
	}
	return pageOf(items, limit, "my_clients", func(last MyClient) any {
		return myClientsCursor{AssignedAt: last.AssignedAt, ID: last.ID}
	}), nil
}
