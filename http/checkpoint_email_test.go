package http_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime/quotedprintable"
	netmail "net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/smtptest"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/ledgerlog"
	"github.com/assignment-ledger/ledger/mail"
)

// TestCheckpointEmailedToAuditorsOnceADay: the daily job queues one e-mail
// per active auditor (no admin, no member) through the outbox; running it
// again the same day, from this process or from another one at the same
// time, queues nothing; a new day queues again. Each e-mail delivered
// holds the signed checkpoint note, which verifies with the public key.
func TestCheckpointEmailedToAuditorsOnceADay(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	ctx := context.Background()
	auditors := map[string]bool{}
	for _, name := range []string{"Aldo Auditor", "Alba Auditor"} {
		a := b.createUser(t, name, "auditor")
		auditors[a.must(200, "GET", "/v1/users/"+a.userID, nil).json(t)["email"].(string)] = true
	}
	b.createUser(t, "Mia Member", "member")
	gone := b.createUser(t, "Gus Gone", "auditor")
	r := b.admin.must(200, "POST", "/v1/users/"+gone.userID+"/deactivate", map[string]any{})
	cp, _ := b.checkpointAfter(t, r.header.Get("X-Ledger-Position"))

	logLog := ledgerlog.New(b.pool, b.signingKey, "https://ledger.example", slog.New(slog.DiscardHandler))
	// Another `serve` process: its own Commands over the same database.
	other := commands.New(eventstore.New(b.pool), testdb.Keyring(t), nil, commands.WithEmail())
	day1 := time.Date(2026, 3, 2, 0, 5, 0, 0, time.UTC)

	if n, err := b.cmd.EmailCheckpoints(ctx, logLog, day1); err != nil || n != 2 {
		t.Fatalf("first run of the day: %d e-mails, %v", n, err)
	}
	for _, cmd := range []*commands.Commands{b.cmd, other} {
		if n, err := cmd.EmailCheckpoints(ctx, logLog, day1.Add(20*time.Hour)); err != nil || n != 0 {
			t.Fatalf("second run the same day: %d e-mails, %v", n, err)
		}
	}
	// Two processes at once on a new day: one of them queues the day's.
	day2 := day1.AddDate(0, 0, 1)
	var wg sync.WaitGroup
	got := make([]int, 2)
	for i, cmd := range []*commands.Commands{b.cmd, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := cmd.EmailCheckpoints(ctx, logLog, day2)
			if err != nil {
				t.Error(err)
			}
			got[i] = n
		}()
	}
	wg.Wait()
	if got[0]+got[1] != 2 {
		t.Fatalf("two processes on a new day queued %v e-mails, want 2 in all", got)
	}
	var rows, claims int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE kind = 'checkpoint'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM checkpoint_emails WHERE tenant_id = $1`, b.tenant).Scan(&claims); err != nil {
		t.Fatal(err)
	}
	if rows != 4 || claims != 2 {
		t.Fatalf("outbox holds %d checkpoint e-mails and %d day claims, want 4 and 2", rows, claims)
	}

	vkey := string((&client{t: t, base: b.base}).must(200, "GET", "/v1/ledger/public-key", nil).body)
	msgs := srv.Wait(t, 4, 15*time.Second)
	if len(msgs) != 4 {
		t.Fatalf("%d e-mails delivered, want 4", len(msgs))
	}
	var to []string
	for _, m := range msgs {
		to = append(to, m.To...)
		note := checkpointNote(t, m.Data)
		opened, err := ledgerlog.Open([]byte(note), vkey)
		if err != nil {
			t.Fatalf("the e-mailed note does not verify with the public key: %v\n%s", err, note)
		}
		if opened.Size < cp.TreeSize || opened.Origin != "https://ledger.example/tenants/"+b.tenant {
			t.Fatalf("e-mailed checkpoint %+v, taken before it %+v", opened, cp)
		}
	}
	slices.Sort(to)
	if len(to) != 4 || !auditors[to[0]] || to[0] != to[1] || !auditors[to[2]] || to[2] != to[3] || to[0] == to[2] {
		t.Fatalf("e-mailed %v, want each of the active auditors %v twice", to, auditors)
	}
}

// checkpointNote is the signed note between the e-mail's markers, as an
// auditor saves it from the decoded text.
func checkpointNote(t *testing.T, raw []byte) string {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	_, rest, ok := strings.Cut(text, mail.CheckpointBegin+"\n")
	note, _, ok2 := strings.Cut(rest, mail.CheckpointEnd)
	if !ok || !ok2 {
		t.Fatalf("no checkpoint between the markers:\n%s", text)
	}
	return note
}

// TestAdminOptsInToCheckpointEmail: an admin who opts in (PATCH
// checkpoint_email) gets the day's checkpoint e-mail beside the auditor,
// and after opting out no longer does on a later day; a member cannot opt
// in (403 for themselves, 400 when an admin tries it for them), nor can an
// auditor be opted out of it. Users show checkpoint_email.
func TestAdminOptsInToCheckpointEmail(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	ctx := context.Background()
	auditor := b.createUser(t, "Aldo Auditor", "auditor")
	member := b.createUser(t, "Mia Member", "member")
	other := b.createUser(t, "Otto Admin", "admin")
	email := func(c *client) string {
		return b.admin.must(200, "GET", "/v1/users/"+c.userID, nil).json(t)["email"].(string)
	}
	optIn := func(c *client) any {
		return b.admin.must(200, "GET", "/v1/users/"+c.userID, nil).json(t)["checkpoint_email"]
	}

	member.must(403, "PATCH", "/v1/users/"+member.userID, map[string]any{"checkpoint_email": true})
	b.admin.must(400, "PATCH", "/v1/users/"+member.userID, map[string]any{"checkpoint_email": true})
	b.admin.must(400, "PATCH", "/v1/users/"+auditor.userID, map[string]any{"checkpoint_email": true})
	if optIn(member) != false || optIn(auditor) != true || optIn(b.admin) != false {
		t.Fatalf("checkpoint_email: member %v, auditor %v, admin %v; want false, true, false",
			optIn(member), optIn(auditor), optIn(b.admin))
	}
	r := b.admin.must(200, "PATCH", "/v1/users/"+b.admin.userID, map[string]any{"checkpoint_email": true})
	res := r.json(t)
	if res["checkpoint_email"] != true || optIn(b.admin) != true || optIn(other) != false {
		t.Fatalf("after opting in: answer %v, admin %v, other admin %v", res, optIn(b.admin), optIn(other))
	}
	list := b.admin.must(200, "GET", "/v1/users?limit=100", nil).json(t)
	for _, u := range list["items"].([]any) {
		u := u.(map[string]any)
		if want := u["id"] == b.admin.userID || u["id"] == auditor.userID; u["checkpoint_email"] != want {
			t.Fatalf("user list shows %v, want checkpoint_email %v", u, want)
		}
	}
	// The opt-in is an event on the user's stream, like a name or role.
	var typ, optedIn string
	if err := b.pool.QueryRow(ctx, `SELECT type, coalesce(data->>'checkpoint_email', '') FROM events
		WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1`, b.admin.userID).Scan(&typ, &optedIn); err != nil ||
		typ != "UserUpdated" || optedIn != "true" {
		t.Fatalf("last event of the admin's stream: %s checkpoint_email=%q, %v", typ, optedIn, err)
	}

	logLog := ledgerlog.New(b.pool, b.signingKey, "https://ledger.example", slog.New(slog.DiscardHandler))
	b.checkpointAfter(t, r.header.Get("X-Ledger-Position"))
	// recipients queues the day's checkpoint e-mails and returns whom the
	// SMTP server got them for. (Not the outbox rows' payloads: the relay
	// empties a row's payload once it is sent, and reading them raced it.)
	recipients := func(day time.Time) []string {
		t.Helper()
		n, err := b.cmd.EmailCheckpoints(ctx, logLog, day)
		if err != nil {
			t.Fatal(err)
		}
		of := []byte("for " + day.Format(time.DateOnly))
		deadline := time.Now().Add(15 * time.Second)
		for {
			var to []string
			for _, m := range srv.Messages() {
				if bytes.Contains(m.Data, of) {
					to = append(to, m.To...)
				}
			}
			if len(to) >= n || time.Now().After(deadline) {
				slices.Sort(to)
				return to
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	day1 := time.Date(2026, 3, 2, 0, 5, 0, 0, time.UTC)
	want := []string{email(auditor), email(b.admin)}
	slices.Sort(want)
	if to := recipients(day1); !slices.Equal(to, want) {
		t.Fatalf("day 1 e-mailed %v, want the auditor and the admin who opted in %v", to, want)
	}
	b.admin.must(200, "PATCH", "/v1/users/"+b.admin.userID, map[string]any{"checkpoint_email": false})
	if optIn(b.admin) != false {
		t.Fatal("the admin still shows checkpoint_email after opting out")
	}
	if to := recipients(day1.AddDate(0, 0, 1)); !slices.Equal(to, []string{email(auditor)}) {
		t.Fatalf("day 2 e-mailed %v, want only the auditor", to)
	}
}
