package commands

import (
	"context"
	"fmt"

	"github.com/assignment-ledger/ledger/eventstore"
)

// Users' display names in command answers. The name cache (nameCache) is
// per process and learns only of this process's renames, so no answer
// trusts it alone: the locking paths read the names of the team they
// render (fillNames, in their transaction), and a command decided on the
// cached state checks, in its append's one statement, that the names it
// renders are still the users' names (namesAsCached). A rename through
// another process fails that check, and the command runs on the locking
// path, which reads the new name.

// fillNames reads the names of ids into the name cache. It always reads:
// another process may have renamed a user this one has cached.
func (c *Commands) fillNames(ctx context.Context, q querier, tenantID string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return c.readNames(ctx, q, tenantID, ids)
}

// fillMissingNames reads only the names the cache lacks, for a command
// decided on the cached state: its append checks the cached ones
// (namesAsCached).
func (c *Commands) fillMissingNames(ctx context.Context, q querier, tenantID string, ids []string) error {
	var missing []string
	for _, id := range ids {
		if _, ok := c.names.get(id); !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return c.readNames(ctx, q, tenantID, missing)
}

func (c *Commands) readNames(ctx context.Context, q querier, tenantID string, ids []string) error {
	rows, err := q.Query(ctx, `SELECT id::text, name FROM users WHERE tenant_id = $1 AND id = ANY($2::text[]::uuid[])`, tenantID, ids)
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
	}
	return rows.Err()
}

// checkNames is the name of the namesAsCached check.
const checkNames = "names_as_cached"

// qNamesAsCached is true while every user of $2 is named as in $3.
const qNamesAsCached = `SELECT count(*) = cardinality($2::text[]) FROM users u
    WHERE u.id = ANY($2::text[]::uuid[]) AND u.tenant_id = $1
      AND u.name = ($3::text[])[array_position($2::text[], u.id::text)]`

// namesAsCached is the check that the cached names of ids (the team an
// answer renders) are still the users' names; nil without ids.
func (c *Commands) namesAsCached(tenantID string, ids []string) []eventstore.Check {
	if len(ids) == 0 {
		return nil
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i], _ = c.names.get(id)
	}
	return []eventstore.Check{{Name: checkNames, Query: qNamesAsCached, Args: []any{tenantID, ids, names}}}
}
