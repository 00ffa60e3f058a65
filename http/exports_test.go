package http_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-vcard"
	"github.com/xuri/excelize/v2"

	"github.com/assignment-ledger/ledger/internal/office"
)

// Every export of the filtered customer list, chosen by Accept or
// ?format=, carries the assigned-user column, groups, status, created
// date and title and a file name; the spreadsheets and the HTML table open in
// LibreOffice with exactly the list's values (formula-like text stays
// text), and the vCards parse as vCard 4.0.
func TestCustomerExports(t *testing.T) {
	b := setup(t)
	bob := b.createUser(t, "Bob <Baker>", "member")
	evil := b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "=1+1", "last_name": "@SUM(A1)",
		"email": "evil@client.example", "phone": "+1 555 0100", "title": "Head of <Buying>", "team": []string{bob.userID}}).json(t)["id"].(string)
	plain := b.createCustomer(t, "Zoë")
	other := b.createCustomer(t, "Otto")
	g := b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": "VIP & <friends>"}).json(t)["id"].(string)
	r := b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "group_id": g, "customer_ids": []string{evil, plain}})
	_ = r
	pos := b.admin.must(200, "POST", "/v1/customers/"+plain+"/block", nil).header.Get("X-Ledger-Position")

	get := func(query string, h hdr) response {
		t.Helper()
		h["X-Min-Position"] = pos
		return b.admin.must(200, "GET", "/v1/customers"+query, nil, h)
	}
	filename := regexp.MustCompile(`^attachment; filename="customers-\d{8}\.([a-z]+)"$`)
	checkHeaders := func(r response, ext, media string) {
		t.Helper()
		if m := filename.FindStringSubmatch(r.header.Get("Content-Disposition")); m == nil || m[1] != ext {
			t.Errorf("%s: Content-Disposition %q", ext, r.header.Get("Content-Disposition"))
		}
		if !strings.HasPrefix(r.header.Get("Content-Type"), media) {
			t.Errorf("%s: Content-Type %q", ext, r.header.Get("Content-Type"))
		}
	}

	// The reference: the CSV export of the group, formula cells defused.
	c := get("?group="+g, hdr{"Accept": "text/csv"})
	checkHeaders(c, "csv", "text/csv")
	want, err := csv.NewReader(bytes.NewReader(c.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := []string{"id", "first_name", "last_name", "email", "phone", "external_id", "status", "created_at", "assignees", "lead", "groups", "title"}
	if len(want) != 3 || !slices.Equal(want[0], header) {
		t.Fatalf("csv: %q", want)
	}
	evilRow := want[1]
	if evilRow[0] != evil {
		evilRow = want[2]
	}
	if evilRow[1] != "'=1+1" || evilRow[2] != "'@SUM(A1)" || evilRow[4] != "'+1 555 0100" || evilRow[8] != "Bob <Baker>" ||
		evilRow[9] != "" || evilRow[10] != "VIP & <friends>" || evilRow[6] != "active" || evilRow[7] == "" || evilRow[11] != "Head of <Buying>" {
		t.Fatalf("csv row %q", evilRow)
	}
	// The spreadsheets hold the values themselves, as text.
	undo := func(rows [][]string) [][]string {
		out := [][]string{}
		for _, r := range rows {
			r = slices.Clone(r)
			for i, v := range r {
				if strings.HasPrefix(v, "'") && strings.ContainsAny(v[1:2], "=+-@\t\r") {
					r[i] = v[1:]
				}
			}
			out = append(out, r)
		}
		return out
	}(want)
	same := func(what string, got [][]string) {
		t.Helper()
		undo := undo
		if strings.HasPrefix(what, "html") {
			undo = want // defused as in CSV
		}
		if len(got) != len(undo) {
			t.Fatalf("%s: %d rows, want %d: %q", what, len(got), len(undo), got)
		}
		for i := range undo {
			for len(got[i]) < len(undo[i]) {
				got[i] = append(got[i], "")
			}
			if !slices.Equal(got[i], undo[i]) {
				t.Errorf("%s row %d: %q, want %q", what, i, got[i], undo[i])
			}
		}
	}

	x := get("?group="+g+"&format=xlsx", hdr{})
	checkHeaders(x, "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	xf, err := excelize.OpenReader(bytes.NewReader(x.body))
	if err != nil {
		t.Fatal(err)
	}
	xrows, err := xf.GetRows("Customers")
	if err != nil {
		t.Fatal(err)
	}
	same("xlsx (excelize)", xrows)
	if f, _ := xf.GetCellFormula("Customers", "B2"); f != "" {
		t.Errorf("xlsx: a formula cell %q", f)
	}
	same("xlsx (LibreOffice)", office.ToCSV(t, x.body, "xlsx", ""))

	o := get("?group="+g, hdr{"Accept": "application/vnd.oasis.opendocument.spreadsheet"})
	checkHeaders(o, "ods", "application/vnd.oasis.opendocument.spreadsheet")
	same("ods (LibreOffice)", office.ToCSV(t, o.body, "ods", ""))

	h := get("?group="+g, hdr{"Accept": "text/html"})
	checkHeaders(h, "html", "text/html")
	if strings.Contains(string(h.body), "<Baker>") || !strings.HasPrefix(string(h.body), "<!DOCTYPE html>") {
		t.Fatalf("html is not escaped or not standalone: %s", h.body)
	}
	same("html (LibreOffice)", office.ToCSV(t, h.body, "html", "HTML (StarCalc)"))

	v := get("?format=vcf&group="+g, hdr{})
	checkHeaders(v, "vcf", "text/vcard")
	dec := vcard.NewDecoder(bytes.NewReader(v.body))
	cards := map[string]vcard.Card{}
	for {
		card, err := dec.Decode()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("vcard: %v: %s", err, v.body)
		}
		if card.Value(vcard.FieldVersion) != "4.0" || card.Value(vcard.FieldFormattedName) == "" {
			t.Fatalf("not a vCard 4.0 with FN: %v", card)
		}
		cards[strings.TrimPrefix(card.Value(vcard.FieldUID), "urn:uuid:")] = card
	}
	ec, pc := cards[evil], cards[plain]
	if len(cards) != 2 || ec.Value(vcard.FieldEmail) != "evil@client.example" || !slices.Equal(ec.Categories(), []string{"VIP & <friends>"}) ||
		ec.Value("X-LEDGER-ASSIGNEES") != "Bob <Baker>" || ec.Value("X-LEDGER-STATUS") != "active" || ec.Value("X-LEDGER-CREATED") == "" ||
		ec.Value(vcard.FieldTitle) != "Head of <Buying>" || pc.Value(vcard.FieldTitle) != "" ||
		pc.Value(vcard.FieldFormattedName) != "Zoë Client" {
		t.Fatalf("vcards %v", cards)
	}

	if r := b.admin.do("GET", "/v1/customers?format=pdf", nil); r.status != 400 {
		t.Fatalf("unknown format: %d %s", r.status, r.body)
	}
	// Without a filter every customer is exported; JSON stays the default.
	all := get("?format=csv", hdr{})
	if rows, _ := csv.NewReader(bytes.NewReader(all.body)).ReadAll(); len(rows) != 4 || !strings.Contains(string(all.body), other) {
		t.Fatalf("unfiltered csv: %q", all.body)
	}
	if j := get("", hdr{}); !strings.HasPrefix(j.header.Get("Content-Type"), "application/json") {
		t.Fatalf("default answer %q", j.header.Get("Content-Type"))
	}
}

// Exports cross the pages the list is read in (1,000 customers a query):
// 2,500 customers imported, put in a group by filter, and exported in
// every format, each with every customer once.
func TestCustomerExportsAcrossPages(t *testing.T) {
	b := setup(t)
	const n = 2500
	var sb strings.Builder
	sb.WriteString("First Name,Last Name,Email,Phone Number,Team\n")
	for i := range n {
		fmt.Fprintf(&sb, "C%d,Many,c%d@many.example,,\n", i, i)
	}
	if r := b.admin.csv("POST", "/v1/clients/import", sb.String()); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	g := b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": "Many"}).json(t)["id"].(string)
	var rep struct{ Changed []string }
	r := b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "group_id": g, "filter": map[string]any{"q": "many"}})
	r.decode(t, &rep)
	if len(rep.Changed) != n {
		t.Fatalf("added %d customers to the group", len(rep.Changed))
	}
	pos := r.header.Get("X-Ledger-Position")
	ids := func(what string, got []string) {
		t.Helper()
		seen := map[string]bool{}
		for _, id := range got {
			seen[id] = true
		}
		if len(got) != n || len(seen) != n {
			t.Errorf("%s: %d customers, %d distinct, want %d", what, len(got), len(seen), n)
		}
	}
	for _, format := range []string{"csv", "xlsx", "ods", "vcf", "html"} {
		r := b.admin.must(200, "GET", "/v1/customers?format="+format+"&group="+g, nil, hdr{"X-Min-Position": pos})
		var got []string
		switch format {
		case "csv":
			rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range rows[1:] {
				got = append(got, row[0])
			}
		case "xlsx":
			xf, err := excelize.OpenReader(bytes.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			rows, err := xf.GetRows("Customers")
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range rows[1:] {
				got = append(got, row[0])
			}
		case "ods", "html":
			got = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}`).FindAllString(string(r.body), -1)
			if format == "ods" {
				zr, err := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
				if err != nil {
					t.Fatal(err)
				}
				f, err := zr.Open("content.xml")
				if err != nil {
					t.Fatal(err)
				}
				content, _ := io.ReadAll(f)
				got = regexp.MustCompile(`<text:p>([0-9a-f-]{36})</text:p>`).FindAllString(string(content), -1)
			}
		case "vcf":
			dec := vcard.NewDecoder(bytes.NewReader(r.body))
			for {
				card, err := dec.Decode()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, card.Value(vcard.FieldUID))
			}
		}
		ids(format, got)
	}
}

// An export that fails after its body has begun is visibly broken: the
// response is aborted (the client reads an unexpected EOF), never ended as
// if complete. A customer_list row the list cannot decode, placed after
// the first page, makes the export fail midway.
func TestCustomerExportFailingMidwayAborts(t *testing.T) {
	b := setup(t)
	var sb strings.Builder
	sb.WriteString("First Name,Last Name,Email,Phone Number,Team\n")
	for i := range 1001 {
		fmt.Fprintf(&sb, "C%d,Page,p%d@page.example,,\n", i, i)
	}
	r := b.admin.csv("POST", "/v1/clients/import", sb.String())
	if r.status != 200 || r.header.Get("X-Ledger-Position") == "" {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	b.admin.must(200, "GET", "/v1/customers?limit=1", nil, hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")})
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO customer_list (customer_id, tenant_id, first_name, last_name, email, phone,
		external_id, status, status_before_block, created_at, version, assignees)
		VALUES (gen_random_uuid(), $1, 'Broken', '', '', '', '', 'active', '', '2999-01-01', 1, '{"not":"a list"}')`, b.tenant); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"csv", "xlsx", "ods", "vcf", "html"} {
		req, _ := nethttp.NewRequest("GET", b.base+"/v1/customers?format="+format, nil)
		req.Header.Set("Authorization", "Bearer "+b.admin.key)
		resp, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Exports are buffered: a failure before the first bytes went out
		// (a small, compressed ODS or XLSX) is a problem answer, one after them
		// aborts the response. Never a 200 that ends like a whole file.
		aborted := resp.StatusCode == 200 && errors.Is(err, io.ErrUnexpectedEOF)
		refused := resp.StatusCode >= 500 && resp.Header.Get("Content-Disposition") == "" && err == nil
		if !aborted && !refused {
			t.Errorf("%s: status %d, read error %v after %d bytes: the export must abort or answer a problem", format, resp.StatusCode, err, len(body))
		}
	}
}
