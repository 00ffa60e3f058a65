package http_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/smtptest"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// TestNotifyByEmailOncePerNotification: a user with notify_by_email handed
// 3 customers in one bulk edit gets one e-mail per notification (3),
// queued once although two processes look for them at once and again
// later, and delivered once each although the relay's first delivery of
// each fails (the server answers 451 after the data: a relay that must
// retry). A user without notify_by_email gets none, and notifications
// from before the user turned it on are not e-mailed.
func TestNotifyByEmailOncePerNotification(t *testing.T) {
	srv := smtptest.Start(t)
	var mu sync.Mutex
	failedOnce := map[string]bool{}
	srv.SetHook(func(st smtptest.Stage, m *smtptest.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if st == smtptest.StageData && !failedOnce[m.MessageID] {
			failedOnce[m.MessageID] = true
			return smtptest.Temporary
		}
		return nil
	})
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	ctx := context.Background()
	nia := b.createUser(t, "Nia Notified", "member")
	quiet := b.createUser(t, "Quinn Quiet", "member")
	niaEmail := b.admin.must(200, "GET", "/v1/users/"+nia.userID, nil).json(t)["email"].(string)

	old := b.createCustomer(t, "Olden")
	r := b.admin.must(200, "POST", "/v1/customers/"+old+"/assignees", map[string]string{"user_id": nia.userID})
	b.admin.must(200, "GET", "/v1/users/"+nia.userID+"/notifications", nil, hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")})
	nia.must(200, "PATCH", "/v1/users/me", map[string]any{"notify_by_email": true})

	ids := []string{b.createCustomer(t, "Ada"), b.createCustomer(t, "Bea"), b.createCustomer(t, "Cyd")}
	r = b.admin.must(200, "POST", "/v1/assignments/bulk", map[string]any{"action": "add", "customer_ids": ids, "user_ids": []string{nia.userID, quiet.userID}})
	pos := hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")}
	n := b.admin.must(200, "GET", "/v1/users/"+nia.userID+"/notifications", nil, pos).json(t)
	if len(n["items"].([]any)) != 4 {
		t.Fatalf("notifications: %v", n)
	}

	other := commands.New(eventstore.New(b.pool), testdb.Keyring(t), nil, commands.WithEmail())
	got := make([]int, 2)
	var wg sync.WaitGroup
	for i, cmd := range []*commands.Commands{b.cmd, other} {
		wg.Go(func() {
			q, err := cmd.EmailNotifications(ctx, time.Now())
			if err != nil {
				t.Error(err)
			}
			got[i] = q
		})
	}
	wg.Wait()
	if got[0]+got[1] != 3 {
		t.Fatalf("two processes queued %v e-mails, want 3 in all", got)
	}
	for _, cmd := range []*commands.Commands{b.cmd, other} {
		if q, err := cmd.EmailNotifications(ctx, time.Now()); err != nil || q != 0 {
			t.Fatalf("again: %d %v", q, err)
		}
	}
	srv.Wait(t, 3, 15*time.Second)
	// Every row sent (none left to retry), each after one refused attempt:
	// what the server holds now is all it will ever get.
	waitFor(t, 15*time.Second, func() bool {
		var sent, retried int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE attempts = 2)
			FROM outbox WHERE kind = 'notification'`).Scan(&sent, &retried); err != nil {
			t.Fatal(err)
		}
		return sent == 3 && retried == 3
	})
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d e-mails delivered, want 3", len(msgs))
	}
	var seen []string
	for _, m := range msgs {
		if len(m.To) != 1 || m.To[0] != niaEmail {
			t.Fatalf("e-mailed %v, want %s", m.To, niaEmail)
		}
		body := string(m.Data)
		if !strings.Contains(body, "Subject: Ledger: assigned") || !strings.Contains(body, "https://ledger.example/customers/") {
			t.Fatalf("e-mail:\n%s", body)
		}
		seen = append(seen, m.MessageID)
	}
	slices.Sort(seen)
	if len(slices.Compact(seen)) != 3 {
		t.Fatalf("message IDs %v", seen)
	}
	// Turning it off stops the e-mails.
	nia.must(200, "PATCH", "/v1/users/me", map[string]any{"notify_by_email": false})
	r = b.admin.must(200, "DELETE", "/v1/customers/"+ids[0]+"/assignees/"+nia.userID, nil)
	b.admin.must(200, "GET", "/v1/users/"+nia.userID+"/notifications", nil, hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")})
	if q, err := b.cmd.EmailNotifications(ctx, time.Now()); err != nil || q != 0 {
		t.Fatalf("after turning it off: %d %v", q, err)
	}
}
