package commands

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Users' display names in command answers. The name cache (nameCache) is
// per process and learns only of this process's renames, so no answer
// trusts it alone: every command reads the names of the team it renders
// in its own transaction (fillNames; the unit of work once per group and
// tenant), so a rename through another process shows in the next answer.

// fillNames reads the names of ids into the name cache. It always reads:
// another process may have renamed a user this one has cached.
func (c *Commands) fillNames(ctx context.Context, q querier, tenantID string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return c.readNames(ctx, q, tenantID, ids)
}

func (c *Commands) readNames(ctx context.Context, q querier, tenantID string, ids []string) error {
	rows, err := q.Query(ctx, `SELECT id::text, name FROM users WHERE tenant_id = $1 AND id = ANY($2::text[]::uuid[])`, tenantID, ids)
	return c.readNamesFrom(rows, err, nil)
}

// readNamesFrom puts the (id, name) rows into the name cache, marking each
// ID read in fresh (when not nil).
func (c *Commands) readNamesFrom(rows pgx.Rows, err error, fresh map[string]bool) error {
	if err != nil {
		return fmt.Errorf("read user names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("read user names: %w", err)
		}
		c.names.put(id, name)
		if fresh != nil {
			fresh[id] = true
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read user names: %w", err)
	}
	return nil
}
