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
