package projections

import (
	"database/sql"
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

// Message metadata keys set by eventsSchema.UnmarshalMessage.
const (
	metaType          = "type"
	metaSchemaVersion = "schema_version"
	metaPosition      = "position"
	metaTransactionID = "transaction_id"
	metaTenantID      = "tenant_id"
	metaStreamID      = "stream_id"
	metaStreamVersion = "stream_version"
	metaRecordedAt    = "recorded_at"
)

// ErrPublishNotSupported is returned by eventsSchema.InsertQuery: events are
// appended through the event store, never published through Watermill.
var ErrPublishNotSupported = errors.New("projections: the events topic is written by the event store only")

// eventsSchema is a watermill-sql SchemaAdapter over the event store's own
// events table, so each event is stored once and no outbox copy exists.
//
// Each subscriber has its own: it remembers the batch its last query read
// (the subscriber reads a whole batch before it sends the first message and
// queries again only once the batch is done), so a projection that can apply
// many events at once gets the rest of the batch with its first message.
type eventsSchema struct {
	batchSize int

	mu    sync.Mutex
	batch []*envelope
}

// batchOf returns the current batch if position is in it (nil otherwise),
// and whether position is its last event.
func (s *eventsSchema) batchOf(position int64) ([]*envelope, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.batch {
		if e.Position == position {
			return s.batch, i == len(s.batch)-1
		}
	}
	return nil, false
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
// so the claim is made even when no event qualifies. Only transactions below the snapshot's xmin are read: a
// transaction that commits late has a smaller id than events already visible.
const qSelectEvents = `
WITH ck AS (%s)
SELECT e.position, e.transaction_id::text, e.tenant_id::text, e.stream_id::text, e.stream_version,
       e.type, e.schema_version, e.data, e.metadata, e.recorded_at
FROM ck CROSS JOIN LATERAL (
    SELECT * FROM events e
    WHERE (e.transaction_id, e.position) > (ck.last_transaction_id, ck.last_position)
      AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.transaction_id, e.position
    LIMIT %d
) e
ORDER BY e.transaction_id, e.position`

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

// UnmarshalMessage turns an events row into a message: the payload is the
// event's data, the metadata carries the envelope (the event's own metadata
// JSON travels as the row's, undecoded: no handler needs it, and decoding
// it five times per event was a visible share of the projections' CPU).
func (s *eventsSchema) UnmarshalMessage(row wsql.Scanner) (wsql.Row, error) {
	var (
		env      envelope
		txid     string
		metadata []byte
		schema   int32
	)
	if err := row.Scan(&env.Position, &txid, &env.TenantID, &env.StreamID, &env.StreamVersion,
		&env.Type, &schema, &env.Data, &metadata, &env.RecordedAt); err != nil {
		return wsql.Row{}, fmt.Errorf("scan event: %w", err)
	}
	var err error
	if env.TransactionID, err = strconv.ParseUint(txid, 10, 64); err != nil {
		return wsql.Row{}, fmt.Errorf("event %d: transaction id: %w", env.Position, err)
	}
	env.SchemaVersion = int(schema)
	env.RecordedAt = env.RecordedAt.UTC()
	s.mu.Lock()
	s.batch = append(s.batch, &env)
	s.mu.Unlock()
	msg := message.NewMessage(strconv.FormatInt(env.Position, 10), env.Data)
	msg.Metadata = message.Metadata{
		metaType:          env.Type,
		metaSchemaVersion: strconv.Itoa(int(schema)),
		metaPosition:      strconv.FormatInt(env.Position, 10),
		metaTransactionID: txid,
		metaTenantID:      env.TenantID,
		metaStreamID:      env.StreamID,
		metaStreamVersion: strconv.FormatInt(env.StreamVersion, 10),
		metaRecordedAt:    env.RecordedAt.UTC().Format(time.RFC3339Nano),
	}
	return wsql.Row{
		Offset:    env.Position,
		UUID:      []byte(msg.UUID),
		Payload:   env.Data,
		Metadata:  metadata,
		Msg:       msg,
		ExtraData: map[string]any{metaTransactionID: txid},
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
	qNextOffset = `SELECT last_transaction_id, last_position FROM ledger_checkpoint_claim($1)`

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
