package http

import (
	nethttp "net/http"
	"strconv"
	"time"

	"github.com/assignment-ledger/ledger/ledgerlog"
)

// The ledger log (docs/API.md, "The ledger log"): signed checkpoints of
// the tenant's tree and proofs against them. Without a ledgerlog.Log (a
// server built without a signing key) the routes answer 404.

// ledgerOr404 is the configured ledger log, or the 404 to answer.
func (s *Server) ledgerOr404() (*ledgerlog.Log, error) {
	if s.ledger == nil {
		return nil, &errInput{status: nethttp.StatusNotFound, code: "not_found", detail: "the ledger log is not configured on this server"}
	}
	return s.ledger, nil
}

func (s *Server) ledgerPublicKey(w nethttp.ResponseWriter, r *nethttp.Request) error {
	l, err := s.ledgerOr404()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(l.VerifierKey() + "\n"))
	return nil
}

func (s *Server) ledgerCheckpoint(w nethttp.ResponseWriter, r *nethttp.Request) error {
	l, err := s.ledgerOr404()
	if err != nil {
		return err
	}
	cp, err := l.Latest(r.Context(), principal(r.Context()).TenantID)
	if err != nil {
		return err
	}
	if negotiate(r, "text/plain", "application/json") == "application/json" {
		writeJSON(w, nethttp.StatusOK, cp)
		return nil
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(cp.Note))
	return nil
}

// checkpointsCursor pages the checkpoints by tree size.
type checkpointsCursor struct {
	K     string `json:"k"`
	After int64  `json:"after"`
}

func (s *Server) ledgerCheckpoints(w nethttp.ResponseWriter, r *nethttp.Request) error {
	l, err := s.ledgerOr404()
	if err != nil {
		return err
	}
	from, to := time.Time{}, time.Now().Add(time.Hour)
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		t, err := timeParam(r, name)
		if err != nil {
			return err
		}
		if t != nil {
			*dst = *t
		}
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	var after checkpointsCursor
	if raw := r.URL.Query().Get("cursor"); raw != "" {
		if err := decodeCursor(raw, &after); err != nil || after.K != "checkpoints" {
			return badRequest("invalid_cursor", "cursor", "the cursor is not one this list issued")
		}
	}
	items, err := l.List(r.Context(), principal(r.Context()).TenantID, from, to, after.After, limit+1)
	if err != nil {
		return err
	}
	pg := page[ledgerlog.Signed]{Items: nonNil(items)}
	if len(items) > limit {
		pg.Items = items[:limit]
		pg.NextCursor = encodeCursor(checkpointsCursor{K: "checkpoints", After: items[limit-1].TreeSize})
	}
	writeJSON(w, nethttp.StatusOK, pg)
	return nil
}

// intParam reads a required non-negative integer query parameter.
func intParam(r *nethttp.Request, name string) (int64, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return 0, badRequest("invalid_input", name, "%s is required", name)
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("invalid_input", name, "%s must be a non-negative integer", name)
	}
	return n, nil
}

func (s *Server) ledgerInclusion(w nethttp.ResponseWriter, r *nethttp.Request) error {
	l, err := s.ledgerOr404()
	if err != nil {
		return err
	}
	leaf, err := intParam(r, "leaf_index")
	if err != nil {
		return err
	}
	size, err := intParam(r, "tree_size")
	if err != nil {
		return err
	}
	p, err := l.Inclusion(r.Context(), principal(r.Context()).TenantID, leaf, size)
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, p)
	return nil
}

func (s *Server) ledgerConsistency(w nethttp.ResponseWriter, r *nethttp.Request) error {
	l, err := s.ledgerOr404()
	if err != nil {
		return err
	}
	from, err := intParam(r, "from")
	if err != nil {
		return err
	}
	to, err := intParam(r, "to")
	if err != nil {
		return err
	}
	p, err := l.Consistency(r.Context(), principal(r.Context()).TenantID, from, to)
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, p)
	return nil
}
