package domain_test

import (
	"errors"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

// TestSingleLineFieldsRefuseControlCharacters: every single-line field of
// the domain refuses C0 (tab and line breaks included), DEL and C1
// controls, naming the field; a message body keeps line breaks and tabs.
func TestSingleLineFieldsRefuseControlCharacters(t *testing.T) {
	for _, bad := range []string{"A\x1bZ", "A\aZ", "A\rZ", "A\nZ", "Ann\n", "\tAnn", "A\x7fZ", "A\u0080Z", "A\u009bZ", "A\u0085Z",
		"A\u2028Z", "A\u2029Z", "\u202egnp.exe", "A\u202aZ", "A\u2066Z", "A\u2069Z"} {
		checks := map[string]func() error{
			"first_name": func() error {
				_, err := domain.NormalizeProfile(domain.Profile{FirstName: bad, Email: "a@b.example"})
				return err
			},
			"last_name": func() error {
				_, err := domain.NormalizeProfile(domain.Profile{LastName: bad, Email: "a@b.example"})
				return err
			},
			"phone": func() error {
				_, err := domain.NormalizeProfile(domain.Profile{Phone: bad, Email: "a@b.example"})
				return err
			},
			"external_id": func() error {
				_, err := domain.NormalizeProfile(domain.Profile{ExternalID: bad, Email: "a@b.example"})
				return err
			},
			"title": func() error {
				_, err := domain.NormalizeProfile(domain.Profile{Title: bad, Email: "a@b.example"})
				return err
			},
			"email": func() error {
				_, err := domain.NormalizeProfile(domain.Profile{FirstName: "Ann", Email: bad + "@b.example"})
				return err
			},
			"name": func() error {
				_, err := domain.CreateUser("u1", "t1", bad, "a@b.example", domain.RoleMember)
				return err
			},
			"group": func() error { _, err := domain.NormalizeGroupName(bad); return err },
			"subject": func() error {
				_, err := domain.NewMessageText(bad, "body")
				return err
			},
		}
		for field, check := range checks {
			want := field
			if field == "group" {
				want = "name"
			}
			var v *domain.ValidationError
			if err := check(); !errors.As(err, &v) || v.Field != want {
				t.Errorf("%s %q: %v, want a ValidationError on %s", field, bad, err, want)
			}
		}
	}
	if _, err := domain.NormalizeProfile(domain.Profile{FirstName: " Ann ", Title: "Dr. é", Email: " A@B.example "}); err != nil {
		t.Fatalf("plain text: %v", err)
	}
	if _, err := domain.NewMessageText("Hi", "Dear Ann,\r\n\tbye"); err != nil {
		t.Fatalf("a multi-line body: %v", err)
	}
}
