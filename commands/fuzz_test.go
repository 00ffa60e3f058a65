package commands

import (
	"bytes"
	"errors"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

// FuzzParseImport: any file parses to rows and row errors, or is refused
// with a ValidationError; never a panic. `make fuzz` runs it for a bounded
// time; `go test` runs the seeds.
func FuzzParseImport(f *testing.F) {
	h := "First Name,Last Name,Email,Phone Number,Team\n"
	for _, seed := range []string{
		h + "Ada,Lovelace,ada@client.example,+44 1,uma@acme.example;bob@acme.example\n",
		h + "Alan,Turing,alan@client.example,,\n", h + "Bob,,not-an-email,,\n", h + "a,b\n",
		"\ufeff" + h, h + "\"quoted, name\",x,q@client.example,,\n", h + "\"unterminated", "", "x,y\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rows, rowErrs, err := parseImport(bytes.NewReader(body))
		if err != nil {
			var invalid *domain.ValidationError
			if !errors.As(err, &invalid) {
				t.Fatalf("%q: %v is not a ValidationError", body, err)
			}
			return
		}
		if len(rows)+len(rowErrs) > MaxImportRows {
			t.Fatalf("%q: %d rows and %d row errors", body, len(rows), len(rowErrs))
		}
		for _, r := range rows {
			if r.n < 1 || r.profile.Email == "" {
				t.Fatalf("%q: row %+v", body, r)
			}
		}
	})
}
