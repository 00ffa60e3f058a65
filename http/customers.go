package http

import (
	"errors"
	nethttp "net/http"
	"strconv"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/projections"
)

type profileBody struct {
	FirstName  string `json:"first_name"`
	LastName   string `json:"last_name"`
	Email      string `json:"email"`
	Phone      string `json:"phone"`
	ExternalID string `json:"external_id"`
	Title      string `json:"title"`
}

func (b profileBody) profile() domain.Profile {
	return domain.Profile{FirstName: b.FirstName, LastName: b.LastName, Email: b.Email, Phone: b.Phone, ExternalID: b.ExternalID, Title: b.Title}
}

// writeCustomer answers a customer command with its ETag.
func writeCustomer(w nethttp.ResponseWriter, status int, res commands.CustomerResult) {
	w.Header().Set("ETag", etag(res.Version))
	writeCommand(w, status, res.Position, res)
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

type registerBody struct {
	profileBody
	Team []string `json:"team"`
}

func (s *Server) registerCustomer(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body registerBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	team, err := teamIDs(r, body.Team)
	if err != nil {
		return err
	}
	res, err := s.cmd.RegisterCustomer(r.Context(), m, body.profile(), team...)
	if err != nil {
		return err
	}
	writeCustomer(w, nethttp.StatusCreated, res)
	return nil
}

// profilePatchBody is PATCH /v1/customers/{id}: the fields sent change.
type profilePatchBody struct {
	FirstName  *string `json:"first_name"`
	LastName   *string `json:"last_name"`
	Email      *string `json:"email"`
	Phone      *string `json:"phone"`
	ExternalID *string `json:"external_id"`
	Title      *string `json:"title"`
}

func (s *Server) updateCustomer(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var body profilePatchBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	res, err := s.cmd.UpdateCustomer(r.Context(), m, id, commands.ProfilePatch{FirstName: body.FirstName, LastName: body.LastName,
		Email: body.Email, Phone: body.Phone, ExternalID: body.ExternalID, Title: body.Title})
	if err != nil {
		return err
	}
	writeCustomer(w, nethttp.StatusOK, res)
	return nil
}

func (s *Server) getCustomer(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	c, err := s.cmd.GetCustomer(r.Context(), principal(r.Context()).TenantID, id)
	if errors.Is(err, commands.ErrErased) {
		if seen := s.seeCustomerID(r.Context(), id); seen != nil {
			return seen
		}
	}
	if err != nil {
		return err
	}
	if err := s.seeCustomer(r.Context(), c); err != nil {
		return err
	}
	w.Header().Set("ETag", etag(c.Version))
	writeJSON(w, nethttp.StatusOK, c)
	return nil
}

func (s *Server) customerCommand(w nethttp.ResponseWriter, r *nethttp.Request,
	run func(m commands.Meta, customerID string) (commands.CustomerResult, error)) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	m, err := s.command(r, nil)
	if err != nil {
		return err
	}
	res, err := run(m, id)
	if err != nil {
		return err
	}
	writeCustomer(w, nethttp.StatusOK, res)
	return nil
}

func (s *Server) blockCustomer(w nethttp.ResponseWriter, r *nethttp.Request) error {
	return s.customerCommand(w, r, func(m commands.Meta, id string) (commands.CustomerResult, error) {
		return s.cmd.BlockCustomer(r.Context(), m, id)
	})
}

func (s *Server) unblockCustomer(w nethttp.ResponseWriter, r *nethttp.Request) error {
	return s.customerCommand(w, r, func(m commands.Meta, id string) (commands.CustomerResult, error) {
		return s.cmd.UnblockCustomer(r.Context(), m, id)
	})
}

// eraseCustomer is DELETE /v1/customers/{id}: crypto-shredding erasure
// (commands.EraseCustomer), 204 with the position token.
func (s *Server) eraseCustomer(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	m, err := s.command(r, nil)
	if err != nil {
		return err
	}
	pos, err := s.cmd.EraseCustomer(r.Context(), m, id)
	if err != nil {
		return err
	}
	writeNoContent(w, pos)
	return nil
}

func (s *Server) customerFilter(r *nethttp.Request) (projections.CustomerFilter, error) {
	q := r.URL.Query()
	f, err := filterOf(r, q.Get("q"), q.Get("status"), q.Get("assigned_user"), q.Get("group"), "")
	if err != nil || q.Get("view") == "" {
		return f, err
	}
	return s.narrowByView(r, f, q.Get("view"))
}

func (s *Server) listCustomers(w nethttp.ResponseWriter, r *nethttp.Request) error {
	tenant := principal(r.Context()).TenantID
	f, err := s.customerFilter(r)
	if err != nil {
		return err
	}
	if fm, ok, err := exportFormatOf(r); err != nil {
		return err
	} else if ok {
		return s.export(w, r, tenant, fm, f)
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	pg, err := s.q.Customers(r.Context(), tenant, f, limit, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	pg.Items = nonNil(pg.Items)
	writeJSON(w, nethttp.StatusOK, pg)
	return nil
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
