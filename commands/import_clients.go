package commands

import (
	"bufio"
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
	"time"

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

// importBatchRows is how many rows an import decides and appends at a time,
// inside its one transaction: what an import holds in memory is a batch,
// whatever the file's length (see ImportClients).
const importBatchRows = 1000

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
//
// The file is read row by row and decided importBatchRows at a time, each
// batch appended in the one transaction as it is decided (a later bad row
// rolls everything back): memory holds a batch, the e-mails seen so far
// (to name a duplicate's first row), the tenant's users named as team
// members, and the report, never the whole file's events. A retry of the
// transaction reads the file again from its start: r is read through once
// per attempt when it is an io.ReadSeeker, and read into memory first
// otherwise.
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
	src, ok := r.(io.ReadSeeker)
	if !ok {
		data, err := io.ReadAll(r)
		if err != nil {
			return ImportReport{}, fmt.Errorf("read the import: %w", err)
		}
		src = bytes.NewReader(data)
	}
	// A bad header is refused before anything else, as a whole file's
	// problem.
	if _, err := openImport(src); err != nil {
		return ImportReport{}, err
	}
	return idempotent(ctx, c, m, func(idem *eventstore.Idempotency, replay *[]byte) (ImportReport, error) {
		var report ImportReport
		err := c.withRetry(ctx, "ImportClients", false, func() error {
			return c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
				p, err := openImport(src)
				if err != nil {
					return err
				}
				report, err = c.importIn(ctx, tx, m, p, opts, idem, replay)
				return err
			})
		})
		return report, err
	})
}

// importer is one attempt at an import, batch by batch.
type importer struct {
	c    *Commands
	tx   *eventstore.Tx
	m    Meta
	opts ImportOptions
	at   time.Time

	report ImportReport
	// firstRow is the row of each e-mail seen so far: a later row with
	// the same e-mail is a duplicate.
	firstRow map[string]int
	// users are the tenant's users named as team members so far, by
	// e-mail (locked FOR SHARE when writing); strangers are e-mails that
	// name none.
	users     map[string]domain.User
	strangers map[string]bool
	policy    *domain.Policy
	// loads counts the customers of the team members named so far, under
	// their capacity locks, when the policy caps customers per user.
	loads domain.Loads
	// rules chooses a team for rows without one (rule_apply.go).
	rules *ruleApplier
	// pending is the last batch decided with something to write: it is
	// appended when the next such batch is ready, or at the end with the
	// idempotency key, so that the key's record carries the import's last
	// position.
	pending *importWrite
}

// importWrite is what one batch appends.
type importWrite struct {
	streams []eventstore.StreamWrite
	claims  []eventstore.Claim
	outbox  []eventstore.OutboxMessage
	newKeys []keyring.DataKey
	invited struct {
		ids    []string
		hashes [][]byte
	}
	// By claim value (an HMAC): the row and e-mail of a claim taken meanwhile.
	emailRow   map[string]int
	claimEmail map[string]string
}

func (c *Commands) importIn(ctx context.Context, tx *eventstore.Tx, m Meta, p *importParser,
	opts ImportOptions, idem *eventstore.Idempotency, replay *[]byte) (ImportReport, error) {
	imp := &importer{c: c, tx: tx, m: m, opts: opts, at: now(), firstRow: map[string]int{},
		users: map[string]domain.User{}, strangers: map[string]bool{}}
	batch := make([]importRow, 0, importBatchRows)
	for {
		row, rowErr, err := p.next()
		if err != nil && !errors.Is(err, io.EOF) {
			return ImportReport{}, err
		}
		switch {
		case err != nil:
		case rowErr != nil:
			imp.report.Errors = append(imp.report.Errors, *rowErr)
		default:
			batch = append(batch, row)
		}
		if len(batch) == importBatchRows || (errors.Is(err, io.EOF) && len(batch) > 0) {
			if err := imp.decide(ctx, batch); err != nil {
				return ImportReport{}, err
			}
			batch = batch[:0]
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return imp.finish(ctx, idem, replay)
}

func (imp *importer) rowError(n int, format string, args ...any) {
	imp.report.Errors = append(imp.report.Errors, ImportRowError{Row: n, Error: fmt.Sprintf(format, args...)})
}

// decide decides a batch of rows and, while the file has no bad row and
// this is no dry run, appends the batch before it (see pending).
func (imp *importer) decide(ctx context.Context, rows []importRow) error {
	c, tx, m, opts := imp.c, imp.tx, imp.m, imp.opts
	// Duplicates inside the file.
	var unique []importRow
	for _, row := range rows {
		if first, dup := imp.firstRow[row.profile.Email]; dup {
			imp.rowError(row.n, "email %s is also on row %d", row.profile.Email, first)
			continue
		}
		imp.firstRow[row.profile.Email] = row.n
		unique = append(unique, row)
	}

	userMode, customerMode := forShare, forUpdate
	if opts.DryRun {
		userMode, customerMode = noLock, noLock
	}
	var newTeam []string
	for _, row := range unique {
		for _, email := range row.team {
			if _, known := imp.users[email]; !known && !imp.strangers[email] {
				newTeam = append(newTeam, email)
			}
		}
	}
	newTeam = sortedUnique(newTeam)
	members, err := usersByEmail(ctx, tx, m.TenantID, newTeam, userMode)
	if err != nil {
		return err
	}
	for _, email := range newTeam {
		if u, ok := members[email]; ok {
			imp.users[email] = u
		} else {
			imp.strangers[email] = true
		}
	}
	emails := make([]string, len(unique))
	for i, row := range unique {
		emails[i] = row.profile.Email
	}
	// An e-mail of this batch is new to the file (firstRow), so a claim on
	// it is a client that existed before the import.
	existing, err := c.customersByEmail(ctx, tx, m.TenantID, emails)
	if err != nil {
		return err
	}
	var toUpdate []string
	if opts.UpdateExisting {
		toUpdate = slices.Sorted(maps.Values(existing))
	}
	versions, err := lockCustomers(ctx, tx, m.TenantID, toUpdate, customerMode)
	if err != nil {
		return err
	}
	ids := slices.Sorted(maps.Keys(versions))
	var l loaded
	if len(ids) > 0 || imp.policy == nil {
		if l, err = loadCustomers(ctx, c.keys, tx, m.TenantID, ids); err != nil {
			return err
		}
		if imp.policy == nil {
			imp.policy = &l.policy
		}
	}
	oldKeys, err := c.keys.Load(ctx, tx, ids)
	if err != nil {
		return err
	}
	if err := imp.loadCapacity(ctx, unique); err != nil {
		return err
	}

	w := &importWrite{emailRow: map[string]int{}, claimEmail: map[string]string{}}
	for _, row := range unique {
		if id, ok := existing[row.profile.Email]; ok {
			if !opts.UpdateExisting {
				imp.report.Unchanged++
				continue
			}
			cu, ok := l.customers[id]
			if !ok { // cannot happen: a claim commits with its customer
				return fmt.Errorf("email %s is claimed by customer %s, which does not exist", row.profile.Email, id)
			}
			p := cu.Profile
			p.FirstName, p.LastName = row.profile.FirstName, row.profile.LastName
			if row.hasTitle {
				p.Title = row.profile.Title
			}
			events, err := cu.UpdateProfile(p)
			if err != nil {
				imp.rowError(row.n, "%s", err.Error())
				continue
			}
			if len(events) == 0 {
				imp.report.Unchanged++
				continue
			}
			data, err := encodeSealed(events, oldKeys[id])
			if err != nil {
				return err
			}
			w.streams = append(w.streams, eventstore.StreamWrite{StreamID: id, StreamType: streamCustomer, ExpectedVersion: versions[id], Events: data})
			imp.report.Updated++
			continue
		}

		team := make([]domain.User, 0, len(row.team))
		var bad string
		for _, email := range row.team {
			u, ok := imp.users[email]
			if !ok {
				bad = fmt.Sprintf("team member %s is not a user of this tenant", email)
				break
			}
			team = append(team, u)
		}
		if bad != "" {
			imp.rowError(row.n, "%s", bad)
			continue
		}
		id := newID()
		decide := func(team []domain.User, pol domain.Policy) ([]domain.Event, error) {
			if opts.Invite {
				return domain.InviteClient(id, row.profile, team, pol)
			}
			return domain.RegisterCustomer(id, m.TenantID, row.profile, team, pol)
		}
		var pick rulePick
		if len(team) == 0 {
			if imp.rules == nil {
				imp.rules = c.newRuleApplier(tx, m.TenantID, *imp.policy, !opts.DryRun, imp.at)
			}
			if team, pick, err = imp.rules.ruleMembers(ctx, decide); err != nil {
				var re *domain.RuleError
				if errors.As(err, &re) {
					imp.rowError(row.n, "%s", rowRuleError(err, team))
					continue
				}
				return err
			}
		}
		events, err := decide(team, *imp.policy)
		if err != nil {
			imp.rowError(row.n, "%s", rowRuleError(err, team))
			continue
		}
		tagRule(events, pick)
		if pick.User != "" {
			if _, counted := imp.loads[pick.User]; counted {
				imp.loads[pick.User]++
			}
		} else if imp.policy.Capped() {
			cu := domain.Customer{TenantID: m.TenantID}
			for _, e := range events {
				cu.Apply(e, imp.at)
			}
			if err := imp.policy.CheckCapacity(imp.loads, domain.Customer{}, cu); err != nil {
				imp.rowError(row.n, "%s", rowRuleError(err, team))
				continue
			}
			imp.loads.Move(domain.Customer{}, cu)
			if imp.rules != nil {
				for _, u := range team {
					imp.rules.noteAssigned(u.ID)
				}
			}
		}
		imp.report.Created++
		if len(imp.report.Errors) > 0 {
			continue // nothing will be written: only the counts matter now
		}
		cu := domain.Customer{TenantID: m.TenantID}
		for _, e := range events {
			cu.Apply(e, imp.at)
		}
		data, dk, err := c.sealNew(id, events)
		if err != nil {
			return err
		}
		w.newKeys = append(w.newKeys, dk)
		if opts.Invite && !opts.DryRun {
			token, hash := randomToken()
			users := make(map[string]domain.User, len(team))
			for _, u := range team {
				users[u.ID] = u
			}
			msg, err := invitationEmail(cu, token, users, dk)
			if err != nil {
				return err
			}
			w.outbox = append(w.outbox, msg)
			w.invited.ids = append(w.invited.ids, id)
			w.invited.hashes = append(w.invited.hashes, hash)
			imp.report.Invitations = append(imp.report.Invitations, ImportInvitation{Row: row.n, CustomerID: id, Token: token})
		}
		w.streams = append(w.streams, eventstore.StreamWrite{StreamID: id, StreamType: streamCustomer, ExpectedVersion: eventstore.NoStream, Events: data})
		w.claims = append(w.claims, c.profileClaims(id, cu.Profile)...)
		claim := c.keys.ClaimValue(claimCustomerEmail, cu.Profile.Email)
		w.emailRow[claim], w.claimEmail[claim] = row.n, cu.Profile.Email
	}
	if opts.DryRun || len(imp.report.Errors) > 0 || len(w.streams) == 0 {
		return nil // a file with a bad row writes nothing: it is rolled back
	}
	if imp.rules != nil {
		// The rules' turns of this batch, appended with its customers.
		ruleStreams, err := imp.rules.streams()
		if err != nil {
			return err
		}
		w.streams = append(w.streams, ruleStreams...)
	}
	if imp.pending != nil {
		if err := imp.write(ctx, imp.pending, nil, nil); err != nil {
			return err
		}
	}
	imp.pending = w
	return nil
}

// loadCapacity counts, under their capacity locks (none for a dry run),
// the customers of the team members of rows not counted yet, when the
// policy caps customers per user.
func (imp *importer) loadCapacity(ctx context.Context, rows []importRow) error {
	if imp.policy == nil || !imp.policy.Capped() {
		return nil
	}
	if imp.loads == nil {
		imp.loads = domain.Loads{}
	}
	var ids []string
	for _, row := range rows {
		for _, email := range row.team {
			if u, ok := imp.users[email]; ok {
				if _, counted := imp.loads[u.ID]; !counted {
					ids = append(ids, u.ID)
				}
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	loads, err := userLoads(ctx, imp.c.keys, imp.tx, imp.m.TenantID, sortedUnique(ids), !imp.opts.DryRun)
	if err != nil {
		return err
	}
	for _, id := range sortedUnique(ids) {
		imp.loads[id] = loads[id]
	}
	return nil
}

// finish ends the import: the report of every bad row, or the last batch
// appended with the idempotency key.
func (imp *importer) finish(ctx context.Context, idem *eventstore.Idempotency, replay *[]byte) (ImportReport, error) {
	report := imp.report
	sort.SliceStable(report.Errors, func(i, j int) bool { return report.Errors[i].Row < report.Errors[j].Row })
	if len(report.Errors) > 0 {
		report.Invitations = nil
		return ImportReport{}, &ImportRejectedError{Report: report}
	}
	report.Errors = []ImportRowError{}
	imp.report = report
	if imp.opts.DryRun || (imp.pending == nil && idem == nil) {
		return report, nil
	}
	w := imp.pending
	if w == nil {
		w = &importWrite{}
	}
	if err := imp.write(ctx, w, idem, replay); err != nil {
		return ImportReport{}, err
	}
	return imp.report, nil
}

// write appends one batch; with idem, the last one, recording the key
// with the final report.
func (imp *importer) write(ctx context.Context, w *importWrite, idem *eventstore.Idempotency, replay *[]byte) error {
	m := imp.m
	// Claims in a fixed order, so two imports sharing emails cannot deadlock.
	sort.Slice(w.claims, func(i, j int) bool {
		if w.claims[i].Kind != w.claims[j].Kind {
			return w.claims[i].Kind < w.claims[j].Kind
		}
		return w.claims[i].Value < w.claims[j].Value
	})
	side := func(ctx context.Context, tx execer) error {
		if len(w.invited.ids) > 0 {
			if _, err := tx.Exec(ctx, qInsertInvitations, m.TenantID, w.invited.ids, w.invited.hashes, imp.at); err != nil {
				return fmt.Errorf("record invitations: %w", err)
			}
		}
		return keyring.Store(ctx, tx, m.TenantID, w.newKeys)
	}
	if replay == nil {
		replay = new([]byte)
	}
	if err := side(ctx, imp.tx); err != nil {
		return err
	}
	res, err := appendOrReplay(ctx, imp.tx, eventstore.AppendRequest{
		TenantID:    m.TenantID,
		Streams:     w.streams,
		Claims:      w.claims,
		Outbox:      w.outbox,
		Metadata:    m.metadata(),
		Idempotency: withIdempotency(idem, &imp.report, func(p int64) { imp.report.Position = max(p, imp.report.Position) }),
		Now:         imp.at,
	}, replay)
	var taken *eventstore.ClaimTakenError
	if errors.As(err, &taken) {
		// A client with this email was registered while the file was read.
		report := imp.report
		report.Invitations = nil
		report.Errors = []ImportRowError{{Row: w.emailRow[taken.Value], Error: "email " + w.claimEmail[taken.Value] + " already exists"}}
		return &ImportRejectedError{Report: report}
	}
	if err != nil {
		return err
	}
	imp.report.Position = max(res.Position, imp.report.Position)
	return nil
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

// importParser reads an import's rows one at a time.
type importParser struct {
	cr     *csv.Reader
	header []string
	cols   []int
	n      int
}

// openImport reads src from its start up to the header row. An empty file,
// malformed CSV or a bad header is a ValidationError.
func openImport(src io.ReadSeeker) (*importParser, error) {
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read the import: %w", err)
	}
	cr := csv.NewReader(lineEnds{bufio.NewReader(src)})
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &domain.ValidationError{Field: "file", Detail: "is empty; the first row must be the header " + strings.Join(importHeader, ",")}
	}
	if err != nil {
		return nil, &domain.ValidationError{Field: "file", Detail: "is not valid CSV: " + err.Error()}
	}
	header = slices.Clone(header)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	cols, err := importColumns(header)
	if err != nil {
		return nil, err
	}
	return &importParser{cr: cr, header: header, cols: cols}, nil
}

// next reads the next row: the row, or why the row cannot be imported, or
// io.EOF at the end. Malformed CSV or more than MaxImportRows rows is a
// ValidationError.
func (p *importParser) next() (importRow, *ImportRowError, error) {
	var rec []string
	for {
		var err error
		rec, err = p.cr.Read()
		if errors.Is(err, io.EOF) {
			return importRow{}, nil, io.EOF
		}
		p.n++
		if err != nil {
			return importRow{}, nil, &domain.ValidationError{Field: "file", Detail: "is not valid CSV: " + err.Error()}
		}
		if p.n > MaxImportRows {
			return importRow{}, nil, &domain.ValidationError{Field: "file", Detail: fmt.Sprintf("has more than %d rows", MaxImportRows)}
		}
		// A row of empty cells (spreadsheets export them after the data)
		// holds no customer: it is skipped, and counted, so that later
		// rows keep their numbers.
		if slices.ContainsFunc(rec, func(c string) bool { return strings.TrimSpace(c) != "" }) {
			break
		}
	}
	n := p.n
	if len(rec) != len(p.header) {
		return importRow{}, &ImportRowError{Row: n, Error: fmt.Sprintf("has %d fields, want %d", len(rec), len(p.header))}, nil
	}
	field := func(col int) string {
		if p.cols[col] < 0 {
			return ""
		}
		return rec[p.cols[col]]
	}
	pr, err := domain.NormalizeProfile(domain.Profile{FirstName: field(colFirstName), LastName: field(colLastName),
		Email: field(colEmail), Phone: field(colPhone), Title: field(colTitle)})
	if err != nil {
		return importRow{}, &ImportRowError{Row: n, Error: err.Error()}, nil
	}
	if pr.Email == "" {
		return importRow{}, &ImportRowError{Row: n, Error: "Email is required"}, nil
	}
	row := importRow{n: n, profile: pr, hasTitle: p.cols[colTitle] >= 0}
	seen := map[string]bool{}
	for _, raw := range strings.Split(field(colTeam), ";") {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		email, err := domain.NormalizeEmail(raw)
		if err != nil {
			return importRow{}, &ImportRowError{Row: n, Error: fmt.Sprintf("team member %q is not a valid email address", strings.TrimSpace(raw))}, nil
		}
		if seen[email] {
			return importRow{}, &ImportRowError{Row: n, Error: fmt.Sprintf("team member %s is listed twice", email)}, nil
		}
		seen[email] = true
		row.team = append(row.team, email)
	}
	return row, nil, nil
}

// lineEnds reads a CSV file whose lines may end with a lone CR (a Mac
// spreadsheet's "CSV (Macintosh)"), which encoding/csv would read as part
// of a field, as if they ended with LF; CRLF is left as it is.
type lineEnds struct{ r *bufio.Reader }

func (l lineEnds) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := range n {
		if p[i] != '\r' {
			continue
		}
		if i+1 < n {
			if p[i+1] != '\n' {
				p[i] = '\n'
			}
		} else if next, perr := l.r.Peek(1); perr != nil || next[0] != '\n' {
			p[i] = '\n'
		}
	}
	return n, err
}

// parseImport reads a whole file: its rows and row errors (tests).
func parseImport(r io.Reader) ([]importRow, []ImportRowError, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	p, err := openImport(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	var (
		rows []importRow
		errs []ImportRowError
	)
	for {
		row, rowErr, err := p.next()
		switch {
		case errors.Is(err, io.EOF):
			return rows, errs, nil
		case err != nil:
			return nil, nil, err
		case rowErr != nil:
			errs = append(errs, *rowErr)
		default:
			rows = append(rows, row)
		}
	}
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

// qClaimedEmails finds the owners of customer e-mail claims, one primary
// key probe per value. Written as value = ANY($2), the planner, without
// statistics on a unique_claims that the import is filling in its own
// transaction, scanned every claim of the tenant for each batch of rows
// and filtered them: a 100,000-row import took 63-77 s instead of 18 s.
// The LIMIT keeps the lateral subquery from being flattened into a join.
const qClaimedEmails = `SELECT v.value, c.owner_id::text FROM unnest($2::text[]) AS v(value)
CROSS JOIN LATERAL (SELECT c.owner_id FROM unique_claims c
    WHERE c.tenant_id = $1 AND c.kind = '` + claimCustomerEmail + `' AND c.value = v.value LIMIT 1) c`

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
	rows, err := q.Query(ctx, qClaimedEmails, tenantID, claimed)
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
