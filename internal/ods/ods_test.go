package ods_test

import (
	"archive/zip"
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/assignment-ledger/ledger/internal/ods"
	"github.com/assignment-ledger/ledger/internal/office"
)

// The writer's file opens in LibreOffice with every cell as written: text
// that looks like a formula stays text, white space and markup survive.
func TestODSOpensInLibreOffice(t *testing.T) {
	rows := [][]string{
		{"id", "name", "note"},
		{"1", "Ada <Lovelace> & co", "=1+1"},
		{"2", "two  spaces", "+33 1 23"},
		{"3", "", "@SUM(A1)"},
		{"4", "Zoë \"quoted\"", "-2"},
	}
	var buf bytes.Buffer
	w, err := ods.NewWriter(&buf, "Customers")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// The mimetype is the first entry, stored, as OpenDocument requires.
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	first := zr.File[0]
	rc, _ := first.Open()
	mt, _ := io.ReadAll(rc)
	if first.Name != "mimetype" || first.Method != zip.Store || string(mt) != ods.MediaType ||
		!bytes.Equal(buf.Bytes()[30:38], []byte("mimetype")) {
		t.Fatalf("first entry %q (method %d): %q", first.Name, first.Method, mt)
	}

	got := office.ToCSV(t, buf.Bytes(), "ods", "")
	if len(got) != len(rows) {
		t.Fatalf("LibreOffice read %d rows: %q", len(got), got)
	}
	for i := range rows {
		want := slices.Clone(rows[i])
		// LibreOffice's CSV drops trailing empty cells only when all are; keep widths equal.
		for len(got[i]) < len(want) {
			got[i] = append(got[i], "")
		}
		if !slices.Equal(got[i], want) {
			t.Errorf("row %d: LibreOffice read %q, wrote %q", i, got[i], want)
		}
	}
}
