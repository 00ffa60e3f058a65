package commands

import (
	"errors"
	"fmt"
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
