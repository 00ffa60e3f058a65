package ledgerlog

import (
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestKeysSignAndOpen: every generated key (base64 often holds '+', the
// format's separator) signs checkpoints its derived verifier key opens,
// and a changed body or another key does not open.
func TestKeysSignAndOpen(t *testing.T) {
	t.Parallel()
	other, _, err := note.GenerateKey(rand.Reader, "other.example")
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ParseKey(other)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 64 {
		skey, vkey, err := note.GenerateKey(rand.Reader, "ledger.example")
		if err != nil {
			t.Fatal(err)
		}
		k, err := ParseKey(skey + "\n")
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		if k.Verifier != vkey {
			t.Fatalf("key %d: derived verifier %q, generated %q", i, k.Verifier, vkey)
		}
		cp := Checkpoint{Origin: Origin("https://ledger.example/", "01234567-89ab-cdef-0123-456789abcdef"), Size: int64(i + 1), Root: tlog.RecordHash([]byte{byte(i)})}
		signed, err := Sign(cp, k.Signer)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Open([]byte(signed), vkey)
		if err != nil || got != cp {
			t.Fatalf("key %d: opened %+v (%v), signed %+v", i, got, err, cp)
		}
		if _, err := Open([]byte(signed), otherKey.Verifier); err == nil {
			t.Fatal("opened with another key")
		}
		forged := strings.Replace(signed, "\n"+cp.Body()[len(cp.Origin)+1:], "\n9"+cp.Body()[len(cp.Origin)+1:], 1)
		if _, err := Open([]byte(forged), vkey); err == nil {
			t.Fatalf("a changed body opened: %q", forged)
		}
	}
	if _, err := ParseKey("PRIVATE+KEY+x+00000000+AAAA"); err == nil {
		t.Fatal("a malformed key parsed")
	}
	for _, bad := range []string{"", "origin\n12\n", "origin\n-1\nAAAA\n", "origin\n01\n" + strings.Repeat("A", 44) + "\n", "origin\n1\nAAAA\n"} {
		if _, err := ParseCheckpoint(bad); err == nil {
			t.Errorf("checkpoint %q parsed", bad)
		}
	}
}
