package http

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// The request decoders' fuzz targets. `make fuzz` runs each for a bounded
// time; `go test` runs their seed corpora (here and in testdata/fuzz).

// requestBodies are the JSON bodies the API decodes.
func requestBodies() []any {
	return []any{&policyBody{}, &createUserBody{}, &profileBody{}, &inviteBody{}, &userIDBody{}, &replaceBody{},
		&bulkBody{}, &deactivateBody{}, &markReadBody{}}
}

// A decoded body holds only text PostgreSQL can store, and a refusal is a
// 400 that names no Go type.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"max_assignees":3,"require_assignee":true,"require_lead":true,"members_can_self_assign":true}`,
		`{"max_assignees":null,"require_assignee":false,"require_lead":false,"members_can_self_assign":true}`,
		`{"name":"Bob Baker","email":"bob@demo.example","role":"member"}`,
		`{"first_name":"Carla","last_name":"Client","email":"c@client.example","phone":"+1","external_id":"crm-42","team":["me"]}`,
		`{"user_id":"me"}`, `{"with_user_id":"me"}`, `{"transfer_to":"me"}`, `{"ids":["1-x"]}`,
		`{"action":"add","customer_ids":[],"user_ids":[],"dry_run":null}`,
		`{"name":"A\u0000Z"}`, "{\"name\":\"A\xffZ\"}", `{"MAX_ASSIGNEES":1}`, `{"first_name":5}`, `[]`, `{} {}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, dst := range requestBodies() {
			dst = reflect.New(reflect.TypeOf(dst).Elem()).Interface()
			err := decodeJSON(body, dst)
			if err == nil {
				if field, bad := badText(reflect.ValueOf(dst).Elem(), ""); bad {
					t.Fatalf("%T accepted %q with bad text in %s", dst, body, field)
				}
				continue
			}
			var in *errInput
			if !errors.As(err, &in) || in.status != 400 {
				t.Fatalf("%T: %q: %v is not a 400", dst, body, err)
			}
			if strings.Contains(in.detail, "Body") || strings.Contains(in.detail, "json:") || strings.Contains(in.detail, "http.") {
				t.Fatalf("%T: %q: the error speaks Go: %s", dst, body, in.detail)
			}
		}
	})
}

// A query string that passes holds only text PostgreSQL can compare.
func FuzzQueryText(f *testing.F) {
	for _, seed := range []string{"q=a%00b", "q=%ff", "type=UserAssigned&limit=5", "assigned_user=me&q=x", "%ff=1", "a=b;c"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		if err := badQueryText(q); err == nil {
			for k, vs := range q {
				for _, v := range append(vs, k) {
					if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
						t.Fatalf("%q passed with %q", raw, v)
					}
				}
			}
		}
	})
}

// A cursor is opaque: anything else is a 400, never a panic.
func FuzzDecodeCursor(f *testing.F) {
	for _, seed := range []string{encodeCursor(50), encodeCursor(map[string]any{"name": "x", "id": "y"}), "", "!!", "bnVsbA"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		var offset int
		var after struct{ Name, ID string }
		for _, dst := range []any{&offset, &after} {
			if err := decodeCursor(cursor, dst); err != nil {
				var in *errInput
				if !errors.As(err, &in) || in.status != 400 || in.field != "cursor" {
					t.Fatalf("%q: %v", cursor, err)
				}
			}
		}
	})
}

// An import file that passes holds only text PostgreSQL can store; a
// refusal names a field.
func FuzzImportText(f *testing.F) {
	h := "First Name,Last Name,Email,Phone Number,Team\n"
	for _, seed := range []string{h + "Ada,Lovelace,ada@client.example,,\n", h + "A\x00Z,x,y,,\n", h + "\"a\xff\",b,c,d,e\n", "\xff\n", "\"unterminated\x00"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := badCSVText(body)
		if err == nil {
			if !utf8.Valid(body) || strings.IndexByte(string(body), 0) >= 0 {
				t.Fatalf("%q passed", body)
			}
			return
		}
		var in *errInput
		if !errors.As(err, &in) || in.status != 400 || in.field == "" {
			t.Fatalf("%q: %v", body, err)
		}
	})
}
