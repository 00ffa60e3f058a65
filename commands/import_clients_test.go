package commands_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

func TestImportClients(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	b.policy(t, domain.Policy{MaxAssignees: ptr(2), RequireLead: true, MembersCanSelfAssign: true})
	if _, err := cmd.CreateUser(ctx, b.admin, "Tom", "tom@acme.example", domain.RoleMember); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.CreateUser(ctx, b.admin, "Tess", "tess@acme.example", domain.RoleMember); err != nil {
		t.Fatal(err)
	}
	existing, err := cmd.RegisterCustomer(ctx, b.admin, domain.Profile{FirstName: "Old", LastName: "Name", Email: "old@client.example"})
	wantErr(t, err, "")

	good := "First Name,Last Name,Email,Phone Number,Team\n" +
		"Ann,Able,ann@client.example,123,tom@acme.example;TESS@acme.example\n" +
		"Ben,Baker,ben@client.example,,\n" +
		"New,Name,old@client.example,,\n"
	before := b.eventCount(t)

	rep, err := cmd.ImportClients(ctx, b.admin, strings.NewReader(good), commands.ImportOptions{DryRun: true, UpdateExisting: true})
	wantErr(t, err, "")
	if rep.Created != 2 || rep.Updated != 1 || rep.Unchanged != 0 || len(rep.Errors) != 0 {
		t.Fatalf("dry run %+v", rep)
	}
	if b.eventCount(t) != before {
		t.Fatal("dry run wrote")
	}

	bad := "\ufeffFirst Name,Last Name,Email,Phone Number,Team\n" +
		"Ann,Able,ann@client.example,123,tom@acme.example\n" +
		"No,Email,,,\n" +
		"Dup,Row,ANN@client.example,,\n" +
		"Bad,Team,c@client.example,,nobody@acme.example\n" +
		"Too,Many,d@client.example,,tom@acme.example;tess@acme.example;ada@acme.example\n" +
		"Short,Row\n"
	_, err = cmd.ImportClients(ctx, b.admin, strings.NewReader(bad), commands.ImportOptions{})
	var rejected *commands.ImportRejectedError
	if !errors.As(err, &rejected) {
		t.Fatalf("want ImportRejectedError, got %v", err)
	}
	var rows []int
	for _, e := range rejected.Report.Errors {
		rows = append(rows, e.Row)
	}
	if len(rows) != 5 || rows[0] != 2 || rows[1] != 3 || rows[2] != 4 || rows[3] != 5 || rows[4] != 6 {
		t.Fatalf("errors %+v", rejected.Report.Errors)
	}
	if b.eventCount(t) != before {
		t.Fatal("rejected import wrote")
	}

	// Without update_existing an existing email is left alone.
	rep, err = cmd.ImportClients(ctx, keyed(b.admin, "imp", good), strings.NewReader(good), commands.ImportOptions{})
	wantErr(t, err, "")
	if rep.Created != 2 || rep.Unchanged != 1 || rep.Updated != 0 || rep.Position == 0 || rep.Errors == nil {
		t.Fatalf("import %+v", rep)
	}
	var corr, n int
	_ = b.pool.QueryRow(ctx, `SELECT count(DISTINCT metadata->>'correlation_id'), count(*) FROM events WHERE position > $1`, before).Scan(&corr, &n)
	if corr != 1 || n != 4 { // 2 registered + 2 assigned
		t.Fatalf("%d events, %d correlation ids", n, corr)
	}
	again, err := cmd.ImportClients(ctx, keyed(b.admin, "imp", good), strings.NewReader(good), commands.ImportOptions{})
	wantErr(t, err, "")
	if again.Created != rep.Created || again.Unchanged != rep.Unchanged || again.Position != rep.Position || b.eventCount(t) != before+4 {
		t.Fatalf("replay %+v", again)
	}

	// With update_existing: names change, the rest is unchanged.
	rep, err = cmd.ImportClients(ctx, b.admin, strings.NewReader(good), commands.ImportOptions{UpdateExisting: true})
	wantErr(t, err, "")
	if rep.Created != 0 || rep.Updated != 1 || rep.Unchanged != 2 {
		t.Fatalf("update %+v", rep)
	}
	v, _ := cmd.GetCustomer(ctx, b.tenantID, existing.ID)
	if v.FirstName != "New" || v.LastName != "Name" {
		t.Fatalf("not updated: %+v", v)
	}

	_, err = cmd.ImportClients(ctx, b.admin, strings.NewReader("Name,Email\nx,y\n"), commands.ImportOptions{})
	wantErr(t, err, "validation")
	_, err = cmd.ImportClients(ctx, b.memberMeta(b.user(t)), strings.NewReader(good), commands.ImportOptions{})
	wantErr(t, err, "forbidden")

	tpl := string(cmd.ImportTemplate())
	if !strings.HasPrefix(tpl, "First Name,Last Name,Email,Phone Number,Team\n") || strings.Count(tpl, "\n") != 2 {
		t.Fatalf("template %q", tpl)
	}
}
