package projections

import (
	"context"
	"testing"
)

// Reached answers at once what WaitFor waits for: false for a position no
// event has yet and for one the projections have not applied, true once
// they have (all of them, or the ones named).
func TestReached(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if ok, err := b.runner.Reached(ctx, 0); !ok || err != nil {
		t.Errorf("position 0: %v %v", ok, err)
	}
	if ok, err := b.runner.Reached(ctx, 1<<40); ok || err != nil {
		t.Errorf("a position no event has: %v %v", ok, err)
	}
	w := newWorld(t, b.store, 3)
	w.run(ctx, 5)
	if ok, err := b.runner.Reached(ctx, w.lastPos); ok || err != nil {
		t.Errorf("before the projections ran: %v %v", ok, err)
	}
	start(t, b.runner)
	waitFor(t, b.runner, w.lastPos)
	for _, names := range [][]string{nil, {CustomerList}, {MyClients, AuditLog}} {
		if ok, err := b.runner.Reached(ctx, w.lastPos, names...); !ok || err != nil {
			t.Errorf("after WaitFor, %v: %v %v", names, ok, err)
		}
	}
}
