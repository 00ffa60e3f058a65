package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/assignment-ledger/ledger/ledgerlog"
)

// ledgerCheckpoint is GET /v1/ledger/checkpoint as JSON.
type ledgerCheckpoint struct {
	Origin   string `json:"origin"`
	TreeSize int64  `json:"tree_size"`
	RootHash string `json:"root_hash"`
	Position int64  `json:"position"`
	Note     string `json:"note"`
}

// checkpointAfter takes a checkpoint once the tree holds position pos, and
// checks its signature with the published key, as an auditor would.
func (b *testBundle) checkpointAfter(t *testing.T, pos string) (ledgerCheckpoint, []byte) {
	t.Helper()
	var cp ledgerCheckpoint
	b.admin.must(200, "GET", "/v1/ledger/checkpoint", nil, hdr{"Accept": "application/json", "X-Min-Position": pos}).decode(t, &cp)
	vkey := (&client{t: t, base: b.base}).must(200, "GET", "/v1/ledger/public-key", nil)
	opened, err := ledgerlog.Open([]byte(cp.Note), string(vkey.body))
	if err != nil {
		t.Fatalf("checkpoint does not verify with the published key: %v", err)
	}
	if opened.Size != cp.TreeSize || base64.StdEncoding.EncodeToString(opened.Root[:]) != cp.RootHash ||
		opened.Origin != "https://ledger.example/tenants/"+b.tenant || cp.Origin != opened.Origin {
		t.Fatalf("checkpoint fields %+v do not match its note %+v", cp, opened)
	}
	return cp, opened.Root[:]
}

// tenantLeafHashes are the RFC 6962 leaf hashes of the tenant's events in
// commit order, computed here with the independent library.
func (b *testBundle) tenantLeafHashes(t *testing.T) [][]byte {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT hash FROM events WHERE tenant_id = $1 ORDER BY transaction_id, position`, b.tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		out = append(out, rfc6962.DefaultHasher.HashLeaf(h))
	}
	return out
}

func decodeHashes(t *testing.T, in []string) [][]byte {
	t.Helper()
	out := make([][]byte, len(in))
	for i, s := range in {
		var err error
		if out[i], err = base64.StdEncoding.DecodeString(s); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

type inclusion struct {
	LeafIndex int64    `json:"leaf_index"`
	TreeSize  int64    `json:"tree_size"`
	LeafHash  string   `json:"leaf_hash"`
	Hashes    []string `json:"hashes"`
}

func (b *testBundle) inclusionProof(t *testing.T, leaf, size int64) inclusion {
	t.Helper()
	var p inclusion
	b.admin.must(200, "GET", fmt.Sprintf("/v1/ledger/proofs/inclusion?leaf_index=%d&tree_size=%d", leaf, size), nil).decode(t, &p)
	return p
}

func (b *testBundle) consistencyProof(t *testing.T, from, to int64) [][]byte {
	t.Helper()
	var p struct {
		From, To int64
		Hashes   []string `json:"hashes"`
	}
	b.admin.must(200, "GET", fmt.Sprintf("/v1/ledger/proofs/consistency?from=%d&to=%d", from, to), nil).decode(t, &p)
	if p.From != from || p.To != to {
		t.Fatalf("consistency proof for %d..%d answers %d..%d", from, to, p.From, p.To)
	}
	return decodeHashes(t, p.Hashes)
}

// verifyAllInclusions checks every leaf's served inclusion proof against a
// checkpoint with transparency-dev/merkle, and the served leaf hash against
// the event's own.
func verifyAllInclusions(t *testing.T, b *testBundle, cp ledgerCheckpoint, root []byte, leaves [][]byte) {
	t.Helper()
	for i := int64(0); i < cp.TreeSize; i++ {
		p := b.inclusionProof(t, i, cp.TreeSize)
		leaf, err := base64.StdEncoding.DecodeString(p.LeafHash)
		if err != nil {
			t.Fatal(err)
		}
		if string(leaf) != string(leaves[i]) {
			t.Errorf("leaf %d: served leaf hash is not the RFC 6962 leaf hash of the event's stored hash", i)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(cp.TreeSize), leaves[i], decodeHashes(t, p.Hashes), root); err != nil {
			t.Errorf("leaf %d of %d: inclusion proof does not verify: %v", i, cp.TreeSize, err)
		}
	}
}

// TestLedgerLogProofsVerifyWithAnIndependentLibrary: checkpoints and the
// proofs served against them verify with transparency-dev/merkle (another
// RFC 6962 implementation than the server's), before and after an erasure.
func TestLedgerLogProofsVerifyWithAnIndependentLibrary(t *testing.T) {
	b := setup(t)
	var ids []string
	var pos string
	for i := range 5 {
		r := b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": fmt.Sprintf("C%d", i), "last_name": "Client",
			"email": fmt.Sprintf("c%d@client.example", i)})
		ids, pos = append(ids, r.json(t)["id"].(string)), r.header.Get("X-Ledger-Position")
	}
	cp1, root1 := b.checkpointAfter(t, pos)
	leaves := b.tenantLeafHashes(t)
	if cp1.TreeSize != int64(len(leaves)) {
		t.Fatalf("checkpoint of %d leaves, the tenant has %d events", cp1.TreeSize, len(leaves))
	}
	if root := rfc6962RootOf(leaves); string(root) != string(root1) {
		t.Fatal("the checkpoint's root is not the RFC 6962 root of the tenant's events")
	}
	text := b.admin.must(200, "GET", "/v1/ledger/checkpoint", nil)
	if string(text.body) != cp1.Note || text.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("text/plain checkpoint %q (%s), JSON note %q", text.body, text.header.Get("Content-Type"), cp1.Note)
	}
	verifyAllInclusions(t, b, cp1, root1, leaves)

	// An erasure after the checkpoint changes no leaf: every proof against
	// it still verifies, and the new tree extends it.
	b.admin.must(204, "DELETE", "/v1/customers/"+ids[0], nil)
	r := b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": "Late", "last_name": "Client", "email": "late@client.example"})
	cp2, root2 := b.checkpointAfter(t, r.header.Get("X-Ledger-Position"))
	if cp2.TreeSize <= cp1.TreeSize {
		t.Fatalf("tree did not grow: %d then %d", cp1.TreeSize, cp2.TreeSize)
	}
	leaves = b.tenantLeafHashes(t)
	verifyAllInclusions(t, b, cp1, root1, leaves)
	verifyAllInclusions(t, b, cp2, root2, leaves)
	for from := int64(1); from <= cp2.TreeSize; from++ {
		hashes := b.consistencyProof(t, from, cp2.TreeSize)
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(from), uint64(cp2.TreeSize), hashes,
			rfc6962RootOf(leaves[:from]), root2); err != nil {
			t.Errorf("consistency %d..%d does not verify: %v", from, cp2.TreeSize, err)
		}
	}
	// Audit entries and history items name their leaves: the leaf of each
	// is the leaf hash of the event's stored hash.
	var audit struct {
		Items []struct {
			Position  int64  `json:"position"`
			LeafIndex *int64 `json:"leaf_index"`
		}
	}
	b.admin.must(200, "GET", "/v1/audit?limit=500", nil, hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")}).decode(t, &audit)
	var history struct {
		Items []struct {
			Position  int64  `json:"position"`
			LeafIndex *int64 `json:"leaf_index"`
		}
	}
	b.admin.must(200, "GET", "/v1/customers/"+ids[1]+"/history", nil).decode(t, &history)
	if len(audit.Items) != len(leaves) || len(history.Items) == 0 {
		t.Fatalf("%d audit entries, %d history items, %d leaves", len(audit.Items), len(history.Items), len(leaves))
	}
	for _, it := range append(audit.Items, history.Items...) {
		var h []byte
		if err := b.pool.QueryRow(context.Background(), `SELECT hash FROM events WHERE position = $1`, it.Position).Scan(&h); err != nil {
			t.Fatal(err)
		}
		if it.LeafIndex == nil || string(leaves[*it.LeafIndex]) != string(rfc6962.DefaultHasher.HashLeaf(h)) {
			t.Errorf("event %d: leaf_index %v is not its leaf", it.Position, it.LeafIndex)
		}
	}

	var list struct{ Items []ledgerCheckpoint }
	b.admin.must(200, "GET", "/v1/ledger/checkpoints", nil).decode(t, &list)
	if len(list.Items) != 2 || list.Items[0].Note != cp1.Note || list.Items[1].Note != cp2.Note {
		t.Errorf("checkpoints listed: %+v", list.Items)
	}
	b.admin.must(200, "GET", "/v1/ledger/checkpoints?to=2000-01-01T00:00:00Z", nil).decode(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("checkpoints before 2000: %+v", list.Items)
	}
	// Paged like every list, oldest first.
	var pg struct {
		Items      []ledgerCheckpoint
		NextCursor string `json:"next_cursor"`
	}
	b.admin.must(200, "GET", "/v1/ledger/checkpoints?limit=1", nil).decode(t, &pg)
	if len(pg.Items) != 1 || pg.Items[0].Note != cp1.Note || pg.NextCursor == "" {
		t.Fatalf("first page: %+v", pg)
	}
	next := pg.NextCursor
	pg.NextCursor = ""
	b.admin.must(200, "GET", "/v1/ledger/checkpoints?limit=1&cursor="+next, nil).decode(t, &pg)
	if len(pg.Items) != 1 || pg.Items[0].Note != cp2.Note || pg.NextCursor != "" {
		t.Fatalf("second page: %+v", pg)
	}

	// Bad input: 400 naming the parameter; members: 403; no key: 401.
	for path, field := range map[string]string{
		fmt.Sprintf("/v1/ledger/proofs/inclusion?leaf_index=%d&tree_size=%d", cp1.TreeSize, cp1.TreeSize): "leaf_index",
		fmt.Sprintf("/v1/ledger/proofs/inclusion?leaf_index=0&tree_size=%d", cp2.TreeSize+100):            "tree_size",
		"/v1/ledger/proofs/inclusion?leaf_index=0":                                                        "tree_size",
		"/v1/ledger/proofs/inclusion?leaf_index=x&tree_size=1":                                            "leaf_index",
		"/v1/ledger/proofs/consistency?from=3&to=2":                                                       "from",
		"/v1/ledger/proofs/consistency?from=0&to=2":                                                       "from",
		fmt.Sprintf("/v1/ledger/proofs/consistency?from=1&to=%d", cp2.TreeSize+1):                         "to",
		"/v1/ledger/checkpoints?from=yesterday":                                                           "from",
		"/v1/ledger/checkpoints?limit=abc":                                                                "limit",
		"/v1/ledger/checkpoints?cursor=e30":                                                               "cursor",
	} {
		var p struct{ Field, Code string }
		b.admin.must(400, "GET", path, nil).decode(t, &p)
		if p.Field != field || p.Code == "" {
			t.Errorf("GET %s: problem %+v, want field %s", path, p, field)
		}
	}
	member := b.createUser(t, "Mo Member", "member")
	for _, path := range []string{"/v1/ledger/checkpoint", "/v1/ledger/checkpoints", "/v1/ledger/proofs/inclusion?leaf_index=0&tree_size=1",
		"/v1/ledger/proofs/consistency?from=1&to=1"} {
		member.must(403, "GET", path, nil)
		(&client{t: t, base: b.base}).must(401, "GET", path, nil)
	}
}

// TestLedgerLogTamperedTreeFailsClientVerification: an insider who edits
// the stored tree makes the served proofs fail a client's verification
// against a checkpoint taken before.
func TestLedgerLogTamperedTreeFailsClientVerification(t *testing.T) {
	b := setup(t)
	var pos string
	for i := range 4 {
		r := b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": fmt.Sprintf("C%d", i), "last_name": "Client",
			"email": fmt.Sprintf("c%d@client.example", i)})
		pos = r.header.Get("X-Ledger-Position")
	}
	cp, root := b.checkpointAfter(t, pos)
	leaves := b.tenantLeafHashes(t)
	forged := sha256.Sum256([]byte("forged"))
	// Stored hash 0 is leaf 0's hash, the first 32 bytes of the tile at
	// level 0, number 0: leaf 1's proof carries it.
	tag, err := b.pool.Exec(context.Background(), `UPDATE ledger_tiles SET hashes = overlay(hashes placing $2 from 1 for 32)
		WHERE tenant_id = $1 AND level = 0 AND n = 0`, b.tenant, forged[:])
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("tamper with the tile: %v, %d rows", err, tag.RowsAffected())
	}
	p := b.inclusionProof(t, 1, cp.TreeSize)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 1, uint64(cp.TreeSize), leaves[1], decodeHashes(t, p.Hashes), root); err == nil {
		t.Error("an inclusion proof from a tampered tree verified")
	}
	p = b.inclusionProof(t, 0, cp.TreeSize)
	leaf0, _ := base64.StdEncoding.DecodeString(p.LeafHash)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 0, uint64(cp.TreeSize), leaf0, decodeHashes(t, p.Hashes), root); err == nil {
		t.Error("a tampered leaf hash verified")
	}
}

// rfc6962RootOf is the root of leaves by the RFC's definition, computed
// with the independent library's hasher.
func rfc6962RootOf(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		return rfc6962.DefaultHasher.EmptyRoot()
	case 1:
		return leaves[0]
	}
	k := 1
	for k<<1 < len(leaves) {
		k <<= 1
	}
	return rfc6962.DefaultHasher.HashChildren(rfc6962RootOf(leaves[:k]), rfc6962RootOf(leaves[k:]))
}

// TestAuditExportWithProofsVerifiesOffline: an NDJSON audit export with
// proofs verifies with no database (ledgerlog.VerifyExport, what `ledger
// verify-export` runs), sealed and erased customers' events included, and
// an edited line, a removed line and a forged signature are caught.
func TestAuditExportWithProofsVerifiesOffline(t *testing.T) {
	b := setup(t)
	var ids []string
	for i := range 3 {
		ids = append(ids, b.createCustomer(t, fmt.Sprintf("Cust%d", i)))
	}
	b.admin.must(200, "POST", "/v1/customers/"+ids[1]+"/assignees", map[string]any{"user_id": "me"})
	r := b.admin.must(204, "DELETE", "/v1/customers/"+ids[2], nil)
	pos := r.header.Get("X-Ledger-Position")
	vkey := string((&client{t: t, base: b.base}).must(200, "GET", "/v1/ledger/public-key", nil).body)

	export := b.admin.must(200, "GET", "/v1/audit?proofs=true", nil, hdr{"Accept": "application/x-ndjson", "X-Min-Position": pos})
	rep, err := ledgerlog.VerifyExport(bytes.NewReader(export.body), vkey)
	if err != nil {
		t.Fatalf("export does not verify: %v\n%s", err, export.body)
	}
	if !rep.Complete || int64(rep.Events) != rep.TreeSize || rep.Sealed == 0 || rep.TreeSize != int64(len(b.tenantLeafHashes(t))) {
		t.Fatalf("report %+v", rep)
	}
	lines := strings.Split(strings.TrimSpace(string(export.body)), "\n")

	// An edited line: an assignment's lead flag turned.
	edited := slices.Clone(lines)
	i := slices.IndexFunc(edited, func(l string) bool { return strings.Contains(l, `"type":"UserAssigned"`) })
	if i < 0 {
		t.Fatal("no UserAssigned line")
	}
	if strings.Contains(edited[i], `"lead":true`) {
		edited[i] = strings.Replace(edited[i], `"lead":true`, `"lead":false`, 1)
	} else {
		edited[i] = strings.Replace(edited[i], `"lead":false`, `"lead":true`, 1)
	}
	if edited[i] == lines[i] {
		t.Fatalf("nothing to edit in %s", lines[i])
	}
	_, err = ledgerlog.VerifyExport(strings.NewReader(strings.Join(edited, "\n")), vkey)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("line %d ", i+1)) || !strings.Contains(err.Error(), "data") {
		t.Errorf("edited line %d: %v", i+1, err)
	}
	// Who caused an event, and the header's readable copy of the
	// checkpoint, are checked as the data is.
	forge := func(n int, edit func(map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[n]), &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(slices.Concat(lines[:n], []string{string(b)}, lines[n+1:]), "\n")
	}
	reg := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, `"type":"CustomerRegistered"`) })
	if reg < 0 {
		t.Fatal("no CustomerRegistered line")
	}
	for _, f := range []struct {
		what, want string
		line       int
		edit       func(map[string]any)
	}{
		// A sealed event's readable data is checked on what is in clear;
		// what it adds can only be fields its type has.
		{"a field added to a sealed event", "no CustomerRegistered event has", reg, func(m map[string]any) {
			m["data"].(map[string]any)["user_id"] = "00000000-0000-7000-8000-000000000000"
		}},
		{"the actor's user ID", "actor", i, func(m map[string]any) {
			m["actor"].(map[string]any)["user_id"] = "00000000-0000-7000-8000-000000000000"
		}},
		{"the actor's name", "actor", i, func(m map[string]any) { m["actor"].(map[string]any)["name"] = "Mallory" }},
		{"the correlation ID", "correlation ID", i, func(m map[string]any) { m["correlation_id"] = "forged" }},
		{"the header's tree size", "tree size", 0, func(m map[string]any) { m["tree_size"] = m["tree_size"].(float64) + 1 }},
		{"the header's root hash", "root hash", 0, func(m map[string]any) { m["root_hash"] = "AAAA" }},
		{"the header's origin", "origin", 0, func(m map[string]any) { m["origin"] = "https://elsewhere.example/tenants/x" }},
	} {
		_, err := ledgerlog.VerifyExport(strings.NewReader(forge(f.line, f.edit)), vkey)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("line %d", f.line+1)) || !strings.Contains(err.Error(), f.want) {
			t.Errorf("forged %s: %v", f.what, err)
		}
	}
	// Lines in another order verify (an export lists events by position,
	// which two overlapping transactions may commit the other way round:
	// found by hostile testing, a genuine export failed); a leaf given
	// twice, in place of another, does not. And a line whose data is given
	// twice (a reader keeping the first would see a forgery, this check the
	// last) fails.
	swapped := slices.Clone(lines)
	swapped[3], swapped[4] = swapped[4], swapped[3]
	if _, err := ledgerlog.VerifyExport(strings.NewReader(strings.Join(swapped, "\n")), vkey); err != nil {
		t.Errorf("swapped lines: %v", err)
	}
	dup := slices.Clone(lines)
	dup[4] = dup[3]
	if _, err := ledgerlog.VerifyExport(strings.NewReader(strings.Join(dup, "\n")), vkey); err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "earlier line") {
		t.Errorf("a leaf twice: %v", err)
	}
	twice := slices.Clone(lines)
	twice[i] = strings.Replace(lines[i], `"data":`, `"data":{"lead":true},"data":`, 1)
	if _, err := ledgerlog.VerifyExport(strings.NewReader(strings.Join(twice, "\n")), vkey); err == nil || !strings.Contains(err.Error(), "repeated") {
		t.Errorf("data given twice: %v", err)
	}
	// A removed line.
	removed := slices.Delete(slices.Clone(lines), 3, 4)
	if _, err := ledgerlog.VerifyExport(strings.NewReader(strings.Join(removed, "\n")), vkey); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("removed line: %v", err)
	}
	// A forged signature: another key's.
	other, _, err := ledgerlog.LoadOrCreateKey(filepath.Join(t.TempDir(), "other"), "ledger.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledgerlog.VerifyExport(bytes.NewReader(export.body), other.Verifier); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("other key: %v", err)
	}
	// A filtered export is not complete, and still verifies.
	filtered := b.admin.must(200, "GET", "/v1/audit?proofs=true&customer_id="+ids[1], nil, hdr{"Accept": "application/x-ndjson"})
	if rep, err := ledgerlog.VerifyExport(bytes.NewReader(filtered.body), vkey); err != nil || rep.Complete || rep.Events != 2 {
		t.Errorf("filtered export: %+v %v", rep, err)
	}
	// A time range that covers the whole log is the whole log, whatever its
	// unsigned header says: counted, not taken from it.
	ranged := b.admin.must(200, "GET", "/v1/audit?proofs=true&from=2000-01-01T00:00:00Z", nil, hdr{"Accept": "application/x-ndjson", "X-Min-Position": pos})
	if rep, err := ledgerlog.VerifyExport(bytes.NewReader(ranged.body), vkey); err != nil || !rep.Complete {
		t.Errorf("a range covering the whole log: %+v %v", rep, err)
	}
	for _, bad := range []struct{ path, accept string }{{"/v1/audit?proofs=true", "application/json"}, {"/v1/audit?proofs=yes", "application/x-ndjson"}} {
		var p struct{ Field string }
		b.admin.must(400, "GET", bad.path, nil, hdr{"Accept": bad.accept}).decode(t, &p)
		if p.Field != "proofs" {
			t.Errorf("GET %s (%s): field %q", bad.path, bad.accept, p.Field)
		}
	}
}
