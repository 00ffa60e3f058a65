package http

import (
	"bufio"
	"fmt"
	"html"
	"io"
	nethttp "net/http"
	"strings"
	"time"

	"github.com/assignment-ledger/ledger/internal/ods"
	"github.com/assignment-ledger/ledger/internal/xlsx"
	"github.com/assignment-ledger/ledger/projections"
)

// exportFormat is one way to download the filtered customer list.
type exportFormat struct {
	// name is the ?format= value and the file extension.
	name      string
	mediaType string
	write     func(s *Server, w io.Writer, r *nethttp.Request, tenant string, f projections.CustomerFilter) error
}

var exportFormats = []exportFormat{
	{"csv", "text/csv", (*Server).exportCSV},
	{"xlsx", xlsx.MediaType, (*Server).exportXLSX},
	{"ods", ods.MediaType, (*Server).exportODS},
	{"vcf", "text/vcard", (*Server).exportVCard},
	{"html", "text/html", (*Server).exportHTML},
}

// exportFormatOf chooses the export a list request asks for: ?format=
// first, else the Accept header; ok is false for the JSON page.
func exportFormatOf(r *nethttp.Request) (exportFormat, bool, error) {
	if name := r.URL.Query().Get("format"); name != "" {
		for _, f := range exportFormats {
			if f.name == name {
				return f, true, nil
			}
		}
		if name == "json" {
			return exportFormat{}, false, nil
		}
		return exportFormat{}, false, badRequest("invalid_input", "format", "format must be json, csv, xlsx, ods, vcf or html")
	}
	offers := []string{"application/json"}
	for _, f := range exportFormats {
		offers = append(offers, f.mediaType)
	}
	chosen := negotiate(r, offers...)
	for _, f := range exportFormats {
		if f.mediaType == chosen {
			return f, true, nil
		}
	}
	return exportFormat{}, false, nil
}

// exportColumns are the columns of every tabular export, in order.
var exportColumns = []string{"id", "first_name", "last_name", "email", "phone", "external_id", "status", "created_at",
	"assignees", "lead", "groups", "title"}

// exportRow is a customer's cells under exportColumns, as plain text.
func exportRow(c projections.CustomerItem) []string {
	names, lead := assigneeNames(c)
	return []string{c.ID, c.FirstName, c.LastName, c.Email, c.Phone, c.ExternalID, c.Status,
		c.CreatedAt.UTC().Format(time.RFC3339), strings.Join(names, "; "), lead, strings.Join(groupNames(c), "; "), c.Title}
}

func assigneeNames(c projections.CustomerItem) (names []string, lead string) {
	for _, a := range c.Assignees {
		names = append(names, a.Name)
		if a.Lead {
			lead = a.Name
		}
	}
	return names, lead
}

func groupNames(c projections.CustomerItem) []string {
	out := make([]string, 0, len(c.Groups))
	for _, g := range c.Groups {
		out = append(out, g.Name)
	}
	return out
}

// export answers the filtered list in format f, through stream: a failure
// before the first byte is returned, to be answered as a problem; one after
// it aborts the response rather than ending it as if the file were complete.
func (s *Server) export(w nethttp.ResponseWriter, r *nethttp.Request, tenant string, fm exportFormat, f projections.CustomerFilter) error {
	contentType := fm.mediaType + "; charset=utf-8"
	if fm.name == "xlsx" || fm.name == "ods" {
		contentType = fm.mediaType
	}
	filename := fmt.Sprintf("customers-%s.%s", time.Now().UTC().Format("20060102"), fm.name)
	return s.stream(w, r, exportHeader(contentType, filename), func(out io.Writer) error {
		return fm.write(s, out, r, tenant, f)
	})
}

func (s *Server) exportCSV(w io.Writer, r *nethttp.Request, tenant string, f projections.CustomerFilter) error {
	return writeCSV(w, exportColumns, func(row func(cells ...string) error) error {
		return s.q.EachCustomer(r.Context(), tenant, f, func(c projections.CustomerItem) error {
			return row(exportRow(c)...)
		})
	})
}

// exportXLSX streams the sheet through internal/xlsx: rows go to the
// client as they are read. Every value is a string cell: text that looks
// like a formula stays text.
func (s *Server) exportXLSX(w io.Writer, r *nethttp.Request, tenant string, f projections.CustomerFilter) error {
	xw, err := xlsx.NewWriter(w, "Customers")
	if err != nil {
		return err
	}
	if err := xw.WriteRow(exportColumns); err != nil {
		return err
	}
	if err := s.q.EachCustomer(r.Context(), tenant, f, func(c projections.CustomerItem) error {
		return xw.WriteRow(exportRow(c))
	}); err != nil {
		return err
	}
	return xw.Close()
}

// exportODS streams the sheet through internal/ods: rows go to the client
// as they are read.
func (s *Server) exportODS(w io.Writer, r *nethttp.Request, tenant string, f projections.CustomerFilter) error {
	ow, err := ods.NewWriter(w, "Customers")
	if err != nil {
		return err
	}
	if err := ow.WriteRow(exportColumns); err != nil {
		return err
	}
	if err := s.q.EachCustomer(r.Context(), tenant, f, func(c projections.CustomerItem) error {
		return ow.WriteRow(exportRow(c))
	}); err != nil {
		return err
	}
	return ow.Close()
}

// exportVCard writes one vCard 4.0 per customer: FN and N from the name
// (FN is required: the e-mail or the ID stands in for a customer without
// one), EMAIL, TEL, UID, CATEGORIES for the groups, and the ledger's own
// fields as X- properties (status, created date, assignees, lead). Every
// text value is escaped and every line folded as RFC 6350 asks (see
// vcardWriter): a ";" in a name never shifts N's components, a line break
// never ends a line.
func (s *Server) exportVCard(w io.Writer, r *nethttp.Request, tenant string, f projections.CustomerFilter) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	vw := vcardWriter{w: bw}
	err := s.q.EachCustomer(r.Context(), tenant, f, func(c projections.CustomerItem) error {
		fn := strings.TrimSpace(c.FirstName + " " + c.LastName)
		if fn == "" {
			fn = c.Email
		}
		if fn == "" {
			fn = c.ID
		}
		names, lead := assigneeNames(c)
		// Properties in a fixed order, as a file diff expects.
		props := [][2]string{
			{"BEGIN", "VCARD"},
			{"VERSION", "4.0"},
			{"FN", vcardText(fn)},
			// N is family;given;additional;prefixes;suffixes.
			{"N", vcardCompound(c.LastName, c.FirstName, "", "", "")},
			{"UID", "urn:uuid:" + c.ID},
		}
		if c.Email != "" {
			props = append(props, [2]string{"EMAIL", vcardText(c.Email)})
		}
		if c.Phone != "" {
			props = append(props, [2]string{"TEL", vcardText(c.Phone)})
		}
		if c.Title != "" {
			props = append(props, [2]string{"TITLE", vcardText(c.Title)})
		}
		if gs := groupNames(c); len(gs) > 0 {
			props = append(props, [2]string{"CATEGORIES", vcardList(gs)})
		}
		props = append(props,
			[2]string{"X-LEDGER-STATUS", vcardText(c.Status)},
			[2]string{"X-LEDGER-CREATED", c.CreatedAt.UTC().Format(time.RFC3339)})
		if len(names) > 0 {
			props = append(props, [2]string{"X-LEDGER-ASSIGNEES", vcardList(names)})
		}
		if lead != "" {
			props = append(props, [2]string{"X-LEDGER-LEAD", vcardText(lead)})
		}
		if c.ExternalID != "" {
			props = append(props, [2]string{"X-LEDGER-EXTERNAL-ID", vcardText(c.ExternalID)})
		}
		props = append(props, [2]string{"END", "VCARD"})
		for _, p := range props {
			if err := vw.prop(p[0], p[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

const htmlHead = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Customers</title>
<style>table{border-collapse:collapse;font-family:sans-serif}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>
</head><body>
<table>
<thead><tr>`

// exportHTML streams a standalone page with one table; every value is
// escaped. Office suites evaluate a cell of an opened HTML table that looks
// like a formula (LibreOffice computes "=1+1"), so such values are
// prefixed "'" as in CSV.
func (s *Server) exportHTML(w io.Writer, r *nethttp.Request, tenant string, f projections.CustomerFilter) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	write := func(parts ...string) {
		for _, p := range parts {
			_, _ = io.WriteString(bw, p)
		}
	}
	write(htmlHead)
	for _, c := range exportColumns {
		write("<th>", html.EscapeString(c), "</th>")
	}
	write("</tr></thead>\n<tbody>\n")
	err := s.q.EachCustomer(r.Context(), tenant, f, func(c projections.CustomerItem) error {
		write("<tr>")
		for _, v := range exportRow(c) {
			write("<td>", html.EscapeString(csvSafe(v)), "</td>")
		}
		write("</tr>\n")
		return nil
	})
	if err != nil {
		return err
	}
	write("</tbody>\n</table>\n</body></html>\n")
	return bw.Flush()
}
