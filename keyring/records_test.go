package keyring_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/assignment-ledger/ledger/keyring"
)

func TestSealedRecordsOpenOnlyWithTheirKeyAndPurpose(t *testing.T) {
	kr := newKeyring(t)
	dk, err := kr.NewDataKey(customer)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"first_name":"Ada","email":"ada@example.org"}`)
	rec, err := dk.SealRecord(keyring.PurposeOutbox, plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec, []byte("Ada")) || bytes.Contains(rec, []byte("ada@example.org")) {
		t.Fatalf("sealed record shows the plaintext: %s", rec)
	}
	r, ok := keyring.ParseSealedRecord(rec)
	if !ok || r.CustomerID != customer {
		t.Fatalf("parse %s: %+v %v", rec, r, ok)
	}
	if got, err := dk.OpenRecord(keyring.PurposeOutbox, r); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %s %v", got, err)
	}
	// Another purpose, another customer's key, no key: refused.
	if _, err := dk.OpenRecord(keyring.PurposeAnswer, r); err == nil {
		t.Fatal("a record opened under another purpose")
	}
	other, _ := kr.NewDataKey("01a00000-0000-7000-8000-000000000002")
	if _, err := other.OpenRecord(keyring.PurposeOutbox, r); err == nil {
		t.Fatal("a record opened with another customer's key")
	}
	if _, err := (keyring.DataKey{}).OpenRecord(keyring.PurposeOutbox, r); !errors.Is(err, keyring.ErrErasedRecord) {
		t.Fatalf("no key: %v", err)
	}
	if _, ok := keyring.ParseSealedRecord(plain); ok {
		t.Fatal("a clear payload parsed as sealed")
	}
	// Fields a reader adds beside the sealed ones do not stop it parsing.
	if _, ok := keyring.ParseSealedRecord(append(rec[:len(rec)-1:len(rec)-1], []byte(`,"subject":"Hi"}`)...)); !ok {
		t.Fatal("a sealed record with a field beside did not parse")
	}
}

func TestRequestMACIsKeyed(t *testing.T) {
	a, b := newKeyring(t), newKeyring(t)
	h := []byte("the sha-256 of a request")
	if !bytes.Equal(a.RequestMAC(h), a.RequestMAC(h)) {
		t.Fatal("RequestMAC is not deterministic")
	}
	if bytes.Equal(a.RequestMAC(h), b.RequestMAC(h)) || bytes.Equal(a.RequestMAC(h), h) {
		t.Fatal("RequestMAC does not depend on the KEK")
	}
}
