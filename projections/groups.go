package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Group is a group as GET /v1/groups shows it.
type Group struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Customers int    `json:"customers"`
}

// The groups read model keeps a row per event of a group's stream (created,
// renamed, deleted) rather than the group's current row: a derived read
// model only inserts (the engine applies it with ON CONFLICT DO NOTHING, so
// applying a batch twice changes nothing), and a group's few events make
// "the latest row of each group" cheap. Which customers are in a group is
// the customer list's (customer_groups, folded from the customers'
// streams); the two meet when read.
func groupsProjection() *projection {
	return &projection{
		name: Groups,
		tables: []table{{name: "groups", key: []string{"group_id", "position"},
			columns: []string{"tenant_id", "group_id", "position", "name", "deleted", "at"}}},
		derive: `INSERT INTO groups (tenant_id, group_id, position, name, deleted, at)
SELECT e.tenant_id, (e.data->>'group_id')::uuid, e.position, e.data->>'name', e.type = 'GroupDeleted', e.recorded_at
FROM %s e
WHERE e.type IN ('GroupCreated', 'GroupRenamed', 'GroupDeleted')`,
		deriveTypes: []string{"GroupCreated", "GroupRenamed", "GroupDeleted"},
	}
}

// qGroupNow is a group's latest row (name, deleted), for the group cg's
// group_id: a LATERAL subquery of the queries joining customer_groups cg.
// A group of one stream, so its positions are in stream order.
const qGroupNow = `SELECT gv.name, gv.deleted FROM groups gv WHERE gv.group_id = cg.group_id ORDER BY gv.position DESC LIMIT 1`

// qGroupsList's count is completed by the visibility condition (or
// nothing) and qGroupsListFrom.
const qGroupsList = `SELECT g.group_id::text, g.name,
       (SELECT count(*) FROM customer_groups cg WHERE cg.group_id = g.group_id`

const qGroupsListFrom = `)
FROM (SELECT DISTINCT ON (group_id) group_id, name, deleted FROM groups
      WHERE tenant_id = $1 AND ($2::uuid IS NULL OR group_id = $2)
      ORDER BY group_id, position DESC) g
WHERE NOT g.deleted
ORDER BY lower(g.name), g.group_id`

// Groups returns the tenant's live groups, by name, each with how many
// customers are in it.
func (q *Queries) Groups(ctx context.Context, tenantID string) ([]Group, error) {
	return q.groups(ctx, tenantID, nil)
}

// Group returns one live group of the tenant, or ErrNotFound.
func (q *Queries) Group(ctx context.Context, tenantID, groupID string) (Group, error) {
	if !isUUID(groupID) {
		return Group{}, ErrNotFound
	}
	gs, err := q.groups(ctx, tenantID, &groupID)
	if err != nil {
		return Group{}, err
	}
	if len(gs) == 0 {
		return Group{}, ErrNotFound
	}
	return gs[0], nil
}

func (q *Queries) groups(ctx context.Context, tenantID string, id *string) ([]Group, error) {
	args := sqlArgs{tenantID, id}
	sql := qGroupsList
	if cond := visibleCond(ctx, &args, "cg.customer_id"); cond != "" {
		// A member under members_see "assigned" counts the customers
		// they see.
		sql += " AND " + cond
	}
	out, err := queryAll(ctx, q.db(ctx), func(row pgx.CollectableRow) (Group, error) {
		var g Group
		err := row.Scan(&g.ID, &g.Name, &g.Customers)
		return g, err
	}, sql+qGroupsListFrom, args...)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return out, nil
}

const qCountGroupCustomers = `SELECT count(*) FROM customer_groups WHERE tenant_id = $1 AND group_id = $2`

// CountGroupCustomers counts the customers in a group, as the customer
// list's read model knows them.
func (q *Queries) CountGroupCustomers(ctx context.Context, tenantID, groupID string) (int, error) {
	var n int
	if err := q.db(ctx).QueryRow(ctx, qCountGroupCustomers, tenantID, groupID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count group customers: %w", err)
	}
	return n, nil
}
