package eventstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// BrokenChainError names the first event whose chain does not hold.
type BrokenChainError struct {
	Position int64
	StreamID string
	Version  int64
	Reason   string
}

func (e *BrokenChainError) Error() string {
	return fmt.Sprintf("hash chain broken at event position %d (stream %s, version %d): %s",
		e.Position, e.StreamID, e.Version, e.Reason)
}

const qStreamHeads = `SELECT stream_id::text, version, last_hash FROM streams WHERE stream_id = ANY($1::text[]::uuid[])`

// VerifyReport summarises an intact verification.
type VerifyReport struct {
	Streams int64
	Events  int64
}

// verifyPage bounds each read, so verification runs in constant memory and
// never holds one snapshot long enough to stall subscribers.
const verifyPage = 5000

// Verify walks every stream's chain in (stream, version) order: versions must
// run 1, 2, 3... without gaps, every prev_hash must equal the previous hash,
// every hash must match the event's recomputed content, and each stream's head
// row must agree with its last event. It returns *BrokenChainError for the
// first failure. progress, if not nil, is called after each page.
func (s *Store) Verify(ctx context.Context, progress func(events int64)) (VerifyReport, error) {
	var (
		rep        VerifyReport
		lastStream = "00000000-0000-0000-0000-000000000000"
		lastVer    int64
		prevHash   []byte
		curStream  string
		curVersion int64
	)
	// heads are the head rows of the current page's streams, read in one
	// query per page rather than one per stream.
	type head struct {
		version int64
		hash    []byte
	}
	heads := map[string]head{}
	finishStream := func() error {
		if curStream == "" {
			return nil
		}
		h, ok := heads[curStream]
		if !ok {
			return &BrokenChainError{StreamID: curStream, Version: curVersion, Reason: "stream head row missing"}
		}
		if h.version != curVersion || !bytes.Equal(h.hash, prevHash) {
			return &BrokenChainError{StreamID: curStream, Version: curVersion,
				Reason: fmt.Sprintf("stream head says version %d, events end at %d with a different hash", h.version, curVersion)}
		}
		return nil
	}
	for {
		events, err := collect(s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
			WHERE (stream_id, stream_version) > ($1::uuid, $2) ORDER BY stream_id, stream_version LIMIT $3`,
			lastStream, lastVer, verifyPage))
		if err != nil {
			return rep, fmt.Errorf("verify: %w", err)
		}
		ids := make([]string, 0, len(events)+1)
		if curStream != "" {
			// The last page's last stream is finished on this page.
			ids = append(ids, curStream)
		}
		for i, e := range events {
			if i == 0 || e.StreamID != events[i-1].StreamID {
				ids = append(ids, e.StreamID)
			}
		}
		clear(heads)
		rows, _ := s.pool.Query(ctx, qStreamHeads, ids)
		var id string
		var h head
		if _, err := pgx.ForEachRow(rows, []any{&id, &h.version, &h.hash}, func() error {
			heads[id] = h
			return nil
		}); err != nil {
			return rep, fmt.Errorf("verify: stream heads: %w", err)
		}
		for _, e := range events {
			if e.StreamID != curStream {
				if err := finishStream(); err != nil {
					return rep, err
				}
				curStream, curVersion, prevHash = e.StreamID, 0, genesisHash
				rep.Streams++
			}
			if e.Version != curVersion+1 {
				return rep, &BrokenChainError{Position: e.Position, StreamID: e.StreamID, Version: e.Version,
					Reason: fmt.Sprintf("version %d follows %d", e.Version, curVersion)}
			}
			if !bytes.Equal(e.PrevHash, prevHash) {
				return rep, &BrokenChainError{Position: e.Position, StreamID: e.StreamID, Version: e.Version,
					Reason: "prev_hash does not match the previous event's hash"}
			}
			want, err := recomputeHash(prevHash, e)
			if err != nil {
				return rep, &BrokenChainError{Position: e.Position, StreamID: e.StreamID, Version: e.Version, Reason: err.Error()}
			}
			if !bytes.Equal(want, e.Hash) {
				return rep, &BrokenChainError{Position: e.Position, StreamID: e.StreamID, Version: e.Version,
					Reason: "content does not match its hash"}
			}
			prevHash, curVersion = e.Hash, e.Version
			rep.Events++
		}
		if progress != nil {
			progress(rep.Events)
		}
		if len(events) < verifyPage {
			break
		}
		last := events[len(events)-1]
		lastStream, lastVer = last.StreamID, last.Version
	}
	if err := finishStream(); err != nil {
		return rep, err
	}
	return rep, nil
}

// recomputeHash derives an event's hash from what the database holds.
func recomputeHash(prev []byte, e Event) ([]byte, error) {
	data, err := canonicalJSON(e.Data)
	if err != nil {
		return nil, err
	}
	metaRaw, err := canonicalJSON(e.rawMetadata)
	if err != nil {
		return nil, err
	}
	return chainHash(prev, hashInput{
		TenantID: e.TenantID, StreamID: e.StreamID, Version: e.Version, Type: e.Type,
		SchemaVersion: e.SchemaVersion, RecordedAtUS: e.RecordedAt.UnixMicro(), Data: data, Metadata: metaRaw,
	}), nil
}
