package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// BootstrapResult is what `ledger bootstrap` prints.
type BootstrapResult struct {
	TenantID string `json:"tenant_id"`
	UserID   string `json:"user_id"`
	APIKey   string `json:"api_key"`
}

// bootstrapActor is the actor of a tenant's first events.
var bootstrapActor = eventstore.Actor{Name: "bootstrap"}

// Bootstrap creates a tenant, its first admin and an API key for them, in
// one transaction: the tenants row, TenantCreated, UserCreated and
// ApiKeyIssued, with the users and api_keys rows.
func (c *Commands) Bootstrap(ctx context.Context, tenantName, adminName, adminEmail string) (BootstrapResult, error) {
	tenantID, userID, keyID := newID(), newID(), newID()
	tenantEvents, err := domain.CreateTenant(tenantID, tenantName)
	if err != nil {
		return BootstrapResult{}, err
	}
	userEvents, err := domain.CreateUser(userID, tenantID, adminName, adminEmail, domain.RoleAdmin)
	if err != nil {
		return BootstrapResult{}, err
	}
	created := userEvents[0].(domain.UserCreated)
	userEvents = append(userEvents, domain.ApiKeyIssued{UserID: userID, KeyID: keyID})
	tenantData, err := encode(tenantEvents)
	if err != nil {
		return BootstrapResult{}, err
	}
	userData, err := encode(userEvents)
	if err != nil {
		return BootstrapResult{}, err
	}
	key, at := newAPIKey(), now()
	name := tenantEvents[0].(domain.TenantCreated).Name
	addUser := insertUser(tenantID, created, at)
	addKey := insertAPIKey(tenantID, userID, keyID, key, at)
	err = c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`, tenantID, name, at); err != nil {
			return fmt.Errorf("insert tenant: %w", err)
		}
		if err := errors.Join(addUser(ctx, tx), addKey(ctx, tx)); err != nil {
			return err
		}
		_, err := tx.Append(ctx, eventstore.AppendRequest{
			TenantID: tenantID,
			Streams: []eventstore.StreamWrite{
				{StreamID: tenantID, StreamType: streamTenant, ExpectedVersion: eventstore.NoStream, Events: tenantData},
				{StreamID: userID, StreamType: streamUser, ExpectedVersion: eventstore.NoStream, Events: userData},
			},
			Claims:   []eventstore.Claim{{Kind: claimUserEmail, Value: created.Email, OwnerID: userID}},
			Metadata: eventstore.Metadata{Actor: bootstrapActor, CorrelationID: newID()},
			Now:      at,
		})
		return err
	})
	if err != nil {
		return BootstrapResult{}, err
	}
	c.names.put(userID, created.Name)
	return BootstrapResult{TenantID: tenantID, UserID: userID, APIKey: key}, nil
}
