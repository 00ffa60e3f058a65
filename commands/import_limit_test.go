package commands

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

// A file of MaxImportRows rows is read whole; one more row is refused
// (naming the limit) before anything is decided.
func TestImportRowLimit(t *testing.T) {
	t.Parallel()
	file := func(n int) string {
		var b strings.Builder
		b.WriteString("Email,First Name\n")
		for i := range n {
			fmt.Fprintf(&b, "c%d@limit.example,C%d\n", i, i)
		}
		return b.String()
	}
	rows, rowErrs, err := parseImport(strings.NewReader(file(MaxImportRows)))
	if err != nil || len(rows) != MaxImportRows || len(rowErrs) != 0 {
		t.Fatalf("%d rows: %d read, %d row errors, %v", MaxImportRows, len(rows), len(rowErrs), err)
	}
	_, _, err = parseImport(strings.NewReader(file(MaxImportRows + 1)))
	var invalid *domain.ValidationError
	if !errors.As(err, &invalid) || !strings.Contains(invalid.Detail, fmt.Sprint(MaxImportRows)) {
		t.Fatalf("%d rows: %v, want a validation error naming the limit", MaxImportRows+1, err)
	}
}

// Spreadsheets' CSV as they write it (found by hostile testing): lines
// ending with a lone CR (a Mac's "CSV (Macintosh)") are lines, not one
// row; rows of empty cells after the data (or between rows) hold no
// customer and are skipped, counted so that later rows keep their numbers.
func TestImportReadsSpreadsheetCSV(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, file string
		emails     []string
		errRows    []int
	}{
		{"CR line ends", "First Name,Email\rAnn,ann@x.example\rBob,bob@x.example\r", []string{"ann@x.example", "bob@x.example"}, nil},
		{"CRLF line ends", "First Name,Email\r\nAnn,ann@x.example\r\n", []string{"ann@x.example"}, nil},
		// A line break in a name is refused, a CR as any other.
		{"a CR in a quoted field", "First Name,Email\r\"A\rnn\",ann@x.example\rBob,bob@x.example\r", []string{"bob@x.example"}, []int{1}},
		{"empty rows after the data", "First Name,Email\nAnn,ann@x.example\n,\n , \n", []string{"ann@x.example"}, nil},
		{"an empty row between", "First Name,Email\nAnn,ann@x.example\n,\nBob,bad\n", []string{"ann@x.example"}, []int{3}},
	} {
		rows, rowErrs, err := parseImport(strings.NewReader(c.file))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var emails []string
		for _, r := range rows {
			emails = append(emails, r.profile.Email)
		}
		var errRows []int
		for _, e := range rowErrs {
			errRows = append(errRows, e.Row)
		}
		if !slices.Equal(emails, c.emails) || !slices.Equal(errRows, c.errRows) {
			t.Errorf("%s: rows %v, row errors %v; want %v, %v", c.name, emails, rowErrs, c.emails, c.errRows)
		}
	}
}
