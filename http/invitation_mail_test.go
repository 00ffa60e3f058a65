package http_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	nethttp "net/http"
	netmail "net/mail"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/internal/smtptest"
)

// mailBody is a received e-mail's header and decoded text.
func mailBody(t *testing.T, m smtptest.Message) (netmail.Header, string) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Header, string(text)
}

var linkRE = regexp.MustCompile(`https://ledger\.example/invitations/[A-Za-z0-9_-]+`)

// local turns an invitation link (under the harness's base URL) into a
// path on the test server.
func local(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

type invitationState struct {
	Status     string `json:"status"`
	Invitation *struct {
		Status string     `json:"status"`
		Email  string     `json:"email"`
		SentAt *time.Time `json:"sent_at"`
	} `json:"invitation"`
}

func TestInvitationEmailReachesTheClientWithAWorkingLink(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	b.setPolicy(t, nil, true, true, true)
	bob := b.admin.must(201, "POST", "/v1/users", map[string]string{"name": "Bob Baker", "email": "bob@acme.example", "role": "member"}).json(t)["id"].(string)
	zoe := b.admin.must(201, "POST", "/v1/users", map[string]string{"name": "Zoë O'Hara & Co", "email": "zoe@acme.example", "role": "member"}).json(t)["id"].(string)

	// A refused invitation queues no e-mail (one is counted at the end).
	if r := b.admin.do("POST", "/v1/clients/invitations", map[string]any{"first_name": "Nat", "email": "nat@client.example", "send_email": true}); r.status != 422 || r.code() != "team_required" {
		t.Fatalf("invitation without a team: %d %s", r.status, r.body)
	}
	r := b.admin.must(201, "POST", "/v1/clients/invitations", map[string]any{
		"first_name": "Carla", "last_name": "Client", "email": "carla@client.example", "team": []string{bob, zoe}, "send_email": true})
	var inv struct {
		Customer      invitationState `json:"customer"`
		InvitationURL string          `json:"invitation_url"`
	}
	r.decode(t, &inv)
	if inv.Customer.Invitation == nil || inv.Customer.Invitation.Status != "pending" || inv.Customer.Invitation.Email != "queued" {
		t.Fatalf("invitation answer: %s", r.body)
	}
	id := r.json(t)["customer"].(map[string]any)["id"].(string)

	m := srv.Wait(t, 1, 15*time.Second)[0]
	if len(m.To) != 1 || m.To[0] != "carla@client.example" || m.From != "ledger@acme.example" {
		t.Fatalf("envelope from %q to %v", m.From, m.To)
	}
	h, text := mailBody(t, m)
	if to, err := netmail.ParseAddress(h.Get("To")); err != nil || to.Address != "carla@client.example" {
		t.Errorf("To: %q", h.Get("To"))
	}
	if link := linkRE.FindString(text); link != inv.InvitationURL {
		t.Fatalf("link in the e-mail %q, want %q:\n%s", link, inv.InvitationURL, text)
	}
	for _, want := range []string{"Bob Baker <bob@acme.example> (team lead)", "Zoë O'Hara & Co <zoe@acme.example>"} {
		if !strings.Contains(text, want) {
			t.Errorf("e-mail lacks %q:\n%s", want, text)
		}
	}

	// The customer shows the e-mail sent.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c invitationState
		b.admin.must(200, "GET", "/v1/customers/"+id, nil).decode(t, &c)
		if c.Invitation != nil && c.Invitation.Email == "sent" {
			if c.Invitation.Status != "pending" || c.Invitation.SentAt == nil {
				t.Fatalf("after sending: %+v", *c.Invitation)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invitation e-mail never shown sent: %+v", c.Invitation)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The outcome is in the customer's history, once.
	var hist struct {
		Items []struct {
			Type  string            `json:"type"`
			Actor map[string]string `json:"actor"`
			Data  map[string]any    `json:"data"`
		} `json:"items"`
	}
	b.admin.must(200, "GET", "/v1/customers/"+id+"/history", nil).decode(t, &hist)
	var emailed []map[string]any
	for _, it := range hist.Items {
		if it.Type == "InvitationEmailed" {
			emailed = append(emailed, it.Data)
			if it.Actor["name"] != "mail relay" {
				t.Errorf("InvitationEmailed by %v", it.Actor)
			}
		}
	}
	if len(emailed) != 1 || fmt.Sprintf("<%v@acme.example>", emailed[0]["message_id"]) != m.MessageID || emailed[0]["outcome"] != "sent" || emailed[0]["customer_id"] != id {
		t.Errorf("InvitationEmailed events: %v (Message-ID %s)", emailed, m.MessageID)
	}

	// The read models fold it too: the list reaches the stream's version.
	version := b.admin.must(200, "GET", "/v1/customers/"+id, nil).json(t)["version"]
	for deadline := time.Now().Add(10 * time.Second); ; {
		var list struct {
			Items []map[string]any `json:"items"`
		}
		b.admin.must(200, "GET", "/v1/customers?q=carla", nil).decode(t, &list)
		if len(list.Items) == 1 && list.Items[0]["version"] == version {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list %v never reached version %v", list.Items, version)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The link opens the client's page: its team, escaped, and Accept.
	anon := &client{t: t, base: b.base}
	path := local(t, linkRE.FindString(text))
	page := anon.must(200, "GET", path, nil)
	html := string(page.body)
	if !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") || page.header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("page headers: %v", page.header)
	}
	for _, want := range []string{"Hello Carla", "Bob Baker", "bob@acme.example", "Zoë O&#39;Hara &amp; Co", "zoe@acme.example", `<form method="post">`, "Accept</button>"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q:\n%s", want, html)
		}
	}
	// Its button accepts.
	resp, err := nethttp.PostForm(b.base+path, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	accepted, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(accepted), "accepted") {
		t.Fatalf("accept by the page: %d %s", resp.StatusCode, accepted)
	}
	var c invitationState
	b.admin.must(200, "GET", "/v1/customers/"+id, nil).decode(t, &c)
	if c.Status != "active" || c.Invitation == nil || c.Invitation.Status != "accepted" || c.Invitation.Email != "sent" {
		t.Fatalf("after accepting: %+v %+v", c, c.Invitation)
	}
	if r := anon.do("GET", path, nil); r.status != 404 {
		t.Errorf("used invitation's page: %d", r.status)
	}
	if r := anon.do("GET", "/invitations/nonsense", nil, hdr{"Accept": "text/html"}); r.status != 404 || !strings.Contains(string(r.body), "not found") {
		t.Errorf("unknown invitation's page: %d %s", r.status, r.body)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d e-mails, want 1", n)
	}
}

func TestInvitationWithoutEmailSaysSoAndWritesNothing(t *testing.T) {
	b := setup(t)
	bob := b.admin.must(201, "POST", "/v1/users", map[string]string{"name": "Bob Baker", "email": "bob@acme.example", "role": "member"}).json(t)["id"].(string)
	before := b.countEvents(t)
	r := b.admin.do("POST", "/v1/clients/invitations", map[string]any{"first_name": "Carla", "email": "carla@client.example", "team": []string{bob}, "send_email": true})
	if r.status != 422 || r.code() != "email_not_configured" {
		t.Fatalf("send_email without e-mail: %d %s", r.status, r.body)
	}
	r = b.admin.csv("POST", "/v1/clients/import?invite=true", "Email,Team\ncarla@client.example,bob@acme.example\n")
	if r.status != 422 || r.code() != "email_not_configured" {
		t.Fatalf("import invite without e-mail: %d %s", r.status, r.body)
	}
	if after := b.countEvents(t); after != before {
		t.Fatalf("%d events appended by refused requests", after-before)
	}
	// Without send_email an invitation shows no e-mail.
	r = b.admin.must(201, "POST", "/v1/clients/invitations", map[string]any{"first_name": "Carla", "email": "carla@client.example", "team": []string{bob}})
	var inv struct {
		Customer invitationState `json:"customer"`
	}
	r.decode(t, &inv)
	if inv.Customer.Invitation == nil || inv.Customer.Invitation.Status != "pending" || inv.Customer.Invitation.Email != "" {
		t.Fatalf("invitation without e-mail: %s", r.body)
	}
}

func TestImportInviteEmailsEachNewClient(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	b.admin.must(201, "POST", "/v1/users", map[string]string{"name": "Bob Baker", "email": "bob@acme.example", "role": "member"})
	b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": "Old", "email": "old@client.example"})
	file := "Team,email,First Name\nbob@acme.example,ada@client.example,Ada\nbob@acme.example,alan@client.example,Alan\n,old@client.example,Old\n"
	key := hdr{"Idempotency-Key": "import-invite-1"}
	r := b.admin.csv("POST", "/v1/clients/import?invite=true", file, key)
	if r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	var report struct {
		Created     int `json:"created"`
		Unchanged   int `json:"unchanged"`
		Invitations []struct {
			Row           int    `json:"row"`
			CustomerID    string `json:"customer_id"`
			InvitationURL string `json:"invitation_url"`
		} `json:"invitations"`
	}
	r.decode(t, &report)
	if report.Created != 2 || report.Unchanged != 1 || len(report.Invitations) != 2 ||
		report.Invitations[0].Row != 1 || report.Invitations[1].Row != 2 {
		t.Fatalf("report: %s", r.body)
	}
	links := map[string]string{} // recipient → link
	for _, m := range srv.Wait(t, 2, 15*time.Second) {
		_, text := mailBody(t, m)
		if !strings.Contains(text, "Bob Baker <bob@acme.example>") {
			t.Errorf("e-mail to %v lacks the team:\n%s", m.To, text)
		}
		links[m.To[0]] = linkRE.FindString(text)
	}
	for i, email := range []string{"ada@client.example", "alan@client.example"} {
		inv := report.Invitations[i]
		if links[email] != inv.InvitationURL {
			t.Errorf("%s got link %q, the report says %q", email, links[email], inv.InvitationURL)
		}
		if c := b.admin.must(200, "GET", "/v1/customers/"+inv.CustomerID, nil).json(t); c["status"] != "invited" || c["email"] != email {
			t.Errorf("customer %s: %v", inv.CustomerID, c)
		}
	}
	// The links' tokens are not stored: a replay cannot answer them.
	if r := b.admin.csv("POST", "/v1/clients/import?invite=true", file, key); r.status != 409 || r.code() != "replay_unavailable" {
		t.Errorf("replayed invite import: %d %s", r.status, r.body)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("%d e-mails, want 2", n)
	}
}
