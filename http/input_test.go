package http_test

import (
	"strings"
	"testing"
)

// TestControlCharactersAreRefusedInSingleLineFields: ESC, BEL, CR, LF, tab,
// DEL and C1 controls in a name, title, phone, e-mail, external ID, user or
// group name are a 400 naming the field on every path that stores them (an
// import row with one is that row's error), and nothing is written; a
// message body keeps its line breaks and tabs.
func TestControlCharactersAreRefusedInSingleLineFields(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	cust := b.createCustomer(t, "Carla")
	group := b.admin.must(201, "POST", "/v1/groups", map[string]string{"name": "VIP"}).json(t)["id"].(string)
	before := b.countEvents(t)

	controls := map[string]string{
		"ESC title": "\x1b]0;pwned\x07", "BEL": "A\aZ", "CR": "A\rZ", "LF": "A\nZ", "CRLF at the end": "Ann\r\n",
		"tab": "A\tZ", "DEL": "A\x7fZ", "C1 CSI": "A\u009b2JZ", "NEL": "A\u0085Z",
	}
	for what, bad := range controls {
		for _, field := range []string{"first_name", "last_name", "phone", "external_id", "title", "email"} {
			body := map[string]any{"first_name": "Carla", "last_name": "Client", "email": "c@client.example", field: bad}
			if field == "email" {
				body[field] = "c" + bad + "@client.example"
			}
			badInput(t, b.admin.do("POST", "/v1/customers", body), field, what+" in a new customer's "+field)
			badInput(t, b.admin.do("PATCH", "/v1/customers/"+cust, map[string]any{field: body[field]}), field, what+" in a customer's changed "+field)
			body["team"] = []string{u.userID}
			badInput(t, b.admin.do("POST", "/v1/clients/invitations", body), field, what+" in an invitation's "+field)
		}
		badInput(t, b.admin.do("POST", "/v1/users", map[string]string{"name": bad, "email": "x@acme.example", "role": "member"}), "name", what+" in a new user's name")
		badInput(t, b.admin.do("POST", "/v1/users", map[string]string{"name": "Xena", "email": "x" + bad + "@acme.example", "role": "member"}), "email", what+" in a new user's email")
		badInput(t, b.admin.do("PATCH", "/v1/users/"+u.userID, map[string]string{"name": bad}), "name", what+" in a user's new name")
		badInput(t, b.admin.do("POST", "/v1/groups", map[string]string{"name": bad}), "name", what+" in a new group's name")
		badInput(t, b.admin.do("PATCH", "/v1/groups/"+group, map[string]string{"name": bad}), "name", what+" in a group's new name")
	}
	// The detail names the character without echoing it.
	r := b.admin.do("POST", "/v1/customers", map[string]any{"first_name": "A\x1bZ", "email": "c@client.example"})
	if d := r.json(t)["detail"].(string); strings.ContainsRune(d, 0x1b) || !strings.Contains(d, "U+001B") {
		t.Fatalf("the refusal's detail: %q", d)
	}

	// An import: every row with a control character is a row error, and
	// nothing is imported.
	header := "First Name,Last Name,Email,Phone Number,Title\n"
	file := header + "Ada,Lovelace,ada@client.example,,\n" +
		"\"Al\x1b[31man\",Turing,alan@client.example,,\n" +
		"Grace,\"Hop\r\nper\",grace@client.example,,\n" +
		"Edsger,Dijkstra,edsger@client.example,\"+31\a\",\n" +
		"Barbara,Liskov,barbara@client.example,,\"Prof\u0085\"\n"
	r = b.admin.csv("POST", "/v1/clients/import", file)
	var report struct {
		Errors []struct {
			Row   int    `json:"row"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	r.decode(t, &report)
	if r.status != 422 || len(report.Errors) != 4 {
		t.Fatalf("an import with control characters in 4 rows: %d %s", r.status, r.body)
	}
	for i, want := range []string{"first_name", "last_name", "phone", "title"} {
		if e := report.Errors[i]; e.Row != i+2 || !strings.Contains(e.Error, want) || strings.ContainsFunc(e.Error, isControl) {
			t.Errorf("row error %d: %+v, want row %d naming %s", i, e, i+2, want)
		}
	}

	if n := b.countEvents(t); n != before {
		t.Fatalf("refused requests appended %d events", n-before)
	}

	// Plain text with spaces around it is still trimmed and taken.
	b.admin.must(201, "POST", "/v1/users", map[string]string{"name": "  Xena Warrior ", "email": "xena@acme.example", "role": "member"})
	b.admin.must(200, "PATCH", "/v1/customers/"+cust, map[string]any{"title": " Dr. "})
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }
