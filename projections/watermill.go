package projections

import (
	"bytes"
	"cmp"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// topic is the one Watermill topic: the events table. The name only shows
// in logs; the adapters below never build table names from it.
const topic = "events"

// consumerGroup prefixes the engines' Watermill subscribers' names, which
// only show in logs: the checkpoints an engine claims and moves are its
// projections' own (one row each in projection_checkpoints), so each keeps
// its own position and rebuild.
const consumerGroup = "projections"

// metaClaims is the metadata key of a batch message's claims: where each
// projection's checkpoint stood when the batch was read.
const metaClaims = "claims"

// ErrPublishNotSupported is returned by eventsSchema.InsertQuery: events are
// appended through the event store, never published through Watermill.
var ErrPublishNotSupported = errors.New("projections: the events topic is written by the event store only")

// eventsSchema is a watermill-sql SchemaAdapter over the event store's own
// events table, so each event is stored once and no outbox copy exists.
//
// A message is a batch: the select query claims every projection's
// checkpoint, reads the events after the earliest of them, and returns
// them as one row, which becomes one message whose payload is the events
// (one line each, see eventFieldsAll) and whose metadata carries the claims
// as JSON. The engine applies a batch at once, in one statement; a message
// per event would only add a hand-over between goroutines per event.
//
// The batch size adapts to the backlog: a batch that came back full and
// was applied quickly doubles the next one's limit (up to maxBatch), a slow
// one halves it. A projection that is current reads what has arrived, a few
// events; one that is far behind reads thousands at a time, so a backlog
// costs a few large transactions rather than many small ones.
type eventsSchema struct {
	// events are the fields of each event the batch carries (see
	// eventFieldsAll): an engine of derived projections reads rows from the
	// events table itself and needs only cursors and types.
	events   string
	minBatch int
	maxBatch int

	mu    sync.Mutex
	limit int // of the next query
	read  int // events the last query read
	asked int // its limit
}

// Batches adapt between these; WithBatchSize sets the most.
const (
	defaultMaxBatch = 20_000
	firstBatch      = 1_000
	// batchTarget is how long a full batch should take to apply: long
	// enough that a transaction's fixed costs vanish, short enough that the
	// write holds back no one's snapshot for long.
	batchTarget = 150 * time.Millisecond
)

func newEventsSchema(fields string, maxBatch int) *eventsSchema {
	return &eventsSchema{events: fields, minBatch: min(100, maxBatch), maxBatch: maxBatch, limit: min(firstBatch, maxBatch)}
}

// The fields a batch carries of each event, as one line of tab-separated
// text: all of them, or only what orders and selects events. Building JSON
// objects for the same events cost PostgreSQL two to three times as much
// (65 against 27 ms for 8,000 events) and the handler as much again to
// parse. No field can hold a tab or a line break: the data comes last and
// jsonb prints neither (JSON escapes them in strings); the time travels
// as microseconds since the epoch; a sealed event's wrapped key is hex
// (empty for other events: concat_ws would drop a NULL field).
const (
	eventFieldsAll = `concat_ws(E'\t', e.position, e.transaction_id, e.type, e.tenant_id, e.stream_id, e.stream_version,
           e.schema_version, (extract(epoch FROM e.recorded_at) * 1000000)::bigint,
           coalesce(encode(` + keyring.WrappedKeySQL + `, 'hex'), ''), e.data)`
	eventFieldsCursor = `concat_ws(E'\t', e.position, e.transaction_id, e.type)`
)

// applied adapts the batch limit to how long a batch of n events took.
func (s *eventsSchema) applied(n int, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case took > 2*batchTarget:
		s.limit = max(s.limit/2, s.minBatch)
	case n >= s.asked && took < batchTarget:
		s.limit = min(s.limit*2, s.maxBatch)
	}
}

// full reports whether the last query read a whole batch (more may be
// waiting).
func (s *eventsSchema) full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read > 0 && s.read >= s.asked
}

// The claims come first (a MATERIALIZED CTE of a volatile function, run
// before the events are read, even when none qualifies). The lines come in
// no particular order: decodeBatch sorts them. Only transactions
// below the snapshot's xmin are read: a transaction that commits late has a
// smaller id than events already visible. The batch comes back as one row
// (none when it is empty).
const qSelectEvents = `
WITH ck AS MATERIALIZED (%s),
lo AS (SELECT last_transaction_id AS x, last_position AS p FROM ck ORDER BY 1, 2 LIMIT 1)
SELECT (SELECT json_agg(json_build_object('g', name, 'x', last_transaction_id::text, 'p', last_position, 'e', tables_epoch)) FROM ck),
       string_agg(%s, E'\n'), count(*), min(e.position), max(e.position)
FROM lo CROSS JOIN LATERAL (
    SELECT * FROM ledger_events_after(lo.x, lo.p) e
    WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.transaction_id, e.position
    LIMIT %d
) e
HAVING count(*) > 0`

func (s *eventsSchema) SelectQuery(_ string, group string, offsets wsql.OffsetsAdapter) wsql.Query {
	s.mu.Lock()
	s.read, s.asked = 0, s.limit
	limit := s.limit
	s.mu.Unlock()
	next := offsets.NextOffsetQuery(topic, group)
	return wsql.Query{Query: fmt.Sprintf(qSelectEvents, next.Query, s.events, limit), Args: next.Args}
}

func (*eventsSchema) InsertQuery(string, message.Messages) (wsql.Query, error) {
	return wsql.Query{}, ErrPublishNotSupported
}

// batchClaim is one claim of a batch message's metadata; the query sends
// the transaction id (xid8) as text.
type batchClaim struct {
	Group         string `json:"g"`
	TransactionID uint64 `json:"x,string"`
	Position      int64  `json:"p"`
	Epoch         int64  `json:"e"`
}

// UnmarshalMessage turns the select query's one row into the batch's
// message.
func (s *eventsSchema) UnmarshalMessage(row wsql.Scanner) (wsql.Row, error) {
	var (
		claims, events []byte
		n              int
		lo, hi         int64
	)
	if err := row.Scan(&claims, &events, &n, &lo, &hi); err != nil {
		return wsql.Row{}, fmt.Errorf("scan batch: %w", err)
	}
	s.mu.Lock()
	s.read = n
	s.mu.Unlock()
	// The handler decodes the events. The message's id names the span of
	// positions it holds; the offset only needs to be a position (the ack
	// query ignores it: the engine's write moved the checkpoints).
	msg := message.NewMessage(fmt.Sprintf("%d-%d", lo, hi), events)
	msg.Metadata = message.Metadata{metaClaims: string(claims)}
	return wsql.Row{Offset: hi, UUID: []byte(msg.UUID), Msg: msg}, nil
}

// decodeBatch is a batch message's events, in subscriber order
// (transaction id, position), and claims.
func decodeBatch(msg *message.Message) ([]*envelope, map[string]claim, error) {
	batch, err := decodeEvents(msg.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("decode batch %s: %w", msg.UUID, err)
	}
	if len(batch) == 0 {
		return nil, nil, fmt.Errorf("batch %s has no events", msg.UUID)
	}
	var cs []batchClaim
	if err := json.Unmarshal([]byte(msg.Metadata.Get(metaClaims)), &cs); err != nil {
		return nil, nil, fmt.Errorf("decode batch %s claims: %w", msg.UUID, err)
	}
	claims := make(map[string]claim, len(cs))
	for _, c := range cs {
		claims[c.Group] = claim{after: eventstore.Cursor{TransactionID: c.TransactionID, Position: c.Position}, tablesEpoch: c.Epoch}
	}
	return batch, claims, nil
}

// decodeEvents parses a payload's lines (eventFieldsAll or
// eventFieldsCursor) and sorts the events in subscriber order.
func decodeEvents(payload []byte) ([]*envelope, error) {
	if len(payload) == 0 {
		return nil, nil
	}
	lines := bytes.Count(payload, []byte{'\n'}) + 1
	envs := make([]envelope, lines)
	batch := make([]*envelope, 0, lines)
	for len(payload) > 0 {
		line, rest, _ := bytes.Cut(payload, []byte{'\n'})
		payload = rest
		e := &envs[len(batch)]
		if err := e.parse(line); err != nil {
			return nil, err
		}
		batch = append(batch, e)
	}
	slices.SortFunc(batch, func(a, b *envelope) int {
		return cmp.Or(cmp.Compare(a.TransactionID, b.TransactionID), cmp.Compare(a.Position, b.Position))
	})
	return batch, nil
}

func (e *envelope) parse(line []byte) error {
	var f [10][]byte
	n := 0
	for ; n < len(f)-1; n++ {
		v, rest, ok := bytes.Cut(line, []byte{'\t'})
		if !ok {
			break
		}
		f[n], line = v, rest
	}
	f[n] = line
	n++
	if n != 3 && n != 10 {
		return fmt.Errorf("event line with %d fields", n)
	}
	var err error
	num := func(b []byte) int64 {
		v, perr := strconv.ParseInt(string(b), 10, 64)
		if perr != nil && err == nil {
			err = fmt.Errorf("event line: %w", perr)
		}
		return v
	}
	e.Position = num(f[0])
	e.TransactionID = uint64(num(f[1]))
	e.Type = string(f[2])
	if n == 10 {
		e.TenantID, e.StreamID = string(f[3]), string(f[4])
		e.StreamVersion, e.SchemaVersion = num(f[5]), int(num(f[6]))
		e.RecordedAt = time.UnixMicro(num(f[7])).UTC()
		if len(f[8]) > 0 {
			e.Key = make([]byte, hex.DecodedLen(len(f[8])))
			if _, herr := hex.Decode(e.Key, f[8]); herr != nil && err == nil {
				err = fmt.Errorf("event line: key: %w", herr)
			}
		}
		e.Data = f[9]
	}
	return err
}

// SchemaInitializingQueries is empty: the tables come from migrations.
func (*eventsSchema) SchemaInitializingQueries(string) []wsql.Query { return nil }

// SubscribeIsolationLevel is READ COMMITTED: a subscriber waiting on a
// checkpoint lock then reads the row as the previous holder left it (a
// REPEATABLE READ one fails with a serialization error), and the engine
// sees tables swapped in by a rebuild.
func (*eventsSchema) SubscribeIsolationLevel() sql.IsolationLevel { return sql.LevelReadCommitted }

// checkpointOffsets is a watermill-sql OffsetsAdapter over
// projection_checkpoints: the engine's "offset" is every projection's
// checkpoint, claimed together. Transaction ids travel as text and are cast
// explicitly: pgx through database/sql cannot bind an int64 to xid8
// (watermill issue #528).
type checkpointOffsets struct {
	names []string
}

const (
	// Each claim locks one projection for the transaction (migrations 0006
	// and 0009); every engine claims in the same order, that of all().
	qClaim = `SELECT n.name, c.last_transaction_id, c.last_position, c.tables_epoch
FROM unnest($1::text[]) WITH ORDINALITY AS n(name, i)
CROSS JOIN LATERAL ledger_checkpoint_claim(n.name) c
ORDER BY n.i`

	qAckNothing = `SELECT 1`

	qEnsureCheckpoint = `INSERT INTO projection_checkpoints (consumer_group) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`
)

func (o checkpointOffsets) NextOffsetQuery(string, string) wsql.Query {
	return wsql.Query{Query: qClaim, Args: []any{o.names}}
}

// AckMessageQuery moves nothing: a batch's write statement moves the
// checkpoints with it (engine.apply), and a batch cut short must not be
// skipped.
func (checkpointOffsets) AckMessageQuery(string, wsql.Row, string) wsql.Query {
	return wsql.Query{Query: qAckNothing}
}

func (checkpointOffsets) ConsumedMessageQuery(string, wsql.Row, string, []byte) wsql.Query {
	return wsql.Query{}
}

func (checkpointOffsets) SchemaInitializingQueries(string) []wsql.Query { return nil }

// BeforeSubscribingQueries makes sure the rows exist: the claims read the
// checkpoints from them.
func (o checkpointOffsets) BeforeSubscribingQueries(string, string) []wsql.Query {
	return []wsql.Query{{Query: qEnsureCheckpoint, Args: []any{o.names}}}
}

// envelope is one event as a projection sees it.
type envelope struct {
	Position      int64
	TransactionID uint64
	TenantID      string
	StreamID      string
	StreamVersion int64
	Type          string
	SchemaVersion int
	RecordedAt    time.Time
	Data          []byte
	// Key is the customer's wrapped data key beside a sealed event
	// (keyring.WrappedKeySQL): NULL for other events and once erased.
	Key []byte
}

func (e *envelope) cursor() eventstore.Cursor {
	return eventstore.Cursor{TransactionID: e.TransactionID, Position: e.Position}
}
