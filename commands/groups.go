package commands

import (
	"context"
	"fmt"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// GroupResult is a group as a group command leaves it.
type GroupResult struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Version  int64  `json:"-"`
	Position int64  `json:"position"`
}

// lockGroup locks the tenant's group stream id with mode and reads the
// group; a group of another tenant, an unknown one and a deleted one are
// ErrNotFound.
func lockGroup(ctx context.Context, q streamSource, tenantID, id string, mode lockMode) (domain.Group, error) {
	versions, err := q.StreamVersions(ctx, tenantID, streamGroup, []string{id}, storeLock[mode])
	if err != nil {
		return domain.Group{}, fmt.Errorf("lock group: %w", err)
	}
	if _, ok := versions[id]; !ok {
		return domain.Group{}, notFound("group", id)
	}
	streams, err := readEvents(ctx, nil, q, tenantID, []string{id}) // a group's stream holds nothing sealed
	if err != nil {
		return domain.Group{}, err
	}
	var g domain.Group
	for _, ev := range streams[id] {
		e, err := domain.DecodeEvent(ev.Type, ev.Schema, ev.Data)
		if err != nil {
			return domain.Group{}, fmt.Errorf("group %s version %d: %w", id, ev.Version, err)
		}
		g.Apply(e)
	}
	if g.ID != id || g.Deleted {
		return domain.Group{}, notFound("group", id)
	}
	return g, nil
}

// groupCommand is the shape of rename and delete: lock the group, decide,
// append (moving the name's claim when it changes).
func (c *Commands) groupCommand(ctx context.Context, name string, m Meta, groupID string,
	decide func(g domain.Group) ([]domain.Event, error)) (GroupResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return GroupResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return GroupResult{}, err
	}
	gid, ok := parseID(groupID)
	if !ok {
		return GroupResult{}, notFound("group", groupID)
	}
	return transact(ctx, c, name, m, func(ctx context.Context, tx *cmdTx) (GroupResult, error) {
		g, err := lockGroup(ctx, tx, m.TenantID, gid, forUpdate)
		if err != nil {
			return GroupResult{}, err
		}
		events, err := decide(g)
		if err != nil {
			return GroupResult{}, err
		}
		before := g
		for _, e := range events {
			g.Apply(e)
		}
		result := GroupResult{ID: g.ID, Name: g.Name, Version: g.Version}
		if len(events) == 0 && !tx.keyed() {
			return result, nil
		}
		var claims, releases []eventstore.Claim
		if g.Deleted || domain.GroupNameKey(g.Name) != domain.GroupNameKey(before.Name) {
			releases = []eventstore.Claim{groupClaim(gid, before.Name)}
			if !g.Deleted {
				claims = []eventstore.Claim{groupClaim(gid, g.Name)}
			}
		}
		data, err := encode(events)
		if err != nil {
			return GroupResult{}, err
		}
		_, err = tx.append(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: gid, StreamType: streamGroup, ExpectedVersion: before.Version, Events: data}},
			Claims:   claims,
			Releases: releases,
			Metadata: m.metadata(),
			Now:      now(),
		}, &result, &result.Position)
		return result, translateClaim(err)
	})
}

// groupClaim reserves a group's name in its tenant, case-insensitively.
func groupClaim(groupID, name string) eventstore.Claim {
	return eventstore.Claim{Kind: claimGroupName, Value: domain.GroupNameKey(name), OwnerID: groupID}
}
