package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

func runHistory(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "history", "history --tenant ID --customer ID [--as-of RFC3339] [--json]",
		"Replays a customer's stream from the event store itself (not from a projection) and prints\n"+
			"its assignment history, or with --as-of the team exactly as it stood at that moment.")
	tenant := fs.String("tenant", "", "tenant ID (required)")
	customer := fs.String("customer", "", "customer ID (required)")
	asOfRaw := fs.String("as-of", "", "a moment, RFC 3339 (e.g. 2026-03-03T12:00:00Z)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parse(fs, args); err != nil {
		return err
	}
	for _, f := range []struct{ flag, value, hint string }{
		{"--tenant", *tenant, "`ledger tenants` lists the tenants and their IDs"},
		{"--customer", *customer, "the customer's \"id\" in the API, e.g. GET /v1/customers"},
	} {
		if f.value == "" {
			fmt.Fprintf(env.stderr, "%s is required (%s)\n", f.flag, f.hint)
			return errUsage
		}
		if _, err := uuid.Parse(f.value); err != nil {
			fmt.Fprintf(env.stderr, "%s must be a UUID (got %q; %s)\n", f.flag, f.value, f.hint)
			return errUsage
		}
	}
	var asOf *time.Time
	if *asOfRaw != "" {
		t, err := time.Parse(time.RFC3339Nano, *asOfRaw)
		if err != nil {
			fmt.Fprintf(env.stderr, "--as-of must be an RFC 3339 time such as 2026-03-03T12:00:00Z (got %q)\n", *asOfRaw)
			return errUsage
		}
		t = t.UTC()
		asOf = &t
	}
	cfg, pool, log, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	keys, err := cfg.Keyring(log)
	if err != nil {
		return err
	}
	h, err := replayHistory(ctx, eventstore.New(pool), keys, *tenant, *customer, asOf)
	if err != nil {
		return err
	}
	if *asJSON {
		out, err := json.MarshalIndent(h, "", "  ")
		if err != nil {
			return fmt.Errorf("encode history: %w", err)
		}
		_, err = env.stdout.Write(append(escapeJSONControls(out), '\n'))
		return err
	}
	h.print(env.stdout)
	return nil
}

// termSafe makes text from the event store safe to print on a terminal:
// every control character (C0, DEL, C1) becomes a visible Go-style escape
// (\x1b, \u009b), so a name stored before control characters were refused
// cannot move the cursor, set the terminal's title or ring its bell, nor a
// tab shift the table's columns. A backslash is doubled, so the escapes
// cannot be forged.
func termSafe(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == '\\' || unsafeOnTerminal(r) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeOnTerminal(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// unsafeOnTerminal reports whether r changes what a terminal shows rather
// than shows itself: a control character (C0, DEL, C1), a line or
// paragraph separator, or a bidirectional control (which reorders the
// text after it), refused in names since (domain) but perhaps stored before.
func unsafeOnTerminal(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || domain.BidiControl(r)
}

// escapeJSONControls escapes what encoding/json leaves raw but a terminal
// would obey: DEL, the C1 controls (U+0080–U+009F, e.g. U+009B, CSI) and
// the bidirectional controls. They can only stand inside JSON strings,
// where \u escapes mean the same.
func escapeJSONControls(b []byte) []byte {
	unsafe := func(r rune) bool { return (r >= 0x7f && r <= 0x9f) || domain.BidiControl(r) }
	if !bytes.ContainsFunc(b, unsafe) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if unsafe(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

// history is what `ledger history` prints.
type history struct {
	TenantID   string         `json:"tenant_id"`
	CustomerID string         `json:"customer_id"`
	AsOf       *time.Time     `json:"as_of,omitempty"`
	Events     []historyEntry `json:"events,omitempty"`
	Team       []teamMember   `json:"team"`
	// Existed is false when AsOf is before the customer was registered.
	Existed bool `json:"existed"`
}

type historyEntry struct {
	Position      int64     `json:"position"`
	At            time.Time `json:"at"`
	Type          string    `json:"type"`
	Summary       string    `json:"summary"`
	ActorName     string    `json:"actor_name"`
	ActorUserID   string    `json:"actor_user_id"`
	CorrelationID string    `json:"correlation_id"`
}

type teamMember struct {
	UserID     string    `json:"user_id"`
	Name       string    `json:"name"`
	Lead       bool      `json:"lead"`
	AssignedAt time.Time `json:"assigned_at"`
}

// replayHistory folds the customer's events with the domain's own Apply, up
// to asOf when given, so the answer is the event store's, not a read model's.
func replayHistory(ctx context.Context, store *eventstore.Store, keys *keyring.Keyring, tenantID, customerID string, asOf *time.Time) (history, error) {
	events, err := store.ReadStream(ctx, tenantID, customerID)
	if err != nil {
		return history{}, err
	}
	if len(events) == 0 || (events[0].Type != domain.TypeCustomerRegistered && events[0].Type != domain.TypeClientInvited) {
		return history{}, fmt.Errorf("tenant %s has no customer %s", tenantID, customerID)
	}
	// An erased customer's sealed events open to its ID alone.
	if _, err := keys.OpenStream(ctx, store.Pool(), customerID, events); err != nil {
		return history{}, err
	}
	h := history{TenantID: tenantID, CustomerID: customerID, AsOf: asOf}
	names := map[string]string{}
	name := func(userID string) string {
		if n, ok := names[userID]; ok {
			return n
		}
		n := userID
		if userEvents, err := store.ReadStream(ctx, tenantID, userID); err == nil {
			for _, ue := range userEvents {
				if d, err := domain.DecodeEvent(ue.Type, ue.SchemaVersion, ue.Data); err == nil {
					if uc, ok := d.(domain.UserCreated); ok {
						n = uc.Name
					}
				}
			}
		}
		names[userID] = n
		return n
	}
	var c domain.Customer
	for _, e := range events {
		if asOf != nil && e.RecordedAt.After(*asOf) {
			break
		}
		ev, err := domain.DecodeEvent(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return history{}, fmt.Errorf("event %d: %w", e.Position, err)
		}
		c.Apply(ev, e.RecordedAt)
		h.Existed = true
		h.Events = append(h.Events, historyEntry{
			Position: e.Position, At: e.RecordedAt, Type: e.Type, Summary: summarize(ev, name),
			ActorName: e.Metadata.Actor.Name, ActorUserID: e.Metadata.Actor.UserID, CorrelationID: e.Metadata.CorrelationID,
		})
	}
	for _, m := range c.Team {
		h.Team = append(h.Team, teamMember{UserID: m.UserID, Name: name(m.UserID), Lead: m.Lead, AssignedAt: m.AssignedAt})
	}
	if h.Team == nil {
		h.Team = []teamMember{}
	}
	return h, nil
}

// personName is a profile's name, or "(erased)" once its key is destroyed.
func personName(p domain.Profile) string {
	if p.Erased {
		return "(erased)"
	}
	return p.FirstName + " " + p.LastName
}

func summarize(e domain.Event, name func(string) string) string {
	switch e := e.(type) {
	case domain.UserAssigned:
		if e.Lead {
			return name(e.UserID) + " assigned as lead"
		}
		return name(e.UserID) + " assigned"
	case domain.UserUnassigned:
		return name(e.UserID) + " unassigned"
	case domain.TeamLeadChanged:
		if e.PreviousUserID == "" {
			return name(e.UserID) + " made lead"
		}
		return name(e.UserID) + " made lead instead of " + name(e.PreviousUserID)
	case domain.TeamMemberReplaced:
		return name(e.UserID) + " replaced by " + name(e.WithUserID)
	case domain.CustomerRegistered:
		return "registered " + personName(e.Profile)
	case domain.ClientInvited:
		return "invited " + personName(e.Profile)
	case domain.CustomerErased:
		return "erased (personal data destroyed)"
	case domain.CustomerUpdated:
		return "profile updated"
	case domain.InvitationAccepted:
		return "invitation accepted"
	case domain.InvitationEmailed:
		return "invitation e-mail " + e.Outcome
	case domain.CustomerMessaged:
		if e.Outcome == "" {
			return "messaged (" + e.MessageID + ")"
		}
		return "message e-mail " + e.Outcome + " (" + e.MessageID + ")"
	case domain.CustomerBlocked:
		return "blocked"
	case domain.CustomerUnblocked:
		return "unblocked"
	}
	return e.EventType()
}

func (h history) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	if h.AsOf != nil && !h.Existed {
		fmt.Fprintf(tw, "Customer %s did not exist yet at %s.\n", h.CustomerID, h.AsOf.Format(time.RFC3339Nano))
		return
	}
	// The events up to the moment asked about (all of them without --as-of),
	// as --json lists them.
	fmt.Fprintln(tw, "POSITION\tAT\tEVENT\tWHAT\tBY")
	for _, e := range h.Events {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Position, e.At.Format(time.RFC3339Nano), termSafe(e.Type), termSafe(e.Summary), termSafe(e.ActorName))
	}
	fmt.Fprintln(tw)
	if h.AsOf == nil {
		fmt.Fprintln(tw, "Team now:")
	} else {
		fmt.Fprintf(tw, "Team as of %s:\n", h.AsOf.Format(time.RFC3339Nano))
	}
	if len(h.Team) == 0 {
		fmt.Fprintln(tw, "  (nobody)")
	}
	for _, m := range h.Team {
		lead := ""
		if m.Lead {
			lead = "lead"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\tsince %s\n", termSafe(m.Name), m.UserID, lead, m.AssignedAt.Format(time.RFC3339Nano))
	}
}
