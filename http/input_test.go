package http_test

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/smtptest"
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

// parseVCards reads vCard text as RFC 6350 defines it, strictly: every
// line ends in CRLF and holds no other CR or LF, is at most 75 octets and
// valid UTF-8; folded lines are unfolded; each property's value is split
// into its components at unescaped semicolons, each component into its
// values at unescaped commas, and unescaped.
func parseVCards(t *testing.T, body []byte) []map[string][][]string {
	t.Helper()
	text := string(body)
	if !strings.HasSuffix(text, "\r\n") {
		t.Fatalf("the vCard file does not end in CRLF: %q", text)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n") {
		if strings.ContainsAny(l, "\r\n") || len(l) > 75 || !utf8.ValidString(l) || strings.ContainsFunc(l, isControl) {
			t.Fatalf("a vCard line with a bare CR or LF, a control character, over 75 octets or not UTF-8: %q", l)
		}
		if strings.HasPrefix(l, " ") && len(lines) > 0 {
			lines[len(lines)-1] += l[1:]
			continue
		}
		lines = append(lines, l)
	}
	var cards []map[string][][]string
	var card map[string][][]string
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("a vCard line without a value: %q", l)
		}
		switch {
		case name == "BEGIN":
			card = map[string][][]string{}
			continue
		case name == "END":
			cards = append(cards, card)
			continue
		}
		var components [][]string
		var values []string
		var cur strings.Builder
		for i := 0; i < len(value); i++ {
			switch c := value[i]; c {
			case '\\':
				i++
				if i == len(value) {
					t.Fatalf("a dangling backslash in %q", l)
				}
				switch e := value[i]; e {
				case 'n', 'N':
					cur.WriteByte('\n')
				case '\\', ',', ';':
					cur.WriteByte(e)
				default:
					t.Fatalf("an unknown escape \\%c in %q", e, l)
				}
			case ',':
				values = append(values, cur.String())
				cur.Reset()
			case ';':
				components = append(components, append(values, cur.String()))
				values = nil
				cur.Reset()
			default:
				cur.WriteByte(c)
			}
		}
		card[name] = append(components, append(values, cur.String()))
	}
	return cards
}

// TestVCardExportEscapesAndFolds: the vCard export escapes text values as
// RFC 6350 asks (a ";" in a name stays in its component of N, a comma in a
// group name stays in its category, a line break of a name stored before
// control characters were refused becomes "\n", never a bare CR) and folds
// long lines without splitting a character.
func TestVCardExportEscapesAndFolds(t *testing.T) {
	b := setup(t)
	bob := b.createUser(t, `Bob, "the; Builder"`, "member")
	semi := b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "Ann", "last_name": "Vcf;Semi",
		"email": "semi@client.example", "phone": `+1 555\0100`, "external_id": "a,b;c", "team": []string{bob.userID}}).json(t)["id"].(string)
	long := strings.Repeat("Zoë ", 30) + "Ünder"
	wide := b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": long, "last_name": "Wide", "email": "wide@client.example"}).json(t)["id"].(string)
	g := b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": `VIP, the; \best`}).json(t)["id"].(string)
	b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "group_id": g, "customer_ids": []string{semi}})

	// A customer registered before control characters were refused.
	legacy := uuid.Must(uuid.NewV7()).String()
	typ, schema, data, err := domain.EncodeEvent(domain.CustomerRegistered{CustomerID: legacy,
		Profile: domain.Profile{FirstName: "Bare\rCR", LastName: "Line\r\nBreak\x1b[2J", Email: "legacy@client.example"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := eventstore.New(b.pool).Append(t.Context(), eventstore.AppendRequest{TenantID: b.tenant, Streams: []eventstore.StreamWrite{{
		StreamID: legacy, StreamType: "customer", ExpectedVersion: eventstore.NoStream,
		Events: []eventstore.EventData{{Type: typ, SchemaVersion: schema, Data: data}}}}})
	if err != nil {
		t.Fatal(err)
	}

	v := b.admin.readAfter(fmt.Sprint(res.Position), "/v1/customers?format=vcf")
	cards := map[string]map[string][][]string{}
	for _, c := range parseVCards(t, v.body) {
		if c["VERSION"][0][0] != "4.0" {
			t.Fatalf("not vCard 4.0: %v", c)
		}
		cards[strings.TrimPrefix(c["UID"][0][0], "urn:uuid:")] = c
	}
	if len(cards) != 3 {
		t.Fatalf("%d vCards: %s", len(cards), v.body)
	}
	want := func(id, prop string, value [][]string) {
		t.Helper()
		if got := cards[id][prop]; !reflect.DeepEqual(got, value) {
			t.Errorf("%s of %s: %q, want %q", prop, id, got, value)
		}
	}
	one := func(s string) [][]string { return [][]string{{s}} }
	want(semi, "N", [][]string{{"Vcf;Semi"}, {"Ann"}, {""}, {""}, {""}})
	want(semi, "FN", one("Ann Vcf;Semi"))
	want(semi, "TEL", one(`+1 555\0100`))
	want(semi, "X-LEDGER-EXTERNAL-ID", one("a,b;c"))
	want(semi, "CATEGORIES", one(`VIP, the; \best`))
	want(semi, "X-LEDGER-ASSIGNEES", one(`Bob, "the; Builder"`))
	want(wide, "FN", one(long+" Wide"))
	want(wide, "N", [][]string{{"Wide"}, {long}, {""}, {""}, {""}})
	want(legacy, "N", [][]string{{"Line\nBreak[2J"}, {"Bare\nCR"}, {""}, {""}, {""}})
	want(legacy, "FN", one("Bare\nCR Line\nBreak[2J"))
}

// TestDuplicateJSONKeysAreRefused: a JSON body that repeats a key, at any
// depth and however the key is spelled (escapes), is a 400 naming the key,
// on every JSON body; nothing is written.
func TestDuplicateJSONKeysAreRefused(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	cust := b.createCustomer(t, "Carla")
	before := b.countEvents(t)

	for _, tc := range []struct{ method, path, body, key string }{
		// The example: a dry run to encoding/json (last wins), a
		// write to a reader that takes the middle or a differing first.
		{"POST", "/v1/assignments/bulk", `{"action":"add","customer_ids":["` + cust + `"],"user_ids":["` + u.userID + `"],"dry_run":true,"dry_run":false,"dry_run":true}`, "dry_run"},
		{"POST", "/v1/assignments/bulk", `{"action":"add","customer_ids":["` + cust + `"],"user_ids":["` + u.userID + `"],"dry_run":false,"dry\u005frun":true}`, "dry_run"},
		{"POST", "/v1/customers/bulk", `{"action":"block","filter":{"q":"carla","q":"nobody"},"dry_run":false}`, "filter.q"},
		{"POST", "/v1/customers", `{"first_name":"Eve","email":"eve@client.example","email":"carla@client.example"}`, "email"},
		{"PATCH", "/v1/customers/" + cust, `{"title":"Dr.","title":"Prof."}`, "title"},
		{"POST", "/v1/users", `{"name":"Xena","email":"x@acme.example","role":"member","role":"admin"}`, "role"},
		{"PATCH", "/v1/users/" + u.userID, `{"role":"member","role":"admin"}`, "role"},
		{"PUT", "/v1/policy", `{"max_assignees":null,"require_assignee":false,"require_lead":false,"members_can_self_assign":true,"require_lead":true}`, "require_lead"},
		{"POST", "/v1/groups", `{"name":"A","name":"B"}`, "name"},
		{"POST", "/v1/customers/" + cust + "/assignees", `{"user_id":"` + u.userID + `","user_id":"me"}`, "user_id"},
	} {
		r := b.admin.do(tc.method, tc.path, tc.body)
		if r.status != 400 || r.code() != "duplicate_key" || r.json(t)["field"] != tc.key {
			t.Errorf("%s %s %s: %d %s, want 400 duplicate_key naming %q", tc.method, tc.path, tc.body, r.status, r.body, tc.key)
		}
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused requests appended %d events", n-before)
	}
	// Without the repeat the same body is taken.
	b.admin.must(200, "POST", "/v1/assignments/bulk", `{"action":"add","customer_ids":["`+cust+`"],"user_ids":["`+u.userID+`"],"dry_run":true}`)
}

// TestMessageToNoCustomerIsRefused: a message none of whose IDs is a
// customer of the tenant (unknown IDs, another tenant's customer) answers
// 422 no_recipients and writes nothing (no message, no event, no e-mail,
// with or without an Idempotency-Key); one selected customer who is skipped
// still makes a message, as the contract's "skipped" list says.
func TestMessageToNoCustomerIsRefused(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	other, err := b.cmd.Bootstrap(t.Context(), "Other", "Otto Admin", "otto@other.example")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := b.cmd.RegisterCustomer(t.Context(), commands.Meta{TenantID: other.TenantID,
		Actor: domain.Actor{UserID: other.UserID, Name: "Otto Admin", Role: domain.RoleAdmin}},
		domain.Profile{FirstName: "Stranger", Email: "stranger@client.example"})
	if err != nil {
		t.Fatal(err)
	}
	messages := func() (n int) {
		t.Helper()
		if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM messages`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before, beforeMessages := b.countEvents(t), messages()

	for _, ids := range [][]string{{uuid.NewString()}, {uuid.NewString(), uuid.NewString()}, {stranger.ID}} {
		for _, h := range []hdr{{}, {"Idempotency-Key": "msg-" + ids[0]}} {
			r := b.admin.do("POST", "/v1/customers/messages", map[string]any{"customer_ids": ids, "subject": "Hi", "body": "Nobody."}, h)
			if r.status != 422 || r.code() != "no_recipients" {
				t.Fatalf("a message to %v: %d %s, want 422 no_recipients", ids, r.status, r.body)
			}
		}
	}
	if n, m := b.countEvents(t), messages(); n != before || m != beforeMessages {
		t.Fatalf("refused messages wrote %d events and %d messages", n-before, m-beforeMessages)
	}

	// A known customer among unknown IDs: the message goes, the rest are
	// listed as skipped.
	carla := b.createCustomer(t, "Carla")
	unknown := uuid.NewString()
	r := b.admin.must(202, "POST", "/v1/customers/messages", map[string]any{"customer_ids": []string{unknown, carla}, "subject": "Hi", "body": "You."})
	if res := r.json(t); res["recipients"] != float64(1) || !strings.Contains(fmt.Sprint(res["skipped"]), unknown) {
		t.Fatalf("a message to one customer and one unknown ID: %s", r.body)
	}
}

// RFC 3339 (5.6) allows a lowercase t and z: every time parameter and
// body field takes them.
func TestTimesTakeALowercaseTAndZ(t *testing.T) {
	b := setup(t)
	cust := b.createCustomer(t, "Tess")
	upper := b.admin.must(200, "GET", "/v1/customers/"+cust+"/assignees?as_of=2030-01-02T03:04:05Z", nil)
	lower := b.admin.must(200, "GET", "/v1/customers/"+cust+"/assignees?as_of=2030-01-02t03:04:05z", nil)
	if string(upper.body) != string(lower.body) {
		t.Fatalf("as_of: %s, lowercase %s", upper.body, lower.body)
	}
	b.admin.must(200, "GET", "/v1/audit?from=2000-01-01t00:00:00z", nil)
	var fu map[string]any
	b.admin.must(201, "POST", "/v1/customers/"+cust+"/follow-ups", map[string]any{"due_at": "2030-01-02t03:04:05.5z"}).decode(t, &fu)
	if fu["due_at"] != "2030-01-02T03:04:05.5Z" {
		t.Fatalf("due_at %v", fu["due_at"])
	}
	b.admin.must(400, "GET", "/v1/customers/"+cust+"/assignees?as_of=2030-01-02x03:04:05z", nil)
}

// The customer list's representation follows the Accept header's weights,
// through the API (found by hostile testing: any listed type won).
func TestCustomerListWeighsAccept(t *testing.T) {
	b := setup(t)
	b.createCustomer(t, "Wendy")
	for accept, want := range map[string]string{
		"text/csv;q=0.1, application/json": "application/json",
		"application/json;q=0.5, text/csv": "text/csv",
		"text/csv;q=0":                     "application/json",
		"text/*":                           "text/csv",
	} {
		r := b.admin.must(200, "GET", "/v1/customers", nil, hdr{"Accept": accept})
		if got := r.header.Get("Content-Type"); !strings.HasPrefix(got, want) {
			t.Errorf("Accept %q: %s, want %s", accept, got, want)
		}
	}
}

// A bidirectional control or a Unicode line separator in a single-line
// field is a 400 naming it, through the API.
func TestSingleLineFieldsRefuseBidiControlsThroughTheAPI(t *testing.T) {
	b := setup(t)
	before := b.countEvents(t)
	for _, name := range []string{"\u202egnp.exe", "A\u2028B", "A\u2066B"} {
		badInput(t, b.admin.do("POST", "/v1/groups", map[string]string{"name": name}), "name", "group name "+name)
		badInput(t, b.admin.do("POST", "/v1/customers", map[string]string{"first_name": name, "email": "w@client.example"}), "first_name", "first name "+name)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused requests appended %d events", n-before)
	}
}

// A time outside the years 0000-9999 once in UTC cannot be recorded, and
// an offset of +24:00 or +23:60 is no RFC 3339 offset: each is a 400 that
// changes nothing (found by hostile testing: 9999-12-31T23:59:59-05:00 was
// a 500 from encoding the event, +24:00 was taken).
func TestTimesOutOfRangeAreRefused(t *testing.T) {
	b := setup(t)
	cust := b.createCustomer(t, "Tess")
	fu := b.admin.must(201, "POST", "/v1/customers/"+cust+"/follow-ups", map[string]any{"due_at": "2030-01-02T03:04:05Z"}).json(t)
	before := b.countEvents(t)
	for _, bad := range []string{"9999-12-31T23:59:59-05:00", "0000-01-01T00:30:00+01:00", "2031-01-01T00:00:00+24:00", "2031-01-01T00:00:00+23:60"} {
		for _, r := range []response{
			b.admin.do("POST", "/v1/customers/"+cust+"/follow-ups", map[string]any{"due_at": bad}),
			b.admin.do("POST", "/v1/follow-ups/"+fu["id"].(string)+"/snooze", map[string]any{"until": bad}),
			b.admin.do("PATCH", "/v1/users/me", map[string]any{"away_until": bad}),
			b.admin.do("GET", "/v1/customers/"+cust+"/assignees?as_of="+url.QueryEscape(bad), nil),
		} {
			if r.status != 400 || r.json(t)["field"] == nil {
				t.Fatalf("%s: %d %s", bad, r.status, r.body)
			}
		}
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused times appended %d events", n-before)
	}
	// The edges themselves are times.
	b.admin.must(200, "PATCH", "/v1/users/me", map[string]any{"away_until": "9999-12-31T18:59:59-05:00"})
	b.admin.must(201, "POST", "/v1/customers/"+cust+"/follow-ups", map[string]any{"due_at": "2031-01-01T00:00:00+23:59"})
	b.admin.must(200, "PATCH", "/v1/users/me", map[string]any{"away_until": nil})
}
