// Package xlsx writes a one-sheet Office Open XML workbook (.xlsx) as a
// stream: rows go straight through a zip writer to the output, so a sheet
// of any length takes constant memory (excelize, like most XLSX writers,
// assembles the whole zip in memory before writing it out). The part of
// SpreadsheetML a table of text needs is small (ECMA-376 part 1, 18.3): the
// package's content types and relationships, a workbook naming one sheet,
// and the sheet, whose cells are inline strings (t="inlineStr"), so there
// is no shared-string table to build first and a value beginning with "="
// is text, never a formula.
package xlsx

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// MediaType is the XLSX workbook's media type.
const MediaType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

const (
	contentTypes = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
		`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
		`<Default Extension="xml" ContentType="application/xml"/>` +
		`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
		`<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>` +
		`</Types>`
	packageRels = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
		`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>` +
		`</Relationships>`
	workbookHead = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">` +
		`<sheets><sheet name="`
	workbookTail = `" sheetId="1" r:id="rId1"/></sheets></workbook>`
	workbookRels = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
		`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>` +
		`</Relationships>`
	sheetHead = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`
	sheetTail = `</sheetData></worksheet>`
)

// Writer writes one sheet, row by row. It is not safe for concurrent use.
type Writer struct {
	zw  *zip.Writer
	buf *bufio.Writer
	row int
	err error
}

// NewWriter starts a workbook on w with one sheet named sheet (at most 31
// characters, none of : \ / ? * [ ], as spreadsheet applications require).
func NewWriter(w io.Writer, sheet string) (*Writer, error) {
	zw := zip.NewWriter(w)
	parts := []struct{ name, text string }{
		{"[Content_Types].xml", contentTypes},
		{"_rels/.rels", packageRels},
		{"xl/workbook.xml", workbookHead + escapeXML(sheet) + workbookTail},
		{"xl/_rels/workbook.xml.rels", workbookRels},
	}
	for _, p := range parts {
		f, err := zw.Create(p.name)
		if err != nil {
			return nil, fmt.Errorf("xlsx: %s: %w", p.name, err)
		}
		if _, err := io.WriteString(f, p.text); err != nil {
			return nil, fmt.Errorf("xlsx: %s: %w", p.name, err)
		}
	}
	// The sheet comes last: it is the one entry written as rows arrive.
	f, err := zw.Create("xl/worksheets/sheet1.xml")
	if err != nil {
		return nil, fmt.Errorf("xlsx: sheet: %w", err)
	}
	xw := &Writer{zw: zw, buf: bufio.NewWriterSize(f, 32<<10)}
	xw.str(sheetHead)
	return xw, xw.err
}

// WriteRow appends a row of text cells; an empty string is an empty cell.
func (w *Writer) WriteRow(cells []string) error {
	w.row++
	r := strconv.Itoa(w.row)
	w.str(`<row r="` + r + `">`)
	for i, c := range cells {
		if c == "" {
			continue
		}
		w.str(`<c r="` + column(i) + r + `" t="inlineStr"><is><t xml:space="preserve">`)
		w.text(c)
		w.str(`</t></is></c>`)
	}
	w.str(`</row>`)
	return w.err
}

// Close ends the sheet; the zip is then complete. A Writer that failed
// earlier returns that error and leaves the archive unfinished (a reader
// sees a broken file, not a short one).
func (w *Writer) Close() error {
	w.str(sheetTail)
	if w.err == nil {
		w.err = w.buf.Flush()
	}
	if w.err != nil {
		return w.err
	}
	if err := w.zw.Close(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}

func (w *Writer) str(s string) {
	if w.err == nil {
		_, w.err = w.buf.WriteString(s)
	}
}

func (w *Writer) text(s string) {
	if w.err == nil {
		_, w.err = w.buf.WriteString(escapeText(s))
	}
}

// column is the letters of the 0-based column i (A, B, ..., Z, AA, ...).
func column(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('A' + (i-1)%26)}, b...)
	}
	return string(b)
}

// escapeXML escapes s for an attribute or text node.
func escapeXML(s string) string {
	var b []byte
	for _, r := range s {
		b = appendEscaped(b, r)
	}
	return string(b)
}

// escapeText escapes a cell's text. Besides XML's own escapes, SpreadsheetML
// reads _xHHHH_ as the character HHHH (ST_Xstring): a character XML cannot
// carry (a C0 control other than tab and line feed) is written that way,
// and text that happens to hold such a sequence has its "_" escaped
// (_x005F_), so that it reads back as written. A carriage return is kept
// as &#xD; (XML would fold it into a line feed).
func escapeText(s string) string {
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '_' && isEscapeSequence(s[i:]):
			b = append(b, "_x005F_"...)
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0xFFFE, r == 0xFFFF:
			b = fmt.Appendf(b, "_x%04X_", r)
		default:
			b = appendEscaped(b, r)
		}
		i += n
	}
	return string(b)
}

// isEscapeSequence reports whether s begins with _xHHHH_.
func isEscapeSequence(s string) bool {
	if len(s) < 7 || s[1] != 'x' || s[6] != '_' {
		return false
	}
	for _, c := range []byte(s[2:6]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func appendEscaped(b []byte, r rune) []byte {
	switch r {
	case '<':
		return append(b, "&lt;"...)
	case '>':
		return append(b, "&gt;"...)
	case '&':
		return append(b, "&amp;"...)
	case '"':
		return append(b, "&quot;"...)
	case '\r':
		return append(b, "&#xD;"...)
	}
	if r < 0x20 && r != '\t' && r != '\n' || r == 0xFFFE || r == 0xFFFF {
		r = utf8.RuneError // XML 1.0 cannot carry it at all
	}
	return utf8.AppendRune(b, r)
}
