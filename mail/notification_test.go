package mail

import (
	"encoding/json"
	netmail "net/mail"
	"strings"
	"testing"
	"time"
)

// TestNotificationEmailAnyType: every notification type renders, one the
// mail package has never heard of too (types are added without code here).
func TestNotificationEmailAnyType(t *testing.T) {
	from := &netmail.Address{Name: "Acme", Address: "ledger@acme.example"}
	for _, typ := range []string{"assigned", "rule_found_no_one", "follow_up_due", "some_new_kind"} {
		payload, _ := json.Marshal(Notification{Name: "Nia", Email: "nia@acme.example", ID: "7-u", Type: typ,
			CustomerID: "c1", At: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
		out, err := render(KindNotification, "0193f7c2-0000-7000-8000-000000000001", payload, from, "https://l.example/", time.Now())
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		msg := string(out.msg)
		if out.to != "nia@acme.example" || !strings.Contains(msg, "https://l.example/customers/c1") ||
			!strings.Contains(msg, "Subject: Ledger: "+strings.ReplaceAll(typ, "_", " ")) {
			t.Fatalf("%s:\n%s", typ, msg)
		}
	}
}
