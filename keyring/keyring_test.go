package keyring_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/assignment-ledger/ledger/keyring"
)

func newKeyring(t *testing.T) *keyring.Keyring {
	t.Helper()
	kek, err := keyring.ParseKEK(keyring.NewKEK())
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

const customer = "01a00000-0000-7000-8000-000000000001"

var v1 = []byte(`{"customer_id":"` + customer + `","first_name":"Ada","last_name":"Lovelace","email":"ada@example.org","phone":"","external_id":"A-1"}`)

func TestSealOpenRoundTrip(t *testing.T) {
	kr := newKeyring(t)
	dk, err := kr.NewDataKey(customer)
	if err != nil {
		t.Fatal(err)
	}
	schema, sealed, err := dk.Seal("CustomerRegistered", 1, v1)
	if err != nil || schema != keyring.SealedSchema {
		t.Fatalf("seal: %d %v", schema, err)
	}
	if bytes.Contains(sealed, []byte("Ada")) || bytes.Contains(sealed, []byte("ada@example.org")) || !bytes.Contains(sealed, []byte(customer)) {
		t.Fatalf("sealed data %s", sealed)
	}
	schema, opened, erased, err := kr.Open("CustomerRegistered", schema, sealed, dk.Wrapped)
	if err != nil || schema != 1 || erased {
		t.Fatalf("open: %d %v %v", schema, erased, err)
	}
	var want, got map[string]any
	_ = json.Unmarshal(v1, &want)
	_ = json.Unmarshal(opened, &got)
	if len(got) != len(want) || got["email"] != "ada@example.org" || got["customer_id"] != customer {
		t.Fatalf("opened %s, want %s", opened, v1)
	}
	// Other events are left as they are, both ways.
	if s, d, _ := dk.Seal("UserAssigned", 1, []byte(`{"x":1}`)); s != 1 || string(d) != `{"x":1}` {
		t.Fatalf("sealed a non-personal event: %d %s", s, d)
	}
}

func TestOpenWithoutKeyIsErased(t *testing.T) {
	kr := newKeyring(t)
	dk, _ := kr.NewDataKey(customer)
	_, sealed, _ := dk.Seal("ClientInvited", 1, v1)
	schema, opened, erased, err := kr.Open("ClientInvited", keyring.SealedSchema, sealed, nil)
	if err != nil || !erased || schema != 1 || string(opened) != `{"customer_id":"`+customer+`","erased":true}` {
		t.Fatalf("open without key: %s %v %v", opened, erased, err)
	}
}

func TestWrongKEKAndWrongCustomerFail(t *testing.T) {
	a, b := newKeyring(t), newKeyring(t)
	dk, _ := a.NewDataKey(customer)
	_, sealed, _ := dk.Seal("CustomerUpdated", 1, v1)
	if _, _, _, err := b.Open("CustomerUpdated", keyring.SealedSchema, sealed, dk.Wrapped); !errors.Is(err, keyring.ErrWrongKEK) {
		t.Fatalf("another KEK opened a key: %v", err)
	}
	// A wrapped key is bound to its customer: moved to another, it fails.
	if _, err := a.Unwrap("01a00000-0000-7000-8000-000000000002", dk.Wrapped); !errors.Is(err, keyring.ErrWrongKEK) {
		t.Fatalf("a key unwrapped for another customer: %v", err)
	}
	other, _ := a.NewDataKey("01a00000-0000-7000-8000-000000000002")
	if _, _, err := other.Seal("CustomerUpdated", 1, v1); err == nil {
		t.Fatal("sealed another customer's event")
	}
}

func TestClaimValueHidesTheValue(t *testing.T) {
	kr := newKeyring(t)
	// The value searched for holds letters hex cannot ("ada" alone turned
	// up in a random HMAC once in a while).
	v := kr.ClaimValue("customer_email", "grace.hopper@example.org")
	if !strings.HasPrefix(v, keyring.ClaimPrefix) || strings.Contains(v, "grace") || strings.Contains(v, "example") ||
		v != kr.ClaimValue("customer_email", "grace.hopper@example.org") ||
		v == kr.ClaimValue("customer_external_id", "grace.hopper@example.org") || v == newKeyring(t).ClaimValue("customer_email", "grace.hopper@example.org") {
		t.Fatalf("claim value %q", v)
	}
}

func TestParseKEK(t *testing.T) {
	if _, err := keyring.ParseKEK("c2hvcnQ="); err == nil {
		t.Fatal("a 5-byte KEK was accepted")
	}
	if _, err := keyring.ParseKEK("not base64!"); err == nil {
		t.Fatal("garbage was accepted")
	}
	if _, err := keyring.ParseKEK(keyring.NewKEK() + "\n"); err != nil {
		t.Fatal(err)
	}
}

// A follow-up keeps what is not personal in clear (schema 3): erasure then
// shreds its note and leaves its ID, due time, recipients and author.
func TestFollowUpSealedPartly(t *testing.T) {
	kr := newKeyring(t)
	dk, _ := kr.NewDataKey(customer)
	v1 := []byte(`{"follow_up_id":"f-1","customer_id":"` + customer + `","due_at":"2026-12-08T09:00:00Z","note":"call Ada about her divorce","to":"lead","created_by":"u-1"}`)
	schema, sealed, err := dk.Seal("FollowUpScheduled", 1, v1)
	if err != nil || schema != keyring.SealedPartlySchema {
		t.Fatalf("seal: %d %v", schema, err)
	}
	if bytes.Contains(sealed, []byte("divorce")) || !bytes.Contains(sealed, []byte(`"f-1"`)) || !bytes.Contains(sealed, []byte(`"u-1"`)) {
		t.Fatalf("sealed data %s", sealed)
	}
	// As jsonb hands it back: keys reordered, spaces added.
	var stored map[string]any
	_ = json.Unmarshal(sealed, &stored)
	back, _ := json.MarshalIndent(stored, "", " ")

	_, opened, erased, err := kr.Open("FollowUpScheduled", schema, back, dk.Wrapped)
	var want, got map[string]any
	_ = json.Unmarshal(v1, &want)
	if err != nil || erased || json.Unmarshal(opened, &got) != nil || len(got) != len(want) {
		t.Fatalf("open: %s %v %v", opened, erased, err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("opened %s: %s is %v, want %v", opened, k, got[k], v)
		}
	}

	_, opened, erased, err = kr.Open("FollowUpScheduled", schema, back, nil)
	got = nil
	if err != nil || !erased || json.Unmarshal(opened, &got) != nil {
		t.Fatalf("open erased: %s %v %v", opened, erased, err)
	}
	for _, k := range []string{"follow_up_id", "customer_id", "due_at", "to", "created_by"} {
		if got[k] != want[k] {
			t.Fatalf("erased %s: %s is %v, want %v", opened, k, got[k], want[k])
		}
	}
	if _, ok := got["note"]; ok || got["erased"] != true {
		t.Fatalf("erased %s keeps the note or lacks the flag", opened)
	}
	// The clear fields are not authenticated by the seal, but the hash
	// chain covers the stored bytes; a follow-up written before version 3
	// (version 2) still opens, to its customer ID alone once erased.
	_, v2, _ := dk.Seal("CustomerRegistered", 1, []byte(`{"customer_id":"`+customer+`","first_name":"A"}`))
	if _, opened, erased, err := kr.Open("FollowUpScheduled", keyring.SealedSchema, v2, nil); err != nil || !erased ||
		string(opened) != `{"customer_id":"`+customer+`","erased":true}` {
		t.Fatalf("version 2 erased: %s %v %v", opened, erased, err)
	}
}
