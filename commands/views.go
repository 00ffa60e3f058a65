package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
)

// Assignee is one member of a customer's team as shown to clients.
type Assignee struct {
	UserID     string    `json:"user_id"`
	Name       string    `json:"name"`
	Lead       bool      `json:"lead"`
	AssignedAt time.Time `json:"assigned_at"`
}

// CustomerView is a customer as it stands in the write model.
type CustomerView struct {
	ID         string     `json:"id"`
	FirstName  string     `json:"first_name"`
	LastName   string     `json:"last_name"`
	Email      string     `json:"email"`
	Phone      string     `json:"phone"`
	ExternalID string     `json:"external_id"`
	Title      string     `json:"title"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	Version    int64      `json:"version"`
	Assignees  []Assignee `json:"assignees"`
	// Invitation is where an invited client's invitation stands; only
	// the reads from the event store (GET, the invitation and its
	// acceptance) fill it in.
	Invitation *InvitationView `json:"invitation,omitempty"`
}

// CustomerResult is the answer of a successful customer command.
type CustomerResult struct {
	CustomerView
	Position int64 `json:"position"`
	// FollowUp is the follow-up a follow-up command decided on (only
	// theirs): kept in the stored idempotent answer, so a replay has it.
	FollowUp *FollowUpView `json:"follow_up,omitempty"`
}

// UserView is a team member.
type UserView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	// CheckpointEmail tells whether the user is e-mailed the daily
	// checkpoint: always for an auditor, for an admin who opted in.
	CheckpointEmail bool `json:"checkpoint_email"`
	// AwayUntil is when an out-of-office user is back (null: not away);
	// NotifyByEmail the user's choice to get notifications by e-mail too.
	AwayUntil     *time.Time `json:"away_until"`
	NotifyByEmail bool       `json:"notify_by_email"`
	// Customers is how many customers the user serves, from the my_clients
	// read model (filled in by the HTTP layer).
	Customers int `json:"customers"`
}

// UserResult is the answer of a successful user command.
type UserResult struct {
	UserView
	Position int64 `json:"position"`
}

// PolicyResult is the answer of ChangePolicy.
type PolicyResult struct {
	domain.Policy
	// CustomersOverLimit counts the customers whose team is larger than
	// MaxAssignees (set when there is a limit): a lowered limit keeps
	// existing teams, which can then only shrink.
	CustomersOverLimit *int  `json:"customers_over_limit,omitempty"`
	Position           int64 `json:"position"`
}

func userView(u domain.User) UserView {
	return UserView{ID: u.ID, Name: u.Name, Email: u.Email, Role: string(u.Role), Status: string(u.Status), CreatedAt: u.CreatedAt.UTC(),
		CheckpointEmail: u.ReceivesCheckpointEmail(), AwayUntil: u.AwayUntil, NotifyByEmail: u.NotifyByEmail}
}

// customerView renders c; the names of its team must be in the cache
// (fillNames), a missing one shows as "".
func (c *Commands) customerView(cu domain.Customer) CustomerView {
	v := CustomerView{
		ID: cu.ID, FirstName: cu.Profile.FirstName, LastName: cu.Profile.LastName, Email: cu.Profile.Email,
		Phone: cu.Profile.Phone, ExternalID: cu.Profile.ExternalID, Title: cu.Profile.Title, Status: string(cu.Status),
		CreatedAt: cu.CreatedAt.UTC(), Version: cu.Version, Assignees: make([]Assignee, 0, len(cu.Team)),
	}
	for _, m := range cu.Team {
		name, _ := c.names.get(m.UserID)
		v.Assignees = append(v.Assignees, Assignee{UserID: m.UserID, Name: name, Lead: m.Lead, AssignedAt: m.AssignedAt.UTC()})
	}
	return v
}

func teamIDs(cu domain.Customer) []string {
	ids := make([]string, len(cu.Team))
	for i, m := range cu.Team {
		ids[i] = m.UserID
	}
	return ids
}

// GetCustomer reads a customer from its stream (consistent with every
// committed command), with its team's names.
func (c *Commands) GetCustomer(ctx context.Context, tenantID, customerID string) (CustomerView, error) {
	tenantID, ok1 := parseID(tenantID)
	customerID, ok2 := parseID(customerID)
	if !ok1 || !ok2 {
		return CustomerView{}, ErrNotFound
	}
	cu, err := readCustomer(ctx, c.keys, c.reads(), tenantID, customerID)
	if err != nil {
		return CustomerView{}, err
	}
	if err := c.fillNames(ctx, c.store.Pool(), tenantID, teamIDs(cu)); err != nil {
		return CustomerView{}, err
	}
	v := c.customerView(cu)
	if cu.Invited {
		if v.Invitation, err = invitationOf(ctx, storeReader{c.store}, tenantID, customerID); err != nil {
			return CustomerView{}, err
		}
	}
	return v, nil
}

// GetUser reads a user from the team directory.
func (c *Commands) GetUser(ctx context.Context, tenantID, userID string) (UserView, error) {
	tenantID, ok1 := parseID(tenantID)
	userID, ok2 := parseID(userID)
	if !ok1 || !ok2 {
		return UserView{}, ErrNotFound
	}
	row := c.store.Pool().QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE tenant_id = $1 AND id = $2`, tenantID, userID)
	u, err := scanUser(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return UserView{}, notFound("user", userID)
	}
	if err != nil {
		return UserView{}, fmt.Errorf("get user: %w", err)
	}
	return userView(u), nil
}

// UsersAfter is where a page of users starts: after this (name, id).
type UsersAfter struct {
	Name string `json:"n"`
	ID   string `json:"i"`
}

// UsersFilter narrows the list of users. Zero fields do not filter.
type UsersFilter struct {
	// Q matches name or email, case-insensitively, anywhere.
	Q string
	// Status is "active" or "deactivated".
	Status string
}

// ListUsers lists up to limit of the tenant's users matching f by name,
// after the given key when not nil.
func (c *Commands) ListUsers(ctx context.Context, tenantID string, f UsersFilter, after *UsersAfter, limit int) ([]UserView, error) {
	tenantID, ok := parseID(tenantID)
	if !ok {
		return nil, ErrNotFound
	}
	var afterName, afterID any
	if after != nil {
		id, ok := parseID(after.ID)
		if !ok {
			return nil, &domain.ValidationError{Field: "cursor", Detail: "invalid cursor"}
		}
		afterName, afterID = after.Name, id
	}
	var pattern, status any
	if f.Q != "" {
		// The directory is small per tenant: a scan of the tenant's rows
		// with ILIKE is cheap, so no trigram index is kept for it.
		pattern = "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(f.Q) + "%"
	}
	if f.Status != "" {
		status = f.Status
	}
	rows, err := c.store.Pool().Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE tenant_id = $1 AND ($2::text IS NULL OR (name, id) > ($2::text, $3::uuid))
		  AND ($5::text IS NULL OR name ILIKE $5 OR email ILIKE $5) AND ($6::text IS NULL OR status = $6)
		ORDER BY name, id LIMIT $4`, tenantID, afterName, afterID, limit, pattern, status)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []UserView{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, userView(u))
	}
	return out, rows.Err()
}

// GetPolicy reads the tenant's policy from its stream.
func (c *Commands) GetPolicy(ctx context.Context, tenantID string) (domain.Policy, error) {
	tenantID, ok := parseID(tenantID)
	if !ok {
		return domain.Policy{}, ErrNotFound
	}
	return readPolicy(ctx, c.reads(), tenantID)
}

// LastPosition is the position of the tenant's last committed event (0
// when it has none): what a read model must have processed to show every
// command committed so far.
func (c *Commands) LastPosition(ctx context.Context, tenantID string) (int64, error) {
	tenantID, ok := parseID(tenantID)
	if !ok {
		return 0, ErrNotFound
	}
	return c.store.LastPosition(ctx, tenantID)
}
