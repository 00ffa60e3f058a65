package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Views is the saved views read model's name (and its checkpoint's).
const Views = "views"

// SavedView is a saved view as GET /v1/views lists it.
type SavedView struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Filter  json.RawMessage `json:"filter"`
	Shared  bool            `json:"shared"`
	OwnerID string          `json:"owner_id"`
}

// The views read model keeps a row per event of a view's stream, as groups
// does; every view event carries the whole view, so the latest row is the
// view now.
func viewsProjection() *projection {
	return &projection{
		name: Views,
		tables: []table{{name: "views", key: []string{"view_id", "position"},
			columns: []string{"tenant_id", "view_id", "position", "owner_id", "name", "filter", "shared", "deleted", "at"}}},
		derive: `INSERT INTO views (tenant_id, view_id, position, owner_id, name, filter, shared, deleted, at)
SELECT e.tenant_id, (e.data->>'view_id')::uuid, e.position, (e.data->>'owner_id')::uuid, e.data->>'name',
       e.data->'filter', (e.data->>'shared')::boolean, e.type = 'ViewDeleted', e.recorded_at
FROM %s e
WHERE e.type IN ('ViewCreated', 'ViewChanged', 'ViewDeleted')`,
		deriveTypes: []string{"ViewCreated", "ViewChanged", "ViewDeleted"},
	}
}

// qViewsOf is the views a user may use: the tenant's shared views and the
// user's own, by name.
const qViewsOf = `SELECT v.view_id::text, v.name, v.filter, v.shared, v.owner_id::text
FROM (SELECT DISTINCT ON (view_id) view_id, name, filter, shared, owner_id, deleted FROM views
      WHERE tenant_id = $1 ORDER BY view_id, position DESC) v
WHERE NOT v.deleted AND (v.shared OR v.owner_id = $2::uuid)
ORDER BY lower(v.name), v.view_id`

// ViewsOf returns the views userID may use: its own and the shared ones.
func (q *Queries) ViewsOf(ctx context.Context, tenantID, userID string) ([]SavedView, error) {
	var user *string
	if isUUID(userID) {
		user = &userID
	}
	out, err := queryAll(ctx, q.pool, func(row pgx.CollectableRow) (SavedView, error) {
		var v SavedView
		err := row.Scan(&v.ID, &v.Name, &v.Filter, &v.Shared, &v.OwnerID)
		return v, err
	}, qViewsOf, tenantID, user)
	if err != nil {
		return nil, fmt.Errorf("list views: %w", err)
	}
	return out, nil
}
