package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// streamView is the stream type of a saved view.
const streamView = "view"

// SavedView is a saved view as the API shows it.
type SavedView struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Filter  domain.ViewFilter `json:"filter"`
	Shared  bool              `json:"shared"`
	OwnerID string            `json:"owner_id"`
}

// ViewResult is a view command's answer.
type ViewResult struct {
	SavedView
	Position int64 `json:"position"`
}

func savedView(v domain.View) SavedView {
	return SavedView{ID: v.ID, Name: v.Name, Filter: v.Filter, Shared: v.Shared, OwnerID: v.OwnerID}
}

// ViewChange is a PATCH of a view: nil fields stay.
type ViewChange struct {
	Name   *string
	Filter *domain.ViewFilter
	Shared *bool
}

// loadView reads the tenant's view id (locked with mode); a view another
// user keeps private, an unknown one and a deleted one are ErrNotFound.
func loadView(ctx context.Context, q streamSource, tenantID, id string, mode lockMode, a domain.Actor) (domain.View, error) {
	versions, err := q.StreamVersions(ctx, tenantID, streamView, []string{id}, storeLock[mode])
	if err != nil {
		return domain.View{}, fmt.Errorf("lock view: %w", err)
	}
	if _, ok := versions[id]; !ok {
		return domain.View{}, notFound("view", id)
	}
	streams, err := readEvents(ctx, nil, q, tenantID, []string{id}) // a view's stream holds nothing sealed
	if err != nil {
		return domain.View{}, err
	}
	var v domain.View
	for _, ev := range streams[id] {
		e, err := domain.DecodeEvent(ev.Type, ev.Schema, ev.Data)
		if err != nil {
			return domain.View{}, fmt.Errorf("view %s version %d: %w", id, ev.Version, err)
		}
		v.Apply(e)
	}
	if v.ID != id || !v.VisibleTo(a) {
		return domain.View{}, notFound("view", id)
	}
	return v, nil
}

// GetView reads a view the actor may use (its own or a shared one) from
// its stream: always current, so a view is usable as soon as it is saved.
func (c *Commands) GetView(ctx context.Context, tenantID string, a domain.Actor, viewID string) (SavedView, error) {
	tid, ok1 := parseID(tenantID)
	id, ok2 := parseID(viewID)
	if !ok1 || !ok2 {
		return SavedView{}, notFound("view", viewID)
	}
	v, err := loadView(ctx, c.reads(), tid, id, noLock, a)
	if err != nil {
		return SavedView{}, err
	}
	return savedView(v), nil
}

// CreateView saves a view (a member's own; shared only by an admin).
func (c *Commands) CreateView(ctx context.Context, m Meta, name string, f domain.ViewFilter, shared bool) (ViewResult, error) {
	m, err := m.prepare()
	if err != nil {
		return ViewResult{}, err
	}
	return transact(ctx, c, "CreateView", m, func(ctx context.Context, tx *cmdTx) (ViewResult, error) {
		if err := checkViewFilter(ctx, tx, m.TenantID, f); err != nil {
			return ViewResult{}, err
		}
		id := newID()
		events, err := domain.CreateView(m.Actor, id, name, f, shared)
		if err != nil {
			return ViewResult{}, err
		}
		var v domain.View
		for _, e := range events {
			v.Apply(e)
		}
		result := ViewResult{SavedView: savedView(v)}
		data, err := encode(events)
		if err != nil {
			return ViewResult{}, err
		}
		_, err = tx.append(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: id, StreamType: streamView, ExpectedVersion: eventstore.NoStream, Events: data}},
			Metadata: m.metadata(),
			Now:      now(),
		}, &result, &result.Position)
		return result, err
	})
}

// ChangeView changes a view (its owner, or an admin for a shared one).
func (c *Commands) ChangeView(ctx context.Context, m Meta, viewID string, ch ViewChange) (ViewResult, error) {
	return c.viewCommand(ctx, "ChangeView", m, viewID, func(ctx context.Context, tx *cmdTx, v domain.View) ([]domain.Event, error) {
		if ch.Filter != nil {
			if err := checkViewFilter(ctx, tx, m.TenantID, *ch.Filter); err != nil {
				return nil, err
			}
		}
		return v.Change(m.Actor, ch.Name, ch.Filter, ch.Shared)
	})
}

// checkViewFilter refuses a filter on a user or a group the tenant does not
// have (a typo, another tenant's): the view would list nothing, and nobody
// would be told. "me" and "none" stand for whoever uses the view.
func checkViewFilter(ctx context.Context, q streamSource, tenantID string, f domain.ViewFilter) error {
	if f.Group != "" {
		if _, err := lockGroup(ctx, q, tenantID, f.Group, noLock); errors.Is(err, ErrNotFound) {
			return &domain.ValidationError{Field: "filter.group", Detail: "group " + f.Group + " is not a group of this tenant"}
		} else if err != nil {
			return err
		}
	}
	var ids []string
	for _, raw := range strings.Split(f.AssignedUser, ",") {
		switch raw = strings.TrimSpace(raw); raw {
		case "", "me", "none":
			continue
		}
		id, ok := parseID(raw)
		if !ok {
			return &domain.ValidationError{Field: "filter.assigned_user", Detail: "must be user IDs, me or none"}
		}
		ids = append(ids, id)
	}
	users, err := lockUsers(ctx, q, tenantID, sortedUnique(ids), noLock)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, ok := users[id]; !ok {
			return &domain.ValidationError{Field: "filter.assigned_user", Detail: "user " + id + " is not a user of this tenant"}
		}
	}
	return nil
}

// DeleteView deletes a view (its owner, or an admin for a shared one).
func (c *Commands) DeleteView(ctx context.Context, m Meta, viewID string) (ViewResult, error) {
	return c.viewCommand(ctx, "DeleteView", m, viewID, func(_ context.Context, _ *cmdTx, v domain.View) ([]domain.Event, error) {
		return v.Delete(m.Actor)
	})
}

func (c *Commands) viewCommand(ctx context.Context, name string, m Meta, viewID string,
	decide func(ctx context.Context, tx *cmdTx, v domain.View) ([]domain.Event, error)) (ViewResult, error) {
	m, err := m.prepare()
	if err != nil {
		return ViewResult{}, err
	}
	id, ok := parseID(viewID)
	if !ok {
		return ViewResult{}, notFound("view", viewID)
	}
	return transact(ctx, c, name, m, func(ctx context.Context, tx *cmdTx) (ViewResult, error) {
		v, err := loadView(ctx, tx, m.TenantID, id, forUpdate, m.Actor)
		if err != nil {
			return ViewResult{}, err
		}
		events, err := decide(ctx, tx, v)
		if err != nil {
			return ViewResult{}, err
		}
		before := v
		for _, e := range events {
			v.Apply(e)
		}
		result := ViewResult{SavedView: savedView(v)}
		if len(events) == 0 && !tx.keyed() {
			return result, nil
		}
		data, err := encode(events)
		if err != nil {
			return ViewResult{}, err
		}
		_, err = tx.append(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: id, StreamType: streamView, ExpectedVersion: before.Version, Events: data}},
			Metadata: m.metadata(),
			Now:      now(),
		}, &result, &result.Position)
		return result, err
	})
}
