package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// streamRule is an assignment rule's stream type.
const streamRule = "assignment_rule"

// RuleView is an assignment rule as the API shows it.
type RuleView struct {
	ID string `json:"id"`
	domain.RuleBody
}

// RuleResult is the answer of a rule command.
type RuleResult struct {
	RuleView
	Position int64 `json:"position"`
}

const (
	qRules    = `SELECT id::text, body FROM assignment_rules WHERE tenant_id = $1 AND NOT deleted ORDER BY ord, id`
	qRule     = `SELECT body, deleted FROM assignment_rules WHERE tenant_id = $1 AND id = $2`
	qPutRule  = `INSERT INTO assignment_rules (id, tenant_id, body, ord) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET body = $3, ord = $4`
	qDropRule = `UPDATE assignment_rules SET deleted = true WHERE tenant_id = $1 AND id = $2`
)

// checkRuleUsers refuses a rule naming a user the tenant does not have, or
// an auditor (never assigned), or a group the tenant does not have.
func checkRuleUsers(ctx context.Context, q streamSource, tenantID string, body domain.RuleBody) error {
	ids, err := parseIDs("user", body.Assign.UserIDs...)
	if err != nil {
		return &domain.ValidationError{Field: "assign.user_ids", Detail: "must be user IDs"}
	}
	users, err := lockUsers(ctx, q, tenantID, sortedUnique(ids), noLock)
	if err != nil {
		return err
	}
	for _, id := range ids {
		u, ok := users[id]
		if !ok {
			return &domain.ValidationError{Field: "assign.user_ids", Detail: "user " + id + " is not a user of this tenant"}
		}
		if u.Role == domain.RoleAuditor {
			return &domain.RuleError{Code: domain.CodeAuditorNotAssignable, Detail: "user " + id + " is an auditor; auditors are never assigned to customers"}
		}
	}
	if body.Match.Group != "" {
		if _, ok := parseID(body.Match.Group); !ok {
			return &domain.ValidationError{Field: "match.group", Detail: "must be a group ID"}
		}
		// A rule of a group that is not there would never match, and
		// nobody would be told.
		if _, err := lockGroup(ctx, q, tenantID, body.Match.Group, noLock); errors.Is(err, ErrNotFound) {
			return &domain.ValidationError{Field: "match.group", Detail: "group " + body.Match.Group + " is not a group of this tenant"}
		} else if err != nil {
			return err
		}
	}
	return nil
}

// normalizeRuleIDs canonicalizes the user IDs (and weights' keys) of b,
// "me" standing for the caller (me) as wherever a user ID goes.
func normalizeRuleIDs(b domain.RuleBody, me string) domain.RuleBody {
	canonical := func(id string) string {
		if id == "me" {
			return me
		}
		if p, ok := parseID(id); ok {
			return p
		}
		return id
	}
	ids := make([]string, len(b.Assign.UserIDs))
	for i, id := range b.Assign.UserIDs {
		ids[i] = canonical(id)
	}
	b.Assign.UserIDs = ids
	if b.Assign.Weights != nil {
		w := make(map[string]int, len(b.Assign.Weights))
		for id, n := range b.Assign.Weights {
			w[canonical(id)] = n
		}
		b.Assign.Weights = w
	}
	if p, ok := parseID(b.Match.Group); ok {
		b.Match.Group = p
	}
	return b
}

// CreateRule creates an assignment rule (admin only).
func (c *Commands) CreateRule(ctx context.Context, m Meta, body domain.RuleBody) (RuleResult, error) {
	return c.writeRule(ctx, m, "", body, false)
}

// ChangeRule replaces a rule's definition (admin only); its rotation starts
// over.
func (c *Commands) ChangeRule(ctx context.Context, m Meta, id string, body domain.RuleBody) (RuleResult, error) {
	return c.writeRule(ctx, m, id, body, false)
}

// DeleteRule deletes a rule (admin only).
func (c *Commands) DeleteRule(ctx context.Context, m Meta, id string) (RuleResult, error) {
	return c.writeRule(ctx, m, id, domain.RuleBody{}, true)
}

func (c *Commands) writeRule(ctx context.Context, m Meta, id string, body domain.RuleBody, del bool) (RuleResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return RuleResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return RuleResult{}, err
	}
	if id != "" {
		var ok bool
		if id, ok = parseID(id); !ok {
			return RuleResult{}, notFound("assignment rule", id)
		}
	}
	if !del {
		if body, err = domain.NormalizeRule(normalizeRuleIDs(body, m.Actor.UserID)); err != nil {
			return RuleResult{}, err
		}
	}
	return transact(ctx, c, "WriteRule", m, func(ctx context.Context, tx *cmdTx) (RuleResult, error) {
		var result RuleResult
		if !del {
			if err := checkRuleUsers(ctx, tx, m.TenantID, body); err != nil {
				return result, err
			}
		}
		expected := eventstore.NoStream
		var events []domain.Event
		if id == "" {
			id = newID()
			events = []domain.Event{domain.AssignmentRuleCreated{RuleID: id, RuleBody: body}}
		} else {
			versions, err := tx.StreamVersions(ctx, m.TenantID, streamRule, []string{id}, eventstore.LockUpdate)
			if err != nil {
				return result, fmt.Errorf("lock rule: %w", err)
			}
			v, ok := versions[id]
			if !ok {
				return result, notFound("assignment rule", id)
			}
			expected = v
			var cur domain.RuleBody
			var deleted bool
			var raw []byte
			if err := tx.QueryRow(ctx, qRule, m.TenantID, id).Scan(&raw, &deleted); err != nil {
				return result, fmt.Errorf("read rule: %w", err)
			}
			if deleted {
				return result, notFound("assignment rule", id)
			}
			if err := json.Unmarshal(raw, &cur); err != nil {
				return result, fmt.Errorf("read rule: %w", err)
			}
			if del {
				body = cur
				events = []domain.Event{domain.AssignmentRuleDeleted{RuleID: id, Name: cur.Name}}
			} else {
				events = []domain.Event{domain.AssignmentRuleChanged{RuleID: id, RuleBody: body}}
			}
		}
		result.RuleView = RuleView{ID: id, RuleBody: body}
		raw, err := json.Marshal(body)
		if err != nil {
			return result, err
		}
		if del {
			_, err = tx.Exec(ctx, qDropRule, m.TenantID, id)
		} else {
			_, err = tx.Exec(ctx, qPutRule, id, m.TenantID, raw, body.Order)
		}
		if err != nil {
			return result, fmt.Errorf("write rule row: %w", err)
		}
		data, err := encode(events)
		if err != nil {
			return result, err
		}
		res, err := tx.append(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: id, StreamType: streamRule, ExpectedVersion: expected, Events: data}},
			Metadata: m.metadata(),
			Now:      now(),
		}, &result, &result.Position)
		if err != nil {
			return result, err
		}
		result.Position = res.Position
		return result, nil
	})
}

// ListRules lists the tenant's rules in the order they are tried.
func (c *Commands) ListRules(ctx context.Context, tenantID string) ([]RuleView, error) {
	tenantID, ok := parseID(tenantID)
	if !ok {
		return nil, ErrNotFound
	}
	rules, err := readRules(ctx, c.store.Pool(), tenantID)
	if err != nil {
		return nil, err
	}
	out := make([]RuleView, len(rules))
	for i, r := range rules {
		out[i] = RuleView{ID: r.ID, RuleBody: r.RuleBody}
	}
	return out, nil
}

// GetRule reads one rule.
func (c *Commands) GetRule(ctx context.Context, tenantID, id string) (RuleView, error) {
	tenantID, ok1 := parseID(tenantID)
	id, ok2 := parseID(id)
	if !ok1 || !ok2 {
		return RuleView{}, notFound("assignment rule", id)
	}
	var raw []byte
	var deleted bool
	err := c.store.Pool().QueryRow(ctx, qRule, tenantID, id).Scan(&raw, &deleted)
	if errors.Is(err, pgx.ErrNoRows) || deleted {
		return RuleView{}, notFound("assignment rule", id)
	}
	if err != nil {
		return RuleView{}, fmt.Errorf("read rule: %w", err)
	}
	v := RuleView{ID: id}
	if err := json.Unmarshal(raw, &v.RuleBody); err != nil {
		return RuleView{}, fmt.Errorf("read rule: %w", err)
	}
	return v, nil
}

// readRules reads the tenant's rules (not deleted), in order.
func readRules(ctx context.Context, q querier, tenantID string) ([]domain.Rule, error) {
	rows, err := q.Query(ctx, qRules, tenantID)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	defer rows.Close()
	var out []domain.Rule
	for rows.Next() {
		var r domain.Rule
		var raw []byte
		if err := rows.Scan(&r.ID, &raw); err != nil {
			return nil, fmt.Errorf("read rules: %w", err)
		}
		if err := json.Unmarshal(raw, &r.RuleBody); err != nil {
			return nil, fmt.Errorf("read rule %s: %w", r.ID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	domain.SortRules(out)
	return out, nil
}
