package http

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"strings"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

func (s *Server) getPolicy(w nethttp.ResponseWriter, r *nethttp.Request) error {
	pol, err := s.cmd.GetPolicy(r.Context(), principal(r.Context()).TenantID)
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, pol)
	return nil
}

type policyBody struct {
	MaxAssignees         nullableInt `json:"max_assignees"`
	RequireAssignee      *bool       `json:"require_assignee"`
	RequireLead          *bool       `json:"require_lead"`
	MembersCanSelfAssign *bool       `json:"members_can_self_assign"`

	// MembersSee is optional (contract v3): absent leaves it unchanged.
	// Raw, so that null is told from absent (null is refused).
	MembersSee json.RawMessage `json:"members_see"`

	// MaxCustomersPerUser is optional (contract v3): absent keeps it.
	MaxCustomersPerUser nullableCount `json:"max_customers_per_user"`
}

// nullableInt tells a field left out (Set false) from an explicit null.
type nullableInt struct {
	Set   bool
	Value *int
}

func (n *nullableInt) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v int
	if err := json.Unmarshal(b, &v); err != nil {
		return badRequest("invalid_input", "max_assignees", "max_assignees must be %s", n.jsonKind())
	}
	n.Value = &v
	return nil
}

func (*nullableInt) jsonKind() string { return "an integer or null" }

func (s *Server) putPolicy(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body policyBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	// PUT replaces the whole policy: every field must be present, so that a
	// forgotten field never silently resets a rule (leaving out max_assignees
	// removed the limit); "max_assignees": null is how to say "no limit".
	for _, f := range []struct {
		name    string
		present bool
	}{
		{"max_assignees", body.MaxAssignees.Set},
		{"require_assignee", body.RequireAssignee != nil},
		{"require_lead", body.RequireLead != nil},
		{"members_can_self_assign", body.MembersCanSelfAssign != nil},
	} {
		if !f.present {
			return badRequest("invalid_input", f.name, "%s is missing: send the whole policy (max_assignees, require_assignee, require_lead, members_can_self_assign; max_assignees null for no limit)", f.name)
		}
	}
	var keep []commands.PolicyField
	if !body.MaxCustomersPerUser.Set {
		keep = append(keep, commands.KeepMaxCustomersPerUser)
	}
	next := domain.Policy{
		MaxAssignees: body.MaxAssignees.Value, RequireAssignee: *body.RequireAssignee,
		RequireLead: *body.RequireLead, MembersCanSelfAssign: *body.MembersCanSelfAssign,
		MaxCustomersPerUser: body.MaxCustomersPerUser.Value,
	}
	if body.MembersSee != nil {
		var see string
		// Empty would read as "unchanged" in the command; the domain
		// refuses any other value but the two.
		if err := json.Unmarshal(body.MembersSee, &see); err != nil || see == "" {
			return badRequest("invalid_input", "members_see", `members_see must be "all" or "assigned"`)
		}
		next.MembersSee = domain.Visibility(see)
	}
	res, err := s.cmd.ChangePolicy(r.Context(), m, next, keep...)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}

type createUserBody struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Role  string `json:"role"`
}

func (s *Server) createUser(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body createUserBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	res, err := s.cmd.CreateUser(r.Context(), m, body.Name, body.Email, domain.Role(body.Role))
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusCreated, res.Position, res)
	return nil
}

func (s *Server) listUsers(w nethttp.ResponseWriter, r *nethttp.Request) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	var after *commands.UsersAfter
	if raw := r.URL.Query().Get("cursor"); raw != "" {
		after = &commands.UsersAfter{}
		if err := decodeCursor(raw, after); err != nil {
			return err
		}
	}
	f := commands.UsersFilter{Q: strings.TrimSpace(r.URL.Query().Get("q")), Status: r.URL.Query().Get("status")}
	if len(f.Q) > 200 {
		return badRequest("invalid_input", "q", "q is longer than 200 characters")
	}
	if f.Status != "" && f.Status != "active" && f.Status != "deactivated" {
		return badRequest("invalid_input", "status", "status must be active or deactivated")
	}
	users, err := s.cmd.ListUsers(r.Context(), principal(r.Context()).TenantID, f, after, limit+1)
	if err != nil {
		return err
	}
	if err := s.fillLoads(r.Context(), principal(r.Context()).TenantID, users); err != nil {
		return err
	}
	pg := page[commands.UserView]{Items: users}
	if len(users) > limit {
		last := users[limit-1]
		pg.Items, pg.NextCursor = users[:limit], encodeCursor(commands.UsersAfter{Name: last.Name, ID: last.ID})
	}
	writeJSON(w, nethttp.StatusOK, pg)
	return nil
}

func (s *Server) getUser(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	u, err := s.cmd.GetUser(r.Context(), principal(r.Context()).TenantID, id)
	if err != nil {
		return err
	}
	one := []commands.UserView{u}
	if err := s.fillLoads(r.Context(), principal(r.Context()).TenantID, one); err != nil {
		return err
	}
	u = one[0]
	writeJSON(w, nethttp.StatusOK, u)
	return nil
}

func (s *Server) issueAPIKey(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	m, err := s.command(r, nil)
	if err != nil {
		return err
	}
	res, err := s.cmd.IssueAPIKey(r.Context(), m, id)
	if err == nil && res.Replayed {
		err = errReplayUnavailable("api_key")
	}
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusCreated, res.Position, res)
	return nil
}

type deactivateBody struct {
	TransferTo string `json:"transfer_to"`
	DryRun     bool   `json:"dry_run"`
}

func (s *Server) deactivateUser(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var body deactivateBody
	meta, err := s.commandOptionalBody(r, &body)
	if err != nil {
		return err
	}
	transferTo := ""
	if body.TransferTo != "" {
		if transferTo, err = resolveID(r.Context(), body.TransferTo, "transfer_to"); err != nil {
			return err
		}
	}
	if body.DryRun {
		preview, err := s.cmd.PreviewDeactivation(r.Context(), meta, id, transferTo)
		if err != nil {
			return err
		}
		writeJSON(w, nethttp.StatusOK, preview)
		return nil
	}
	res, err := s.cmd.DeactivateUser(r.Context(), meta, id, transferTo)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}

type updateUserBody struct {
	Name            *string `json:"name"`
	Role            *string `json:"role"`
	CheckpointEmail *bool   `json:"checkpoint_email"`
	// AwayUntil is RFC 3339 or null (back); absent leaves it.
	AwayUntil     nullableTime `json:"away_until"`
	NotifyByEmail *bool        `json:"notify_by_email"`
}

// updateUser is PATCH /v1/users/{id}: a name, role or checkpoint e-mail
// opt-in change (see commands.ChangeUser).
func (s *Server) updateUser(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var body updateUserBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	var role *domain.Role
	if body.Role != nil {
		rl := domain.Role(*body.Role)
		role = &rl
	}
	ch := commands.UserChange{Name: body.Name, Role: role, CheckpointEmail: body.CheckpointEmail, NotifyByEmail: body.NotifyByEmail}
	if body.AwayUntil.Set {
		ch.Away, ch.AwayUntil = true, body.AwayUntil.Value
	}
	res, err := s.cmd.ChangeUser(r.Context(), m, id, ch)
	if err != nil {
		return err
	}
	one := []commands.UserView{res.UserView}
	if err := s.fillLoads(r.Context(), m.TenantID, one); err != nil {
		return err
	}
	res.UserView = one[0]
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}

type transferBody struct {
	To          string   `json:"to"`
	CustomerIDs []string `json:"customer_ids"`
	DryRun      bool     `json:"dry_run"`
}

// transferCustomers is POST /v1/users/{id}/transfer.
func (s *Server) transferCustomers(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var body transferBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	to, err := requiredID(r.Context(), body.To, "to")
	if err != nil {
		return err
	}
	req := commands.TransferRequest{From: id, To: to, DryRun: body.DryRun}
	if body.CustomerIDs != nil {
		if len(body.CustomerIDs) == 0 {
			return badRequest("invalid_input", "customer_ids", "customer_ids must not be empty (leave it out for all customers)")
		}
		if len(body.CustomerIDs) > maxBulkCustomers {
			return &tooManyError{count: len(body.CustomerIDs)}
		}
		req.CustomerIDs = make([]string, 0, len(body.CustomerIDs))
		for _, raw := range body.CustomerIDs {
			cid, err := resolveID(r.Context(), raw, "customer_ids")
			if err != nil || raw == "me" {
				return badRequest("invalid_id", "customer_ids", "customer id %q is not a UUID", raw)
			}
			req.CustomerIDs = append(req.CustomerIDs, cid)
		}
	}
	res, err := s.cmd.TransferCustomers(r.Context(), m, req)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}

// fillLoads sets each user's customers from the my_clients read model.
func (s *Server) fillLoads(ctx context.Context, tenantID string, users []commands.UserView) error {
	if len(users) == 0 {
		return nil
	}
	loads, err := s.q.Loads(ctx, tenantID)
	if err != nil {
		return err
	}
	for i := range users {
		users[i].Customers = loads[users[i].ID].Customers
	}
	return nil
}
