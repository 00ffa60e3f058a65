package xlsx_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/assignment-ledger/ledger/internal/office"
	"github.com/assignment-ledger/ledger/internal/xlsx"
)

// The writer's workbook opens in excelize and in LibreOffice with every
// cell as written: text that looks like a formula stays text, markup, white
// space and text that looks like SpreadsheetML's own escapes survive.
func TestXLSXOpensInExcelizeAndLibreOffice(t *testing.T) {
	rows := [][]string{
		{"id", "name", "note"},
		{"1", "Ada <Lovelace> & co", "=1+1"},
		{"2", "two  spaces", "+33 1 23"},
		{"3", "", "@SUM(A1)"},
		{"4", "Zoë \"quoted\"", "-2"},
		{"5", "_x0041_ stays", " lead and trail "},
	}
	// More columns than letters, so that two-letter references are right.
	wide := make([]string, 30)
	for i := range wide {
		wide[i] = string(rune('a' + i%26))
	}
	rows = append(rows, wide)

	var buf bytes.Buffer
	w, err := xlsx.NewWriter(&buf, "Customers")
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

	f, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.GetRows("Customers")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "excelize", got, rows)
	if formula, _ := f.GetCellFormula("Customers", "C2"); formula != "" {
		t.Errorf("a formula cell %q", formula)
	}
	if v, _ := f.GetCellValue("Customers", "AD7"); v != wide[29] {
		t.Errorf("AD7 = %q, want %q", v, wide[29])
	}
	same(t, "LibreOffice", office.ToCSV(t, buf.Bytes(), "xlsx", ""), rows)
}

func same(t *testing.T, reader string, got, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s read %d rows: %q", reader, len(got), got)
	}
	for i := range want {
		w := slices.Clone(want[i])
		// Readers pad a row to the sheet's width: keep widths equal.
		for len(got[i]) < len(w) {
			got[i] = append(got[i], "")
		}
		for len(w) < len(got[i]) {
			w = append(w, "")
		}
		if !slices.Equal(got[i], w) {
			t.Errorf("%s row %d: read %q, wrote %q", reader, i, got[i], w)
		}
	}
}
