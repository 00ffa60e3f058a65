package eventstore

import (
	"context"
	"encoding/binary"
	"fmt"
)

// Hashed is what an event's hash covers, as bytes anyone can check without
// a database: sha256(Bytes) is Hash (the ledger log's audit exports carry
// them; ledgerlog.ParseHashed reads them back).
type Hashed struct {
	Hash  []byte
	Bytes []byte
}

// hashedBytes is prev followed by the length-prefixed fields chainHash
// hashes, in its order (TestHashedBytesAreWhatTheHashCovers keeps them
// together).
func hashedBytes(prev []byte, in hashInput) []byte {
	out := append([]byte(nil), prev...)
	field := func(b []byte) {
		out = binary.BigEndian.AppendUint64(out, uint64(len(b)))
		out = append(out, b...)
	}
	num := func(v int64) { out = binary.BigEndian.AppendUint64(out, uint64(v)) }
	field([]byte(in.TenantID))
	field([]byte(in.StreamID))
	num(in.Version)
	field([]byte(in.Type))
	num(int64(in.SchemaVersion))
	num(in.RecordedAtUS)
	field(in.Data)
	field(in.Metadata)
	return out
}

// HashedOf returns the bytes each of the tenant's events at positions
// hashes, by position (positions of other tenants are left out).
func (s *Store) HashedOf(ctx context.Context, tenantID string, positions []int64) (map[int64]Hashed, error) {
	events, err := collect(s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE tenant_id = $1 AND position = ANY($2::bigint[])`,
		tenantID, positions))
	if err != nil {
		return nil, fmt.Errorf("read hashed events: %w", err)
	}
	out := make(map[int64]Hashed, len(events))
	for _, e := range events {
		data, err := canonicalJSON(e.Data)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
		meta, err := canonicalJSON(e.rawMetadata)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
		out[e.Position] = Hashed{Hash: e.Hash, Bytes: hashedBytes(e.PrevHash, hashInput{
			TenantID: e.TenantID, StreamID: e.StreamID, Version: e.Version, Type: e.Type,
			SchemaVersion: e.SchemaVersion, RecordedAtUS: e.RecordedAt.UnixMicro(), Data: data, Metadata: meta,
		})}
	}
	return out, nil
}

// EventHash is an event's place and stored chain hash: what the ledger
// log's tree is recomputed from.
type EventHash struct {
	Position int64
	StreamID string
	Version  int64
	Hash     []byte
}

const qTenantHashes = `SELECT position, stream_id::text, stream_version, hash FROM events
WHERE tenant_id = $1::uuid ORDER BY transaction_id, position`

// TenantHashes reads the tenant's events' hashes in commit order (the order
// subscribers read), straight from the events table.
func (s *Store) TenantHashes(ctx context.Context, tenantID string) ([]EventHash, error) {
	rows, err := s.pool.Query(ctx, qTenantHashes, tenantID)
	if err != nil {
		return nil, fmt.Errorf("read the tenant's event hashes: %w", translate(err))
	}
	defer rows.Close()
	var out []EventHash
	for rows.Next() {
		var e EventHash
		if err := rows.Scan(&e.Position, &e.StreamID, &e.Version, &e.Hash); err != nil {
			return nil, fmt.Errorf("read the tenant's event hashes: %w", translate(err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the tenant's event hashes: %w", translate(err))
	}
	return out, nil
}
