// Package commands runs the ledger's commands: each one authorizes the
// actor, locks and loads what it decides on, asks the domain, and appends the
// resulting events (with their side records) in one transaction.
//
// Locking is what makes the rules hold under races. Every command takes its
// locks in one global order: user rows first (FOR SHARE to use a user, FOR
// UPDATE to deactivate one), sorted by ID, then customer stream rows (FOR
// UPDATE), sorted by ID. A command that decides on a customer therefore sees
// the customer exactly as its append will find it, and a user's status cannot
// change between the check and the commit.
//
// Choices where the contract is silent:
//   - Idempotency: a stored answer is replayed before anything is decided. A
//     refusal by a rule (a *domain.RuleError) is stored as the key's answer
//     too, unless a concurrent request with the key committed first, whose
//     answer is then replayed; any other error stores nothing. Secrets are
//     never stored: a replayed IssueAPIKey or InviteClient answers without
//     its secret and with Replayed set (the API answers
//     replay_unavailable). Dry runs ignore the key.
//   - A command that changes nothing (MakeTeamLead on the lead, the same
//     policy again) appends nothing and answers the current state with the
//     position of the stream's last event.
//   - BulkEdit: unknown (or other tenants') IDs fail their pairs with code
//     "not_found"; at most MaxBulkCustomers customers and MaxBulkUsers users.
//   - ImportClients: Email is required on every row; an existing email without
//     update_existing is "unchanged" (not an error) and its Team column is
//     not applied; update_existing changes first and last name only.
//   - Malformed IDs are ErrNotFound, like unknown ones.
package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// Stream types recorded in the streams table.
const (
	streamTenant   = "tenant"
	streamUser     = "user"
	streamCustomer = "customer"
	streamGroup    = "group"
)

// Claim kinds: values unique within a tenant.
const (
	claimCustomerEmail      = "customer_email"
	claimCustomerExternalID = "customer_external_id"
	claimUserEmail          = "user_email"
	// claimGroupName holds domain.GroupNameKey of a live group's name.
	claimGroupName = "group_name"
)

// CodeNameTaken is the RuleError code of a group name already used in the
// tenant.
const CodeNameTaken = "name_taken"

// CodeExternalIDTaken is the RuleError code of a duplicate customer
// external_id (domain.CodeEmailTaken covers emails).
const CodeExternalIDTaken = "external_id_taken"

// CodeNotFound is the PairError code of a bulk pair whose customer or user
// does not exist in the tenant.
const CodeNotFound = "not_found"

// maxAttempts bounds the retries of a command that lost a race it can
// safely run again (deadlock, serialization failure, version mismatch
// without If-Match).
const maxAttempts = 5

var (
	// ErrNotFound is an unknown ID, or an ID of another tenant: the two are
	// indistinguishable on purpose (HTTP 404). It is the event store's
	// sentinel: one "not found" for every layer.
	ErrNotFound = eventstore.ErrNotFound
	// ErrPreconditionFailed is an If-Match version that is not the
	// customer's current version (HTTP 412).
	ErrPreconditionFailed = errors.New("precondition failed: version mismatch")
	// ErrEmailNotConfigured is a request for an e-mail (an invitation's
	// send_email, an import's invite) when no e-mail is configured (HTTP
	// 422 email_not_configured); nothing was written.
	ErrEmailNotConfigured = errors.New("e-mail is not configured (LEDGER_SMTP_URL, LEDGER_MAIL_FROM)")
	// ErrUnauthenticated is an API key that is not, or no longer, an
	// active user's (Authenticate; HTTP 401).
	ErrUnauthenticated = errors.New("unknown API key or deactivated user")
	// ErrErased is a customer that was erased (HTTP 410 erased): it is
	// gone from every list and no command changes it any more.
	ErrErased = errors.New("customer erased")
)

// Commands runs every command against one event store.
type Commands struct {
	store *eventstore.Store
	// keys seals new customers' profile events and opens stored ones.
	keys  *keyring.Keyring
	log   *slog.Logger
	names nameCache
	// unit commits single-customer commands in groups.
	unit *unit
	// leases are the API keys this process verified (Authenticate).
	leases keyLeases
	// email is true when e-mail is configured: commands may queue e-mails
	// in the outbox, which a relay (package mail) delivers.
	email bool
}

// Option configures Commands.
type Option func(*Commands)

// WithEmail lets commands queue e-mails (invitations): set it when a relay
// delivers the outbox. Without it, asking for an e-mail is
// ErrEmailNotConfigured.
func WithEmail() Option { return func(c *Commands) { c.email = true } }

// New returns the command handlers over store; keys seals and opens the
// customers' personal fields.
func New(store *eventstore.Store, keys *keyring.Keyring, log *slog.Logger, opts ...Option) *Commands {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Commands{store: store, keys: keys, log: log, names: nameCache{m: map[string]string{}}}
	c.unit = newUnit(c) // before the options, which may configure it
	for _, o := range opts {
		o(c)
	}
	return c
}

// Keyring is the keyring the commands seal with, for the readers of
// events that run beside them (history, audit).
func (c *Commands) Keyring() *keyring.Keyring { return c.keys }

// Meta is what every command carries besides its own input.
type Meta struct {
	TenantID string
	Actor    domain.Actor
	// IdempotencyKey is optional; with it RequestHash is required.
	IdempotencyKey string
	RequestHash    []byte
	// IfMatch are the customer versions the caller accepts (customer
	// commands; If-Match: one ETag or a list); nil accepts any, empty
	// none (If-Match named only weak ETags, which never match).
	IfMatch []int64
	// CorrelationID is shared by every event of the command; generated when
	// empty.
	CorrelationID string
}

func (m Meta) metadata() eventstore.Metadata {
	return eventstore.Metadata{
		Actor:          eventstore.Actor{UserID: m.Actor.UserID, Name: m.Actor.Name},
		CorrelationID:  m.CorrelationID,
		IdempotencyKey: m.IdempotencyKey,
	}
}

// prepare validates the meta and fills in the correlation ID.
func (m Meta) prepare() (Meta, error) {
	tenant, ok := parseID(m.TenantID)
	if !ok {
		return m, fmt.Errorf("tenant %q: %w", m.TenantID, ErrNotFound)
	}
	m.TenantID = tenant
	if m.IdempotencyKey != "" && len(m.RequestHash) == 0 {
		return m, errors.New("commands: an idempotency key needs a request hash")
	}
	if len(m.IdempotencyKey) > 255 {
		return m, &domain.ValidationError{Field: "Idempotency-Key", Detail: "is longer than 255 characters"}
	}
	if m.CorrelationID == "" {
		m.CorrelationID = newID()
	}
	return m, nil
}

// BulkRejectedError refuses a whole bulk edit because some pairs break a
// rule (HTTP 409); nothing was written.
type BulkRejectedError struct {
	Errors []domain.PairError
}

func (e *BulkRejectedError) Error() string {
	return fmt.Sprintf("bulk edit refused: %d pair(s) break a rule", len(e.Errors))
}

// ImportRejectedError refuses a whole import because some rows are bad
// (HTTP 422); nothing was written. Report lists every bad row.
type ImportRejectedError struct {
	Report ImportReport
}

func (e *ImportRejectedError) Error() string {
	return fmt.Sprintf("import refused: %d bad row(s)", len(e.Report.Errors))
}

// newID returns a UUID v7.
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// parseID accepts only the canonical 36-character form of a UUID and
// returns it in lower case; anything else is an ID that cannot exist.
func parseID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

func notFound(kind, id string) error {
	return fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
}

// now is the recording time of a command's events, at the precision the
// database keeps, so views built before the append equal what a reload shows.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

func randomToken() (raw string, hash []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	raw = base64.RawURLEncoding.EncodeToString(b)
	return raw, hashToken(raw)
}

func hashToken(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// encode turns domain events into event store data. Events carrying a
// customer's personal fields are refused: they must be sealed with the
// customer's data key (encodeSealed), never stored in clear.
func encode(events []domain.Event) ([]eventstore.EventData, error) {
	return encodeSealed(events, keyring.DataKey{})
}

// sealNew makes a new customer's data key and encodes its first events
// sealed with it; the key must be stored in the same append (storeKeys).
func (c *Commands) sealNew(customerID string, events []domain.Event) ([]eventstore.EventData, keyring.DataKey, error) {
	dk, err := c.keys.NewDataKey(customerID)
	if err != nil {
		return nil, keyring.DataKey{}, err
	}
	data, err := encodeSealed(events, dk)
	return data, dk, err
}

// encodeSealed is encode for one customer's events, sealing its personal
// fields with dk.
func encodeSealed(events []domain.Event, dk keyring.DataKey) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, 0, len(events))
	for _, e := range events {
		typ, schema, data, err := domain.EncodeEvent(e)
		if err != nil {
			return nil, err
		}
		if schema, data, err = dk.Seal(typ, schema, data); err != nil {
			return nil, err
		}
		out = append(out, eventstore.EventData{Type: typ, SchemaVersion: schema, Data: data})
	}
	return out, nil
}

// customerStreams encodes each customer's events as one stream write at
// the version it was decided on, in ID order (the order every command
// locks and appends customers in).
func customerStreams(events map[string][]domain.Event, versions map[string]int64) ([]eventstore.StreamWrite, error) {
	streams := make([]eventstore.StreamWrite, 0, len(events))
	for _, id := range slices.Sorted(maps.Keys(events)) {
		data, err := encode(events[id])
		if err != nil {
			return nil, err
		}
		streams = append(streams, eventstore.StreamWrite{StreamID: id, StreamType: streamCustomer, ExpectedVersion: versions[id], Events: data})
	}
	return streams, nil
}

// retryable reports whether a failed attempt may simply run again.
func retryable(err error, ifMatch bool) bool {
	if errors.Is(err, eventstore.ErrConflict) {
		return true
	}
	return !ifMatch && errors.Is(err, eventstore.ErrVersionMismatch)
}

// withRetry runs attempt until it succeeds, fails for good, or has failed
// maxAttempts times on a retryable conflict.
func (c *Commands) withRetry(ctx context.Context, name string, ifMatch bool, attempt func() error) error {
	var err error
	for i := 1; ; i++ {
		err = attempt()
		if err == nil || !retryable(err, ifMatch) || i == maxAttempts {
			return err
		}
		c.log.DebugContext(ctx, "command conflict; retrying", slog.String("command", name),
			slog.Int("attempt", i), slog.String("error", err.Error()))
		backoff := time.Duration(i*i)*time.Millisecond + time.Duration(mrand.IntN(2000))*time.Microsecond
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// errReplayed ends a transaction whose append turned out to be an
// idempotent replay (a concurrent retry committed first).
var errReplayed = errors.New("replayed")

// appendOrReplay appends req in tx. When the append finds the idempotency
// key recorded meanwhile (a concurrent retry committed first), it hands the
// stored response to *replay and returns errReplayed; otherwise it returns
// what the append returned.
func appendOrReplay(ctx context.Context, tx *eventstore.Tx, req eventstore.AppendRequest, replay *[]byte) (eventstore.AppendResult, error) {
	res, err := tx.Append(ctx, req)
	if err == nil && res.Replayed {
		*replay = res.Response
		return res, errReplayed
	}
	return res, err
}

// idempotent runs a command under m's idempotency key: a stored answer is
// replayed without running the command; otherwise run decides and appends,
// passing the *eventstore.Idempotency to record (nil without a key).
//
// run returns the result, or errReplayed with the stored response in
// *replay when the append found the key recorded meanwhile.
func idempotent[R any](ctx context.Context, c *Commands, m Meta, run func(idem *eventstore.Idempotency, replay *[]byte) (R, error)) (R, error) {
	var zero R
	if m.IdempotencyKey == "" {
		var replay []byte
		r, err := run(nil, &replay)
		if errors.Is(err, errReplayed) {
			return zero, errors.New("commands: replay without an idempotency key")
		}
		return r, err
	}
	if r, ok, err := lookupReplay[R](ctx, c, m); ok || err != nil {
		return r, err
	}
	idem := &eventstore.Idempotency{Key: m.IdempotencyKey, RequestHash: c.keys.RequestMAC(m.RequestHash)}
	var replay []byte
	r, err := run(idem, &replay)
	switch {
	case errors.Is(err, errReplayed):
		return decodeReplay[R](ctx, c, replay)
	case err != nil:
		if errors.Is(err, eventstore.ErrIdempotencyKeyReused) {
			return zero, err
		}
		// A refusal is the key's answer, unless a concurrent request with
		// the key committed first.
		if answer, ok := refusalAnswer(err); ok {
			stored, serr := c.store.StoreRefusal(ctx, eventstore.StoredResponse{TenantID: m.TenantID, Key: m.IdempotencyKey,
				Response: answer, CustomerIDs: idem.Names}, idem.RequestHash)
			if serr != nil {
				return zero, serr
			}
			if stored {
				return zero, err
			}
		}
		// A concurrent retry with the same key may have committed while
		// this attempt waited, and this attempt then ran into the very rule
		// the first one satisfied (already_assigned): answer the first.
		if r, ok, lerr := lookupReplay[R](ctx, c, m); ok || lerr != nil {
			if lerr != nil {
				return zero, err
			}
			return r, nil
		}
		return zero, err
	}
	return r, nil
}

func lookupReplay[R any](ctx context.Context, c *Commands, m Meta) (R, bool, error) {
	var zero R
	res, ok, err := c.store.LookupIdempotency(ctx, m.TenantID, m.IdempotencyKey, c.keys.RequestMAC(m.RequestHash))
	if errors.Is(err, eventstore.ErrIdempotencyKeyReused) {
		// A record stored before request hashes were keyed holds the
		// plain hash.
		res, ok, err = c.store.LookupIdempotency(ctx, m.TenantID, m.IdempotencyKey, m.RequestHash)
	}
	if err != nil || !ok {
		return zero, false, err
	}
	r, err := decodeReplay[R](ctx, c, res.Response)
	return r, true, err
}

func decodeReplay[R any](ctx context.Context, c *Commands, response []byte) (R, error) {
	var r R
	if len(response) == 0 {
		return r, errors.New("commands: idempotency key recorded without a response")
	}
	response, err := c.openAnswer(ctx, response)
	if err != nil {
		return r, err
	}
	if re, ok := refusalOf(response); ok {
		return r, re
	}
	if err := json.Unmarshal(response, &r); err != nil {
		return r, fmt.Errorf("decode stored response: %w", err)
	}
	if rp, ok := any(&r).(interface{ markReplayed() }); ok {
		rp.markReplayed()
	}
	return r, nil
}

// storedRefusal is the answer stored under the idempotency key of a
// command a business rule refused: a retry gets that first answer, and the
// key cannot be reused with another body. No answer type has a "refused"
// field, so a stored answer is never mistaken for a refusal. Its text names
// users, customers and groups by ID or by staff e-mail, never a customer's
// personal data, so it is stored as it is.
type storedRefusal struct {
	Refused *refusal `json:"refused"`
}

type refusal struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// refusalAnswer is the stored answer of err when a business rule refused
// the command (a *domain.RuleError); ok is false for any other error,
// whose command stores nothing under its key.
func refusalAnswer(err error) (answer []byte, ok bool) {
	var re *domain.RuleError
	if !errors.As(err, &re) {
		return nil, false
	}
	answer, err = json.Marshal(storedRefusal{Refused: &refusal{Code: re.Code, Detail: re.Detail}})
	return answer, err == nil
}

// refusalOf is the refusal a stored answer holds, if it holds one.
func refusalOf(answer []byte) (*domain.RuleError, bool) {
	var s storedRefusal
	if json.Unmarshal(answer, &s) != nil || s.Refused == nil {
		return nil, false
	}
	return &domain.RuleError{Code: s.Refused.Code, Detail: s.Refused.Detail}, true
}

// withIdempotency returns idem with Response set to the JSON of *result
// after setPosition has stamped the append's position on it.
func withIdempotency[R any](idem *eventstore.Idempotency, result *R, setPosition func(int64)) *eventstore.Idempotency {
	if idem == nil {
		return nil
	}
	out := *idem
	out.Response = func(res eventstore.AppendResult) ([]byte, error) {
		setPosition(res.Position)
		return json.Marshal(result)
	}
	return &out
}

// cmdTx is the transaction of a command that is not single-customer (the
// unit of work in unit.go runs those): the store's transaction, with the
// command's idempotency key, which append records with the events.
type cmdTx struct {
	*eventstore.Tx
	idem   *eventstore.Idempotency
	replay *[]byte
	// named are the customers the answer names besides those it changes
	// (see name).
	named []string
}

// name records that the command's answer names the customers ids, changed
// or not (a bulk answer's unchanged ones): the erasure of any of them then
// scrubs the stored answer, and a retry answers replay_unavailable.
func (t *cmdTx) name(ids ...string) { t.named = append(t.named, ids...) }

// keyed reports whether the command carries an idempotency key: a keyed
// command that changes nothing still appends, to store its answer.
func (t *cmdTx) keyed() bool { return t.idem != nil }

// append appends req with the command's idempotency key, whose stored
// answer is *result once *position holds the append's position (position
// points into result; it is set when the append wrote events).
func (t *cmdTx) append(ctx context.Context, req eventstore.AppendRequest, result any, position *int64) (eventstore.AppendResult, error) {
	return t.appendSealed(ctx, req, keyring.DataKey{}, result, position)
}

// appendSealed is append for an answer that renders one customer, dk's:
// its stored answer is sealed with the customer's key (sealed.go).
func (t *cmdTx) appendSealed(ctx context.Context, req eventstore.AppendRequest, dk keyring.DataKey, result any, position *int64) (eventstore.AppendResult, error) {
	if t.idem != nil {
		idem := *t.idem
		idem.Names = t.named
		idem.Response = func(res eventstore.AppendResult) ([]byte, error) {
			if res.Position != 0 {
				*position = res.Position
			}
			answer, err := json.Marshal(result)
			if err != nil {
				return nil, err
			}
			return sealAnswer(dk, answer)
		}
		req.Idempotency = &idem
	}
	res, err := appendOrReplay(ctx, t.Tx, req, t.replay)
	if err == nil && res.Position != 0 {
		*position = res.Position
	}
	return res, err
}

// appendCustomers appends events to the customer streams they name, each
// at its version in versions, with m's metadata: the tail of every bulk
// command. The answer is result, its position set through position.
func (t *cmdTx) appendCustomers(ctx context.Context, m Meta, events map[string][]domain.Event, versions map[string]int64, result any, position *int64) error {
	streams, err := customerStreams(events, versions)
	if err != nil {
		return err
	}
	t.name(slices.Sorted(maps.Keys(versions))...)
	_, err = t.append(ctx, eventstore.AppendRequest{
		TenantID: m.TenantID,
		Streams:  streams,
		Metadata: m.metadata(),
		Now:      now(),
	}, result, position)
	return err
}

// transact runs a command that is not single-customer: a stored answer
// under its idempotency key is replayed, otherwise run decides and appends
// in one transaction, run again (a bounded number of times) when it loses
// a race it can safely retry.
func transact[R any](ctx context.Context, c *Commands, name string, m Meta, run func(ctx context.Context, tx *cmdTx) (R, error)) (R, error) {
	return idempotent(ctx, c, m, func(idem *eventstore.Idempotency, replay *[]byte) (R, error) {
		var result R
		var last *cmdTx
		err := c.withRetry(ctx, name, m.IfMatch != nil, func() error {
			return c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
				var err error
				last = &cmdTx{Tx: tx, idem: idem, replay: replay}
				result, err = run(ctx, last)
				return err
			})
		})
		if err != nil && idem != nil && last != nil {
			// What a refusal stored under the key names (idempotent).
			idem.Names = append(slices.Clone(last.named), last.StreamsFound()...)
		}
		return result, err
	})
}

// translateClaim turns a lost unique claim into the rule it breaks.
func translateClaim(err error) error {
	var ct *eventstore.ClaimTakenError
	if !errors.As(err, &ct) {
		return err
	}
	switch ct.Kind {
	case claimCustomerExternalID:
		// Customer claims hold an HMAC, not the value: the caller knows it.
		return &domain.RuleError{Code: CodeExternalIDTaken, Detail: "the external_id is already used by another customer"}
	case claimGroupName:
		return &domain.RuleError{Code: CodeNameTaken, Detail: fmt.Sprintf("a group named %q exists already", ct.Value)}
	case claimUserEmail:
		return &domain.RuleError{Code: domain.CodeEmailTaken, Detail: fmt.Sprintf("email %q is already used by another user", ct.Value)}
	default:
		return &domain.RuleError{Code: domain.CodeEmailTaken, Detail: "the email is already used by another customer"}
	}
}

// nameCache remembers users' display names, so views need not read them on
// every command. A rename (UpdateUser) updates this process's copy only, so
// no answer trusts it alone (see names.go).
type nameCache struct {
	mu sync.RWMutex
	m  map[string]string
}

const maxCachedNames = 200_000

func (n *nameCache) get(id string) (string, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	name, ok := n.m[id]
	return name, ok
}

func (n *nameCache) put(id, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.m) >= maxCachedNames {
		n.m = make(map[string]string)
	}
	n.m[id] = name
}

// customerDecide decides a command on one locked customer; users holds the
// command's users, share-locked.
type customerDecide func(cu domain.Customer, users map[string]domain.User, pol domain.Policy) ([]domain.Event, error)

// customerCommand runs a command on one existing customer: it names the
// customer and the users it decides on and hands over the decision; the
// unit of work (unit.go) does the rest, committing it in a group with the
// commands that arrive beside it.
func (c *Commands) customerCommand(ctx context.Context, name string, m Meta, customerID string, userIDs []string, decide customerDecide) (CustomerResult, error) {
	m, err := m.prepare()
	if err != nil {
		return CustomerResult{}, err
	}
	customerID, ok := parseID(customerID)
	if !ok {
		return CustomerResult{}, notFound("customer", customerID)
	}
	return c.unit.run(ctx, &customerOp{name: name, m: m, customerID: customerID, userIDs: sortedUnique(userIDs), decide: decide})
}

// checkIfMatch is ErrPreconditionFailed unless cu is at one of the
// versions ifMatch accepts (nil: any; empty: none).
func checkIfMatch(cu domain.Customer, ifMatch []int64) error {
	if ifMatch == nil || slices.ContainsFunc(ifMatch, cu.MatchesVersion) {
		return nil
	}
	if len(ifMatch) == 0 {
		return fmt.Errorf("%w: customer %s is at version %d; a weak ETag never matches", ErrPreconditionFailed, cu.ID, cu.Version)
	}
	return fmt.Errorf("%w: customer %s is at version %d, not %v", ErrPreconditionFailed, cu.ID, cu.Version, ifMatch)
}

// sortedUnique returns ids sorted without duplicates (a new slice).
func sortedUnique(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// parseIDs parses every id; the first bad one is ErrNotFound of kind.
func parseIDs(kind string, ids ...string) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		p, ok := parseID(id)
		if !ok {
			return nil, notFound(kind, id)
		}
		out[i] = p
	}
	return out, nil
}
