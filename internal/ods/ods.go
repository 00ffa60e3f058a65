// Package ods writes a one-sheet OpenDocument spreadsheet (.ods) as a
// stream: rows go straight through a zip writer to the output, so a sheet
// of any length takes constant memory. Go has no well-kept ODS writer, and
// the part of the format a table of text needs is small: a zip whose first
// entry is the uncompressed "mimetype", a content.xml holding the table,
// and a manifest (OpenDocument 1.2, part 3). Every cell is a string cell
// (office:value-type="string"): a value beginning with "=" is text, never a
// formula.
package ods

import (
	"archive/zip"
	"bufio"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// MediaType is the ODS spreadsheet's media type, also the mimetype entry.
const MediaType = "application/vnd.oasis.opendocument.spreadsheet"

const contentHead = `<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"` +
	` xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"` +
	` xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">` +
	`<office:body><office:spreadsheet>`

const contentTail = `</table:table></office:spreadsheet></office:body></office:document-content>`

const manifest = `<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.2" manifest:media-type="` + MediaType + `"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>
`

// Writer writes one sheet, row by row. It is not safe for concurrent use.
type Writer struct {
	zw  *zip.Writer
	buf *bufio.Writer
	err error
}

// NewWriter starts a spreadsheet on w with one sheet named sheet.
func NewWriter(w io.Writer, sheet string) (*Writer, error) {
	zw := zip.NewWriter(w)
	// The mimetype comes first, stored and without a data descriptor, so
	// that the file's type can be read at a fixed offset: CreateRaw with
	// the sizes and checksum known in advance.
	mt := []byte(MediaType)
	f, err := zw.CreateRaw(&zip.FileHeader{Name: "mimetype", Method: zip.Store, CRC32: crc32.ChecksumIEEE(mt),
		CompressedSize64: uint64(len(mt)), UncompressedSize64: uint64(len(mt))})
	if err != nil {
		return nil, fmt.Errorf("ods: mimetype: %w", err)
	}
	if _, err := f.Write(mt); err != nil {
		return nil, fmt.Errorf("ods: mimetype: %w", err)
	}
	c, err := zw.CreateHeader(&zip.FileHeader{Name: "content.xml", Method: zip.Deflate})
	if err != nil {
		return nil, fmt.Errorf("ods: content: %w", err)
	}
	ow := &Writer{zw: zw, buf: bufio.NewWriterSize(c, 32<<10)}
	ow.str(contentHead + `<table:table table:name="`)
	ow.escape(sheet)
	ow.str(`">`)
	return ow, ow.err
}

// WriteRow appends a row of text cells.
func (w *Writer) WriteRow(cells []string) error {
	w.str(`<table:table-row>`)
	for _, c := range cells {
		if c == "" {
			w.str(`<table:table-cell/>`)
			continue
		}
		w.str(`<table:table-cell office:value-type="string"><text:p>`)
		w.text(c)
		w.str(`</text:p></table:table-cell>`)
	}
	w.str(`</table:table-row>`)
	return w.err
}

// Close ends the sheet and writes the manifest; the zip is then complete.
// A Writer that failed earlier returns that error and leaves the archive
// unfinished (a reader sees a broken file, not a short one).
func (w *Writer) Close() error {
	w.str(contentTail)
	if w.err == nil {
		w.err = w.buf.Flush()
	}
	if w.err != nil {
		return w.err
	}
	m, err := w.zw.Create("META-INF/manifest.xml")
	if err != nil {
		return fmt.Errorf("ods: manifest: %w", err)
	}
	if _, err := io.WriteString(m, manifest); err != nil {
		return fmt.Errorf("ods: manifest: %w", err)
	}
	if err := w.zw.Close(); err != nil {
		return fmt.Errorf("ods: %w", err)
	}
	return nil
}

func (w *Writer) str(s string) {
	if w.err == nil {
		_, w.err = w.buf.WriteString(s)
	}
}

func (w *Writer) escape(s string) {
	if w.err == nil {
		w.err = xml.EscapeText(w.buf, []byte(s))
	}
}

// text writes a cell's text as OpenDocument keeps white space: a tab is
// <text:tab/>, a line break <text:line-break/>, and every run of spaces
// <text:s text:c="n"/> (readers collapse and trim plain spaces).
func (w *Writer) text(s string) {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var run strings.Builder
	flush := func() {
		w.escape(run.String())
		run.Reset()
	}
	spaces := 0
	for _, r := range s {
		if r != ' ' && spaces > 0 {
			flush()
			w.spaces(spaces)
			spaces = 0
		}
		switch r {
		case ' ':
			spaces++
		case '\t':
			flush()
			w.str(`<text:tab/>`)
		case '\n', '\r':
			flush()
			w.str(`<text:line-break/>`)
		default:
			run.WriteRune(r)
		}
	}
	flush()
	if spaces > 0 {
		w.spaces(spaces)
	}
}

func (w *Writer) spaces(n int) {
	w.str(`<text:s text:c="` + strconv.Itoa(n) + `"/>`)
}
