package projections

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/assignment-ledger/ledger/eventstore"
)

// topic is the one Watermill topic: the events table. The name only shows
// in logs; the adapters below never build table names from it.
const topic = "events"

// metaBatch is the message metadata key of a batch's sequence number in its
// subscriber (a message is one batch; see eventsSchema).
const metaBatch = "batch"

// ErrPublishNotSupported is returned by eventsSchema.InsertQuery: events are
// appended through the event store, never published through Watermill.
var ErrPublishNotSupported = errors.New("projections: the events topic is written by the event store only")

// eventsSchema is a watermill-sql SchemaAdapter over the event store's own
// events table, so each event is stored once and no outbox copy exists.
//
// One message is one batch: the select query aggregates the events it reads
// into a single row. A projection applies a batch at once anyway, and
// Watermill passes a subscriber's messages through the router one at a time,
// inside the subscriber's transaction: with a message per event, a batch of
// n events waited for n hand-overs between goroutines before its write,
// with a message, a UUID and a metadata map built per event. (Measured, it
// changed CPU and lag by less than this VM's noise; it is kept because the
// handler no longer acks messages that carry no work.)
//
// Each subscriber has its own schema, which keeps the batch its last query
// read for the handler (a message carries bytes; the decoded events stay
// here).
type eventsSchema struct {
	batchSize int

	mu    sync.Mutex
	seq   uint64 // sequence number of batch
	batch []*envelope
	claim claim // what the claim that read batch found
}

// claim is what claiming a consumer group found: its checkpoint, and how
// many times a rebuild has swapped its tables (migration 0009).
type claim struct {
	after       eventstore.Cursor
	tablesEpoch int64
}

// batchOf returns the batch that message msg carries and what the claim
// that read it found, or nil when msg is not the batch the last query read.
func (s *eventsSchema) batchOf(msg *message.Message) ([]*envelope, claim) {
	seq, err := strconv.ParseUint(msg.Metadata.Get(metaBatch), 10, 64)
	if err != nil {
		return nil, claim{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq != s.seq {
		return nil, claim{}
	}
	return s.batch, s.claim
}

// full reports whether the last query read a whole batch (more may be
// waiting).
func (s *eventsSchema) full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.batch) >= s.batchSize
}

// The group is claimed in the first CTE (a volatile function, so the CTE
// is never inlined), and the lateral join makes the planner run it first,
// so the claim is made even when no event qualifies. Only transactions
// below the snapshot's xmin are read: a transaction that commits late has a
// smaller id than events already visible. The batch comes back as one row
// (none when it is empty): what the claim found and a JSON array of the
// events in order.
const qSelectEvents = `
WITH ck AS (%s)
SELECT ck.last_transaction_id::text, ck.last_position, ck.tables_epoch, json_agg(json_build_object(
           'p', e.position, 'x', e.transaction_id::text, 't', e.tenant_id, 's', e.stream_id,
           'v', e.stream_version, 'y', e.type, 'sv', e.schema_version, 'd', e.data, 'r', e.recorded_at)
       ORDER BY e.transaction_id, e.position)
FROM ck CROSS JOIN LATERAL (
    SELECT * FROM events e
    WHERE (e.transaction_id, e.position) > (ck.last_transaction_id, ck.last_position)
      AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.transaction_id, e.position
    LIMIT %d
) e
GROUP BY ck.last_transaction_id, ck.last_position, ck.tables_epoch
HAVING count(*) > 0`

func (s *eventsSchema) SelectQuery(_ string, consumerGroup string, offsets wsql.OffsetsAdapter) wsql.Query {
	s.mu.Lock()
	s.batch = nil
	s.mu.Unlock()
	next := offsets.NextOffsetQuery(topic, consumerGroup)
	return wsql.Query{Query: fmt.Sprintf(qSelectEvents, next.Query, s.batchSize), Args: next.Args}
}

func (*eventsSchema) InsertQuery(string, message.Messages) (wsql.Query, error) {
	return wsql.Query{}, ErrPublishNotSupported
}

// batchEvent is one event of the select query's JSON array.
type batchEvent struct {
	Position      int64           `json:"p"`
	TransactionID string          `json:"x"`
	TenantID      string          `json:"t"`
	StreamID      string          `json:"s"`
	StreamVersion int64           `json:"v"`
	Type          string          `json:"y"`
	SchemaVersion int             `json:"sv"`
	Data          json.RawMessage `json:"d"`
	RecordedAt    time.Time       `json:"r"`
}

// UnmarshalMessage turns the select query's one row into the message of
// the batch; the decoded events stay with the schema (batchOf). The
// message's payload is empty: no handler reads it.
func (s *eventsSchema) UnmarshalMessage(row wsql.Scanner) (wsql.Row, error) {
	var (
		afterTx string
		c       claim
		raw     []byte
	)
	if err := row.Scan(&afterTx, &c.after.Position, &c.tablesEpoch, &raw); err != nil {
		return wsql.Row{}, fmt.Errorf("scan batch: %w", err)
	}
	var err error
	if c.after.TransactionID, err = strconv.ParseUint(afterTx, 10, 64); err != nil {
		return wsql.Row{}, fmt.Errorf("batch: checkpoint transaction id: %w", err)
	}
	var events []batchEvent
	if err := json.Unmarshal(raw, &events); err != nil {
		return wsql.Row{}, fmt.Errorf("decode batch: %w", err)
	}
	if len(events) == 0 {
		return wsql.Row{}, errors.New("decode batch: no events")
	}
	batch := make([]*envelope, len(events))
	for i, e := range events {
		txid, err := strconv.ParseUint(e.TransactionID, 10, 64)
		if err != nil {
			return wsql.Row{}, fmt.Errorf("event %d: transaction id: %w", e.Position, err)
		}
		batch[i] = &envelope{
			Position: e.Position, TransactionID: txid, TenantID: e.TenantID, StreamID: e.StreamID,
			StreamVersion: e.StreamVersion, Type: e.Type, SchemaVersion: e.SchemaVersion,
			RecordedAt: e.RecordedAt.UTC(), Data: e.Data,
		}
	}
	first, last := batch[0], batch[len(batch)-1]
	s.mu.Lock()
	s.seq++
	s.batch, s.claim = batch, c
	seq := s.seq
	s.mu.Unlock()
	msg := message.NewMessage(fmt.Sprintf("%d-%d", first.Position, last.Position), nil)
	msg.Metadata = message.Metadata{
		metaBatch: strconv.FormatUint(seq, 10),
	}
	return wsql.Row{
		Offset:    last.Position,
		UUID:      []byte(msg.UUID),
		Msg:       msg,
		ExtraData: map[string]any{"transaction_id": strconv.FormatUint(last.TransactionID, 10)},
	}, nil
}

// SchemaInitializingQueries is empty: the tables come from migrations.
func (*eventsSchema) SchemaInitializingQueries(string) []wsql.Query { return nil }

// SubscribeIsolationLevel is READ COMMITTED: a subscriber waiting on the
// checkpoint lock then reads the row as the previous holder left it (a
// REPEATABLE READ one fails with a serialization error), and handlers see
// tables swapped in by a rebuild.
func (*eventsSchema) SubscribeIsolationLevel() sql.IsolationLevel { return sql.LevelReadCommitted }

// checkpointOffsets is a watermill-sql OffsetsAdapter over
// projection_checkpoints. Transaction ids travel as text and are cast
// explicitly: pgx through database/sql cannot bind an int64 to xid8
// (watermill issue #528).
type checkpointOffsets struct{}

const (
	// The claim locks the group for the transaction (migration 0006).
	qNextOffset = `SELECT last_transaction_id, last_position, tables_epoch FROM ledger_checkpoint_claim($1)`

	qAckNothing = `SELECT 1`

	// Monotonic: a checkpoint never moves back.
	qAckOffset = `UPDATE projection_checkpoints
SET last_transaction_id = $2::text::xid8, last_position = $3, updated_at = now()
WHERE consumer_group = $1 AND (last_transaction_id, last_position) < ($2::text::xid8, $3)`

	qEnsureCheckpoint = `INSERT INTO projection_checkpoints (consumer_group) VALUES ($1) ON CONFLICT DO NOTHING`
)

func (checkpointOffsets) NextOffsetQuery(_, consumerGroup string) wsql.Query {
	return wsql.Query{Query: qNextOffset, Args: []any{consumerGroup}}
}

// AckMessageQuery moves nothing: a batch's writes move the checkpoint with
// them (Runner.handler), and a batch cut short must not be skipped.
func (checkpointOffsets) AckMessageQuery(string, wsql.Row, string) wsql.Query {
	return wsql.Query{Query: qAckNothing}
}

func (checkpointOffsets) ConsumedMessageQuery(string, wsql.Row, string, []byte) wsql.Query {
	return wsql.Query{}
}

func (checkpointOffsets) SchemaInitializingQueries(string) []wsql.Query { return nil }

// BeforeSubscribingQueries makes sure the row exists: the claim reads the
// checkpoint from it.
func (checkpointOffsets) BeforeSubscribingQueries(_ string, consumerGroup string) []wsql.Query {
	return []wsql.Query{{Query: qEnsureCheckpoint, Args: []any{consumerGroup}}}
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
}

func (e *envelope) cursor() eventstore.Cursor {
	return eventstore.Cursor{TransactionID: e.TransactionID, Position: e.Position}
}
