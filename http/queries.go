package http

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/keyring"
	"github.com/assignment-ledger/ledger/ledgerlog"
	"github.com/assignment-ledger/ledger/projections"
)

// userInTenant answers 404 for IDs outside the caller's tenant before a
// read model is asked, so an empty list never passes for "no such user".
func (s *Server) userInTenant(r *nethttp.Request, id string) error {
	_, err := s.cmd.GetUser(r.Context(), principal(r.Context()).TenantID, id)
	return err
}

func (s *Server) userClients(w nethttp.ResponseWriter, r *nethttp.Request) error {
	tenant := principal(r.Context()).TenantID
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	asOf, err := timeParam(r, "as_of")
	if err != nil {
		return err
	}
	if err := s.userInTenant(r, id); err != nil {
		return err
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if asOf != nil {
		items, err := s.clientsAsOf(r, tenant, id, q, *asOf)
		if err != nil {
			return err
		}
		pg, err := pageOf(r, items)
		if err != nil {
			return err
		}
		writeJSON(w, nethttp.StatusOK, pg)
		return nil
	}
	pg, err := s.q.MyClients(r.Context(), tenant, id, q, limit, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	pg.Items = nonNil(pg.Items)
	writeJSON(w, nethttp.StatusOK, pg)
	return nil
}

// clientsAsOf shapes a user's customers at a moment like "My Clients": the
// customer's profile as it is now, its team and this user's place as of then.
func (s *Server) clientsAsOf(r *nethttp.Request, tenant, userID, q string, at time.Time) ([]projections.MyClient, error) {
	held, err := s.q.ClientsAsOf(r.Context(), tenant, userID, at)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(held))
	for _, h := range held {
		ids = append(ids, h.CustomerID)
	}
	byID, err := s.q.CustomersByID(r.Context(), tenant, ids)
	if err != nil {
		return nil, err
	}
	q = strings.ToLower(q)
	out := make([]projections.MyClient, 0, len(held))
	for _, h := range held {
		c, ok := byID[h.CustomerID]
		if !ok {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(c.FirstName+" "+c.LastName+" "+c.Email), q) {
			continue
		}
		if c.Assignees, err = s.q.TeamAsOf(r.Context(), tenant, h.CustomerID, at); err != nil {
			return nil, err
		}
		out = append(out, projections.MyClient{CustomerItem: c, Lead: h.Lead, AssignedAt: h.AssignedAt})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].AssignedAt.After(out[j].AssignedAt) })
	return out, nil
}

// historyItem is one event as auditors see it.
type historyItem struct {
	Position      int64           `json:"position"`
	Type          string          `json:"type"`
	At            time.Time       `json:"at"`
	Actor         historyActor    `json:"actor"`
	CorrelationID string          `json:"correlation_id"`
	Data          json.RawMessage `json:"data"`
	// Erased marks every event of an erased customer: data then holds
	// only IDs and flags.
	Erased bool `json:"erased,omitempty"`
	// LeafIndex is the event's leaf in the tenant's ledger log; absent
	// while the ledger_tree read model has not applied it yet (history is
	// read from the event store itself).
	LeafIndex *int64 `json:"leaf_index,omitempty"`
}

type historyActor struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
}

func (s *Server) customerHistory(w nethttp.ResponseWriter, r *nethttp.Request) error {
	tenant := principal(r.Context()).TenantID
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	if err := s.seeCustomerID(r.Context(), id); err != nil {
		return err
	}
	events, err := s.store.ReadStream(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	if len(events) == 0 || (events[0].Type != domain.TypeCustomerRegistered && events[0].Type != domain.TypeClientInvited) {
		return commands.ErrNotFound
	}
	erased, err := s.cmd.Keyring().OpenStream(r.Context(), s.pool, id, events)
	if err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	var after int64
	if raw := r.URL.Query().Get("cursor"); raw != "" {
		if err := decodeCursor(raw, &after); err != nil {
			return err
		}
	}
	var pg page[historyItem]
	pg.Items = make([]historyItem, 0, min(len(events), limit))
	for _, e := range events {
		if e.Position <= after {
			continue
		}
		if len(pg.Items) == limit {
			pg.NextCursor = encodeCursor(pg.Items[limit-1].Position)
			break
		}
		// Decoding upcasts old schema versions; auditors see the current shape.
		ev, err := domain.DecodeEvent(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return err
		}
		data := []byte(e.Data)
		if !erased || !keyring.Sensitive(e.Type) {
			// An erased customer's sealed events opened to their ID and
			// the flag: shown as they are, without the empty fields.
			if _, _, data, err = domain.EncodeEvent(ev); err != nil {
				return err
			}
		}
		pg.Items = append(pg.Items, historyItem{
			Position: e.Position, Type: e.Type, At: e.RecordedAt,
			Actor:         historyActor{UserID: e.Metadata.Actor.UserID, Name: e.Metadata.Actor.Name},
			CorrelationID: e.Metadata.CorrelationID, Data: data, Erased: erased,
		})
	}
	positions := make([]int64, len(pg.Items))
	for i, it := range pg.Items {
		positions[i] = it.Position
	}
	leaves, err := ledgerlog.LeafIndexes(r.Context(), s.pool, positions)
	if err != nil {
		return err
	}
	for i := range pg.Items {
		if l, ok := leaves[pg.Items[i].Position]; ok {
			pg.Items[i].LeafIndex = &l
		}
	}
	writeJSON(w, nethttp.StatusOK, pg)
	return nil
}

func (s *Server) customerAssignees(w nethttp.ResponseWriter, r *nethttp.Request) error {
	tenant := principal(r.Context()).TenantID
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	asOf, err := timeParam(r, "as_of")
	if err != nil {
		return err
	}
	c, err := s.cmd.GetCustomer(r.Context(), tenant, id)
	if err == nil {
		err = s.seeCustomer(r.Context(), c)
	} else if errors.Is(err, commands.ErrErased) {
		if seen := s.seeCustomerID(r.Context(), id); seen != nil {
			return seen
		}
	}
	if errors.Is(err, commands.ErrErased) {
		// An erased customer's assignments stay provable: its team as of
		// any moment (now, without as_of) comes from assignment_intervals.
		if asOf == nil {
			t := time.Now()
			asOf = &t
		}
		err = nil
	}
	if err != nil {
		return err
	}
	var team []projections.Assignee
	if asOf == nil {
		for _, a := range c.Assignees {
			team = append(team, projections.Assignee(a))
		}
	} else if team, err = s.q.TeamAsOf(r.Context(), tenant, id, *asOf); err != nil {
		return err
	}
	pg, err := pageOf(r, team)
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, pg)
	return nil
}

// notificationsOf admits the user itself, an admin or an auditor to a user's
// notifications, after answering 404 for a user outside the tenant.
func (s *Server) notificationsOf(r *nethttp.Request, userID string) error {
	if err := s.userInTenant(r, userID); err != nil {
		return err
	}
	p := principal(r.Context())
	if p.ReadsAll() || p.UserID == userID {
		return nil
	}
	return &domain.ForbiddenError{Detail: "only the user, an admin or an auditor may do this"}
}

func (s *Server) notifications(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	if err := s.notificationsOf(r, id); err != nil {
		return err
	}
	var before int64
	if raw := r.URL.Query().Get("cursor"); raw != "" {
		if err := decodeCursor(raw, &before); err != nil || before <= 0 {
			return badRequest("invalid_cursor", "cursor", "the cursor is not one this list issued")
		}
	}
	unread, items, err := s.q.Notifications(r.Context(), principal(r.Context()).TenantID, id, limit+1, before)
	if err != nil {
		return err
	}
	ans := notificationsPage{Unread: unread, Items: nonNil(items)}
	if len(items) > limit {
		ans.Items = items[:limit]
		// Ids are "<position>-<user id>": the position is the sort key.
		pos, _, _ := strings.Cut(items[limit-1].ID, "-")
		last, _ := strconv.ParseInt(pos, 10, 64)
		ans.NextCursor = encodeCursor(last)
	}
	writeJSON(w, nethttp.StatusOK, ans)
	return nil
}

type notificationsPage struct {
	Unread     int                        `json:"unread"`
	Items      []projections.Notification `json:"items"`
	NextCursor string                     `json:"next_cursor,omitempty"`
}

type markReadBody struct {
	IDs []string `json:"ids"`
}

func (s *Server) markNotificationsRead(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	body, err := readBody(r, "application/json", maxJSONBody)
	if err != nil {
		return err
	}
	var req markReadBody
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if len(req.IDs) > 1000 {
		return badRequest("invalid_input", "ids", "at most 1000 ids at once")
	}
	if err := s.notificationsOf(r, id); err != nil {
		return err
	}
	tenant := principal(r.Context()).TenantID
	if err := s.q.MarkRead(r.Context(), tenant, id, req.IDs); err != nil {
		return err
	}
	unread, items, err := s.q.Notifications(r.Context(), tenant, id, 50, 0)
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, map[string]any{"unread": unread, "items": nonNil(items)})
	return nil
}

func (s *Server) auditFilter(r *nethttp.Request) (projections.AuditFilter, error) {
	q := r.URL.Query()
	var f projections.AuditFilter
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		t, err := timeParam(r, name)
		if err != nil {
			return f, err
		}
		if t != nil {
			*dst = *t
		}
	}
	var err error
	for name, dst := range map[string]*string{"actor": &f.Actor, "customer_id": &f.CustomerID, "user_id": &f.UserID} {
		if raw := q.Get(name); raw != "" {
			if *dst, err = resolveID(r.Context(), raw, name); err != nil {
				return f, err
			}
		}
	}
	// An unknown type is a 400 listing the known ones, not an empty log
	// that looks like "nothing happened".
	if f.Type = q.Get("type"); f.Type != "" && !slices.Contains(domain.EventTypes(), f.Type) {
		return f, badRequest("invalid_input", "type", "type %q is not an event type; one of %s", f.Type, strings.Join(domain.EventTypes(), ", "))
	}
	return f, nil
}

func (s *Server) audit(w nethttp.ResponseWriter, r *nethttp.Request) error {
	tenant := principal(r.Context()).TenantID
	f, err := s.auditFilter(r)
	if err != nil {
		return err
	}
	format := negotiate(r, "application/json", "application/x-ndjson", "application/ndjson", "text/csv")
	ndjson := format == "application/x-ndjson" || format == "application/ndjson"
	switch r.URL.Query().Get("proofs") {
	case "", "false":
	case "true":
		if !ndjson {
			return badRequest("invalid_input", "proofs", "proofs=true is an NDJSON export: send Accept: application/x-ndjson")
		}
		return s.auditWithProofs(w, r, tenant, f)
	default:
		return badRequest("invalid_input", "proofs", "proofs must be true or false")
	}
	switch {
	case ndjson:
		return s.stream(w, r, exportHeader("application/x-ndjson", ""), func(out io.Writer) error {
			enc := json.NewEncoder(out)
			return s.q.EachAudit(r.Context(), tenant, f, func(e projections.AuditEntry) error { return enc.Encode(e) })
		})
	case format == "text/csv":
		header := []string{"position", "type", "at", "actor_user_id", "actor_name", "correlation_id", "customer_id", "data"}
		return s.csvExport(w, r, "audit.csv", header, func(row func(cells ...string) error) error {
			return s.q.EachAudit(r.Context(), tenant, f, func(e projections.AuditEntry) error {
				return row(strconv.FormatInt(e.Position, 10), e.Type, e.At.UTC().Format(time.RFC3339Nano),
					e.Actor.UserID, e.Actor.Name, e.CorrelationID, e.CustomerID, string(e.Data))
			})
		})
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	pg, err := s.q.Audit(r.Context(), tenant, f, limit, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	pg.Items = nonNil(pg.Items)
	writeJSON(w, nethttp.StatusOK, pg)
	return nil
}

// auditProofBatch is how many events of an export with proofs are read
// back from the event store at once.
const auditProofBatch = 500

// auditWithProofs streams the audit export with proofs (docs/API.md, "The
// ledger log"): the checkpoint first, then each event of its tree that f
// selects with its leaf index, hash, hashed bytes and inclusion proof.
// Events after the checkpoint are left out: nothing proves them yet.
func (s *Server) auditWithProofs(w nethttp.ResponseWriter, r *nethttp.Request, tenant string, f projections.AuditFilter) error {
	l, err := s.ledgerOr404()
	if err != nil {
		return err
	}
	ctx := r.Context()
	cp, err := l.Latest(ctx, tenant)
	if err != nil {
		return err
	}
	return s.stream(w, r, exportHeader("application/x-ndjson", ""), func(out io.Writer) error {
		enc := json.NewEncoder(out)
		if err := enc.Encode(ledgerlog.ExportHeader{Signed: cp, Complete: f == projections.AuditFilter{}}); err != nil {
			return err
		}
		var batch []projections.AuditEntry
		flush := func() error {
			positions := make([]int64, len(batch))
			for i, e := range batch {
				positions[i] = e.Position
			}
			hashed, err := s.store.HashedOf(ctx, tenant, positions)
			if err != nil {
				return err
			}
			for _, e := range batch {
				h, ok := hashed[e.Position]
				if !ok {
					return fmt.Errorf("audit export: event %d not in the event store", e.Position)
				}
				p, err := l.Inclusion(ctx, tenant, *e.LeafIndex, cp.TreeSize)
				if err != nil {
					return err
				}
				actor, err := json.Marshal(e.Actor)
				if err != nil {
					return err
				}
				if err := enc.Encode(ledgerlog.ExportLine{
					Position: e.Position, StreamID: e.StreamID, Version: e.Version, Type: e.Type, At: e.At,
					Actor: actor, CorrelationID: e.CorrelationID, Data: e.Data, Erased: e.Erased, LeafIndex: *e.LeafIndex,
					Hash: base64.StdEncoding.EncodeToString(h.Hash), Hashed: base64.StdEncoding.EncodeToString(h.Bytes),
					Inclusion: p.Hashes,
				}); err != nil {
					return err
				}
			}
			batch = batch[:0]
			return nil
		}
		err := s.q.EachAudit(ctx, tenant, f, func(e projections.AuditEntry) error {
			if e.LeafIndex == nil || *e.LeafIndex >= cp.TreeSize {
				return nil
			}
			batch = append(batch, e)
			if len(batch) == auditProofBatch {
				return flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return flush()
	})
}
