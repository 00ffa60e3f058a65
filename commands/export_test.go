package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/eventstore"
)

// HoldGroups keeps the single-customer commands queued from now on until
// ReleaseGroups, so that a test can gather them into one group.
func (c *Commands) HoldGroups() {
	c.unit.mu.Lock()
	defer c.unit.mu.Unlock()
	c.unit.held = true
}

// ReleaseGroups lets one committer take what queued (up to a group's
// bound: one group).
func (c *Commands) ReleaseGroups() {
	u := c.unit
	u.mu.Lock()
	defer u.mu.Unlock()
	u.held = false
	u.startLocked()
}

// Queued is how many commands wait for a committer.
func (c *Commands) Queued() int {
	c.unit.mu.Lock()
	defer c.unit.mu.Unlock()
	return len(c.unit.pending)
}

// BeforeGroupWrite sets a function run in each group's transaction between
// the decisions and the append; its error fails that attempt.
func (c *Commands) BeforeGroupWrite(fn func(ctx context.Context, attempt int, tx *eventstore.Tx) error) {
	c.unit.beforeWrite = fn
}
