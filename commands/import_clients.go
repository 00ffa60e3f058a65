package commands

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// MaxImportRows bounds one import file.
const MaxImportRows = 100_000

// importHeader is the header row of the template. Files may order these
// columns as they like, in any case, and leave out all but Email.
var importHeader = []string{"First Name", "Last Name", "Email", "Phone Number", "Team"}

// importColumnNames are the columns a file may have: the template's, and
// the optional Title (contract v2), kept out of the template so that its
// header row stays as the contract shows it.
var importColumnNames = append(slices.Clone(importHeader), "Title")

// Column indexes into importColumnNames.
const (
	colFirstName = iota
	colLastName
	colEmail
	colPhone
	colTeam
	colTitle
)

// ImportOptions are the query options of an import.
type ImportOptions struct {
	// DryRun reports without writing.
	DryRun bool
	// UpdateExisting updates the names of clients whose email exists;
	// without it such rows are left alone and counted as unchanged.
	UpdateExisting bool
	// Invite creates the new clients as invited and e-mails each its
	// invitation (ErrEmailNotConfigured without e-mail).
	Invite bool
}

// ImportInvitation is one client an import invited. Token is the raw
// invitation token (HTTP makes the link); it is not stored, so a replayed
// report has none.
type ImportInvitation struct {
	Row        int    `json:"row"`
	CustomerID string `json:"customer_id"`
	Token      string `json:"-"`
}

// ImportRowError is why one row cannot be imported; Row 1 is the first
// data row.
type ImportRowError struct {
	Row   int    `json:"row"`
	Error string `json:"error"`
}

// ImportReport is what an import did (or would do).
type ImportReport struct {
	Created   int              `json:"created"`
	Updated   int              `json:"updated"`
	Unchanged int              `json:"unchanged"`
	Errors    []ImportRowError `json:"errors"`
	// Invitations lists the clients invited (with ImportOptions.Invite).
	Invitations []ImportInvitation `json:"invitations,omitempty"`
	Position    int64              `json:"position"`
	// Replayed is true when this is the stored report of an earlier
	// request with the same idempotency key.
	Replayed bool `json:"-"`
}

func (r *ImportReport) markReplayed() { r.Replayed = true }

// ImportTemplate is the CSV a user fills in: the header row and one
// example row.
func (c *Commands) ImportTemplate() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(importHeader)
	_ = w.Write([]string{"Ada", "Lovelace", "ada@example.com", "+44 20 7946 0000", "alice@yourteam.example;bob@yourteam.example"})
	w.Flush()
	return b.Bytes()
}

type importRow struct {
	n       int
	profile domain.Profile
	team    []string // normalized emails, in order
	// hasTitle is true when the file has a Title column: update_existing
	// then updates the title too.
	hasTitle bool
}

// ImportClients imports clients from CSV (admin only): rows whose email is
// new become active customers (CustomerRegistered, then UserAssigned for
// each Team member under the usual rules, the first being lead under
// require_lead); rows whose email exists are, with UpdateExisting, given
// the row's first and last name (CustomerUpdated, or unchanged when they
// are the same), and otherwise counted unchanged (their Team column is not
// applied to existing clients). Any bad row rejects the whole file with an
// *ImportRejectedError listing every bad row; otherwise everything is
// appended in one transaction under one correlation ID.
//
// Columns are matched by header name, in any order, case-insensitively (a
// UTF-8 BOM is allowed); a header without Email or with an unknown or
// repeated column, malformed CSV, or more than MaxImportRows rows is a
// *domain.ValidationError.
func (c *Commands) ImportClients(ctx context.Context, m Meta, r io.Reader, opts ImportOptions) (ImportReport, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return ImportReport{}, err
	}
	if opts.Invite && !c.email {
		return ImportReport{}, ErrEmailNotConfigured
	}
	m, err := m.prepare()
	if err != nil {
		return ImportReport{}, err
	}
	if opts.DryRun {
		m.IdempotencyKey = ""
	}
	rows, parseErrors, err := parseImport(r)
	if err != nil {
		return ImportReport{}, err
	}
	return idempotent(ctx, c, m, func(idem *eventstore.Idempotency, replay *[]byte) (ImportReport, error) {
		var report ImportReport
		err := c.withRetry(ctx, "ImportClients", false, func() error {
			return c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
				var err error
				report, err = c.importIn(ctx, tx, m, rows, parseErrors, opts, idem, replay)
				return err
			})
		})
		return report, err
	})
}

func (c *Commands) importIn(ctx context.Context, tx *eventstore.Tx, m Meta, rows []importRow, parseErrors []ImportRowError,
	opts ImportOptions, idem *eventstore.Idempotency, replay *[]byte) (ImportReport, error) {
	report := ImportReport{Errors: slices.Clone(parseErrors)}
	rowError := func(n int, format string, args ...any) {
		report.Errors = append(report.Errors, ImportRowError{Row: n, Error: fmt.Sprintf(format, args...)})
	}

	// Duplicates inside the file.
	firstRow := map[string]int{}
	var unique []importRow
	for _, row := range rows {
		if first, dup := firstRow[row.profile.Email]; dup {
			rowError(row.n, "email %s is also on row %d", row.profile.Email, first)
			continue
		}
		firstRow[row.profile.Email] = row.n
		unique = append(unique, row)
	}

	userMode, customerMode := forShare, forUpdate
	if opts.DryRun {
		userMode, customerMode = noLock, noLock
	}
	var teamEmails []string
	for _, row := range unique {
		teamEmails = append(teamEmails, row.team...)
	}
	members, err := usersByEmail(ctx, tx, m.TenantID, sortedUnique(teamEmails), userMode)
	if err != nil {
		return ImportReport{}, err
	}
	existing, err := c.customersByEmail(ctx, tx, m.TenantID, slices.Collect(maps.Keys(firstRow)))
	if err != nil {
		return ImportReport{}, err
	}
	var toUpdate []string
	if opts.UpdateExisting {
		toUpdate = slices.Sorted(maps.Values(existing))
	}
	versions, err := lockCustomers(ctx, tx, m.TenantID, toUpdate, customerMode)
	if err != nil {
		return ImportReport{}, err
	}
	l, err := loadCustomers(ctx, c.keys, tx, m.TenantID, slices.Sorted(maps.Keys(versions)))
	if err != nil {
		return ImportReport{}, err
	}
	oldKeys, err := c.keys.Load(ctx, tx, slices.Sorted(maps.Keys(versions)))
	if err != nil {
		return ImportReport{}, err
	}
	var newKeys []keyring.DataKey

	var (
		streams []eventstore.StreamWrite
		claims  []eventstore.Claim
		outbox  []eventstore.OutboxMessage
		invited struct {
			ids    []string
			hashes [][]byte
		}
		at = now()
	)
	// By claim value (an HMAC): the row and e-mail of a claim taken meanwhile.
	emailRow, claimEmail := map[string]int{}, map[string]string{}
	for _, row := range unique {
		if id, ok := existing[row.profile.Email]; ok {
			if !opts.UpdateExisting {
				report.Unchanged++
				continue
			}
			cu, ok := l.customers[id]
			if !ok { // cannot happen: a claim commits with its customer
				return ImportReport{}, fmt.Errorf("email %s is claimed by customer %s, which does not exist", row.profile.Email, id)
			}
			p := cu.Profile
			p.FirstName, p.LastName = row.profile.FirstName, row.profile.LastName
			if row.hasTitle {
				p.Title = row.profile.Title
			}
			events, err := cu.UpdateProfile(p)
			if err != nil {
				rowError(row.n, "%s", err.Error())
				continue
			}
			if len(events) == 0 {
				report.Unchanged++
				continue
			}
			data, err := encodeSealed(events, oldKeys[id])
			if err != nil {
				return ImportReport{}, err
			}
			streams = append(streams, eventstore.StreamWrite{StreamID: id, StreamType: streamCustomer, ExpectedVersion: versions[id], Events: data})
			report.Updated++
			continue
		}

		team := make([]domain.User, 0, len(row.team))
		var bad string
		for _, email := range row.team {
			u, ok := members[email]
			if !ok {
				bad = fmt.Sprintf("team member %s is not a user of this tenant", email)
				break
			}
			team = append(team, u)
		}
		if bad != "" {
			rowError(row.n, "%s", bad)
			continue
		}
		id := newID()
		var events []domain.Event
		if opts.Invite {
			events, err = domain.InviteClient(id, row.profile, team, l.policy)
		} else {
			events, err = domain.RegisterCustomer(id, m.TenantID, row.profile, team, l.policy)
		}
		if err != nil {
			rowError(row.n, "%s", rowRuleError(err, team))
			continue
		}
		cu := domain.Customer{TenantID: m.TenantID}
		for _, e := range events {
			cu.Apply(e, at)
		}
		data, dk, err := c.sealNew(id, events)
		if err != nil {
			return ImportReport{}, err
		}
		newKeys = append(newKeys, dk)
		if opts.Invite && !opts.DryRun {
			token, hash := randomToken()
			users := make(map[string]domain.User, len(team))
			for _, u := range team {
				users[u.ID] = u
			}
			msg, err := invitationEmail(cu, token, users)
			if err != nil {
				return ImportReport{}, err
			}
			outbox = append(outbox, msg)
			invited.ids = append(invited.ids, id)
			invited.hashes = append(invited.hashes, hash)
			report.Invitations = append(report.Invitations, ImportInvitation{Row: row.n, CustomerID: id, Token: token})
		}
		streams = append(streams, eventstore.StreamWrite{StreamID: id, StreamType: streamCustomer, ExpectedVersion: eventstore.NoStream, Events: data})
		claims = append(claims, c.profileClaims(id, cu.Profile)...)
		emailRow[c.keys.ClaimValue(claimCustomerEmail, cu.Profile.Email)] = row.n
		claimEmail[c.keys.ClaimValue(claimCustomerEmail, cu.Profile.Email)] = cu.Profile.Email
		report.Created++
	}

	sort.SliceStable(report.Errors, func(i, j int) bool { return report.Errors[i].Row < report.Errors[j].Row })
	if len(report.Errors) > 0 {
		return ImportReport{}, &ImportRejectedError{Report: report}
	}
	report.Errors = []ImportRowError{}
	if opts.DryRun || (len(streams) == 0 && idem == nil) {
		return report, nil
	}
	// Claims in a fixed order, so two imports sharing emails cannot deadlock.
	sort.Slice(claims, func(i, j int) bool {
		if claims[i].Kind != claims[j].Kind {
			return claims[i].Kind < claims[j].Kind
		}
		return claims[i].Value < claims[j].Value
	})
	side := func(ctx context.Context, tx execer) error {
		if len(invited.ids) > 0 {
			if _, err := tx.Exec(ctx, qInsertInvitations, m.TenantID, invited.ids, invited.hashes, at); err != nil {
				return fmt.Errorf("record invitations: %w", err)
			}
		}
		return keyring.Store(ctx, tx, m.TenantID, newKeys)
	}
	if err := side(ctx, tx); err != nil {
		return ImportReport{}, err
	}
	res, err := appendOrReplay(ctx, tx, eventstore.AppendRequest{
		TenantID:    m.TenantID,
		Streams:     streams,
		Claims:      claims,
		Outbox:      outbox,
		Metadata:    m.metadata(),
		Idempotency: withIdempotency(idem, &report, func(p int64) { report.Position = p }),
		Now:         at,
	}, replay)
	var taken *eventstore.ClaimTakenError
	if errors.As(err, &taken) {
		// A client with this email was registered while the file was read.
		report.Errors = []ImportRowError{{Row: emailRow[taken.Value], Error: "email " + claimEmail[taken.Value] + " already exists"}}
		return ImportReport{}, &ImportRejectedError{Report: report}
	}
	if err != nil {
		return ImportReport{}, err
	}
	report.Position = res.Position
	return report, nil
}

// qInsertInvitations records an import's invitations (token hashes only).
const qInsertInvitations = `INSERT INTO invitations (token_hash, tenant_id, customer_id, created_at)
SELECT h, $1, c, $4 FROM unnest($2::text[]::uuid[], $3::bytea[]) AS u(c, h)`

// rowRuleError describes why a row's customer cannot be created, naming team
// members by the email the file gave rather than by their user ID.
func rowRuleError(err error, team []domain.User) string {
	var re *domain.RuleError
	if !errors.As(err, &re) {
		return err.Error()
	}
	detail := re.Detail
	for _, u := range team {
		detail = strings.ReplaceAll(detail, "user "+u.ID, "team member "+u.Email)
	}
	return re.Code + ": " + detail
}

// parseImport reads the CSV. Row-level problems are returned as row errors;
// a bad header or malformed CSV is a ValidationError.
func parseImport(r io.Reader) ([]importRow, []ImportRowError, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, &domain.ValidationError{Field: "file", Detail: "is empty; the first row must be the header " + strings.Join(importHeader, ",")}
	}
	if err != nil {
		return nil, nil, &domain.ValidationError{Field: "file", Detail: "is not valid CSV: " + err.Error()}
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	cols, err := importColumns(header)
	if err != nil {
		return nil, nil, err
	}
	field := func(rec []string, col int) string {
		if cols[col] < 0 {
			return ""
		}
		return rec[cols[col]]
	}
	var (
		rows []importRow
		errs []ImportRowError
	)
	for n := 1; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, &domain.ValidationError{Field: "file", Detail: "is not valid CSV: " + err.Error()}
		}
		if n > MaxImportRows {
			return nil, nil, &domain.ValidationError{Field: "file", Detail: fmt.Sprintf("has more than %d rows", MaxImportRows)}
		}
		if len(rec) != len(header) {
			errs = append(errs, ImportRowError{Row: n, Error: fmt.Sprintf("has %d fields, want %d", len(rec), len(header))})
			continue
		}
		p, err := domain.NormalizeProfile(domain.Profile{FirstName: field(rec, colFirstName), LastName: field(rec, colLastName),
			Email: field(rec, colEmail), Phone: field(rec, colPhone), Title: field(rec, colTitle)})
		if err != nil {
			errs = append(errs, ImportRowError{Row: n, Error: err.Error()})
			continue
		}
		if p.Email == "" {
			errs = append(errs, ImportRowError{Row: n, Error: "Email is required"})
			continue
		}
		row := importRow{n: n, profile: p, hasTitle: cols[colTitle] >= 0}
		seen := map[string]bool{}
		var bad string
		for _, raw := range strings.Split(field(rec, colTeam), ";") {
			if strings.TrimSpace(raw) == "" {
				continue
			}
			email, err := domain.NormalizeEmail(raw)
			if err != nil {
				bad = fmt.Sprintf("team member %q is not a valid email address", strings.TrimSpace(raw))
				break
			}
			if seen[email] {
				bad = fmt.Sprintf("team member %s is listed twice", email)
				break
			}
			seen[email] = true
			row.team = append(row.team, email)
		}
		if bad != "" {
			errs = append(errs, ImportRowError{Row: n, Error: bad})
			continue
		}
		rows = append(rows, row)
	}
	return rows, errs, nil
}

// importColumns maps each column of importColumnNames to its index in
// header (-1 when absent), matching names case-insensitively and in any
// order (the contract's v2). Email is required; an unknown or repeated
// column is an error rather than data silently dropped.
func importColumns(header []string) ([]int, error) {
	cols := make([]int, len(importColumnNames))
	for i := range cols {
		cols[i] = -1
	}
	for i, name := range header {
		name = strings.TrimSpace(name)
		j := slices.IndexFunc(importColumnNames, func(h string) bool { return strings.EqualFold(h, name) })
		switch {
		case j < 0:
			return nil, &domain.ValidationError{Field: "file", Detail: fmt.Sprintf("unknown column %q; the columns are %s", name, strings.Join(importColumnNames, ","))}
		case cols[j] >= 0:
			return nil, &domain.ValidationError{Field: "file", Detail: fmt.Sprintf("column %q appears twice", importColumnNames[j])}
		}
		cols[j] = i
	}
	if cols[colEmail] < 0 {
		return nil, &domain.ValidationError{Field: "file", Detail: "the header row has no Email column; the columns are " + strings.Join(importHeader, ",")}
	}
	return cols, nil
}

// usersByEmail reads (and locks, in ID order) the tenant's users with the
// given emails, by email.
func usersByEmail(ctx context.Context, q querier, tenantID string, emails []string, mode lockMode) (map[string]domain.User, error) {
	out := make(map[string]domain.User, len(emails))
	if len(emails) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT `+userColumns+` FROM users WHERE tenant_id = $1 AND email = ANY($2) ORDER BY id`+string(mode), tenantID, emails)
	if err != nil {
		return nil, fmt.Errorf("read team members: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("read team members: %w", err)
		}
		out[u.Email] = u
	}
	return out, rows.Err()
}

// customersByEmail maps the emails already claimed by customers to them.
func (c *Commands) customersByEmail(ctx context.Context, q querier, tenantID string, emails []string) (map[string]string, error) {
	out := make(map[string]string, len(emails))
	if len(emails) == 0 {
		return out, nil
	}
	// Claims hold HMACs of the e-mails (see profileClaims).
	byClaim := make(map[string]string, len(emails))
	claimed := make([]string, len(emails))
	for i, e := range emails {
		claimed[i] = c.keys.ClaimValue(claimCustomerEmail, e)
		byClaim[claimed[i]] = e
	}
	rows, err := q.Query(ctx, `SELECT value, owner_id::text FROM unique_claims WHERE tenant_id = $1 AND kind = '`+claimCustomerEmail+`' AND value = ANY($2)`,
		tenantID, claimed)
	if err != nil {
		return nil, fmt.Errorf("find existing clients: %w", err)
	}
	type kv struct{ email, id string }
	pairs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kv, error) {
		var p kv
		return p, r.Scan(&p.email, &p.id)
	})
	if err != nil {
		return nil, fmt.Errorf("find existing clients: %w", err)
	}
	for _, p := range pairs {
		out[byClaim[p.email]] = p.id
	}
	return out, nil
}
