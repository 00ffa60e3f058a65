package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// runImports measures CSV imports of -import-rows clients and of a tenth as
// many (10,000 and 100,000 by default, 100,000 being the most a file may
// hold), each one all-or-nothing transaction, through the command (the
// file from memory, as the HTTP handler passes its body): time and the
// process's peak heap in use, which must not grow with the file (the
// import holds a batch of rows, not the file's events). Then the customer
// list, all of their customers, is exported in every format (runExports).
func runImports(ctx context.Context, o options, srv *server, rep *report) error {
	pool, _, err := srv.createDB(ctx, "imports", 32, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := eventstore.New(pool)
	cmd := commands.New(store, benchKeyring(), srv.log)
	boot, err := cmd.Bootstrap(ctx, "Bench", "Bench Admin", "admin@bench.example")
	if err != nil {
		return err
	}
	admin := commands.Meta{TenantID: boot.TenantID, Actor: domain.Actor{UserID: boot.UserID, Name: "Bench Admin", Role: domain.RoleAdmin}}
	if _, err := cmd.CreateUser(ctx, admin, "Import User", "importer@bench.example", domain.RoleMember); err != nil {
		return err
	}
	details := map[string]any{}
	total := 0
	for _, rows := range []int{o.importRows / 10, o.importRows} {
		var file bytes.Buffer
		file.WriteString("First Name,Last Name,Email,Phone Number,Team\n")
		for i := range rows {
			fmt.Fprintf(&file, "Imp%d_%06d,Client,imp%d_%06d@bench.example,+1 555 %04d,importer@bench.example\n", rows, i, rows, i, i%10000)
		}
		runtime.GC()
		peak := sampleHeaps()
		began := time.Now()
		r, err := cmd.ImportClients(ctx, admin, bytes.NewReader(file.Bytes()), commands.ImportOptions{})
		took := time.Since(began)
		heap, live := peak()
		if err != nil {
			return fmt.Errorf("import of %d rows: %w", rows, err)
		}
		if r.Created != rows {
			return fmt.Errorf("import of %d rows created %d", rows, r.Created)
		}
		total += rows
		fmt.Fprintf(os.Stderr, "   import of %d rows (%.1f MB): %s, peak heap %.0f MB in use, %.0f MB live\n", rows, float64(file.Len())/(1<<20), took.Round(time.Millisecond), heap, live)
		rep.add(figure{Phase: "imports", Name: fmt.Sprintf("import, %d rows", rows), Value: took.Seconds(), Unit: "s",
			Note: "one transaction, all or nothing, each client with a team member"})
		rep.add(figure{Phase: "imports", Name: fmt.Sprintf("import %d rows peak heap", rows), Value: heap, Unit: "MB",
			Note: "heap in use, garbage included (GOGC 400)"})
		rep.add(figure{Phase: "imports", Name: fmt.Sprintf("import %d rows peak live heap", rows), Value: live, Unit: "MB",
			Note: "the file itself included"})
		details[fmt.Sprintf("import %d", rows)] = map[string]any{"seconds": took.Seconds(), "peak_heap_mb": heap, "peak_live_heap_mb": live, "bytes": file.Len()}
	}
	seconds, err := importWithRules(ctx, o.importRows/10, cmd, admin)
	if err != nil {
		return err
	}
	total += o.importRows / 10
	plain := details[fmt.Sprintf("import %d", o.importRows/10)].(map[string]any)["seconds"].(float64)
	rep.add(figure{Phase: "imports", Name: fmt.Sprintf("import with assignment rules, %d rows", o.importRows/10), Value: seconds, Unit: "s",
		Note: fmt.Sprintf("rows without a team, a round_robin rule over %d users picks each one's; %.2f × the import with teams given", ruleUsers, seconds/plain)})
	details[fmt.Sprintf("import %d with rules", o.importRows/10)] = map[string]any{"seconds": seconds, "ratio_to_teams_given": seconds / plain}
	rep.detail("imports", details)
	return runExports(ctx, "imports", pool, store, cmd, boot.APIKey, total, srv, rep)
}

// ruleUsers is how many users the rules import's rule rotates over.
const ruleUsers = 10

// importWithRules imports rows clients without a team, each given a user
// by a round_robin assignment rule (issue 22; the tests check the
// rotation), and answers the import's time in seconds.
func importWithRules(ctx context.Context, rows int, cmd *commands.Commands, admin commands.Meta) (float64, error) {
	users := make([]string, ruleUsers)
	for i := range users {
		u, err := cmd.CreateUser(ctx, admin, fmt.Sprintf("Rule User %d", i), fmt.Sprintf("rule%d@bench.example", i), domain.RoleMember)
		if err != nil {
			return 0, err
		}
		users[i] = u.ID
	}
	if _, err := cmd.CreateRule(ctx, admin, domain.RuleBody{Name: "Rules bench", Match: domain.RuleMatch{EmailDomain: domain.Domains{"rules.bench.example"}},
		Assign: domain.RuleAssign{UserIDs: users, Strategy: domain.StrategyRoundRobin}}); err != nil {
		return 0, err
	}
	var file bytes.Buffer
	file.WriteString("First Name,Last Name,Email,Phone Number,Team\n")
	for i := range rows {
		fmt.Fprintf(&file, "Rule%06d,Client,rule%06d@rules.bench.example,,\n", i, i)
	}
	began := time.Now()
	r, err := cmd.ImportClients(ctx, admin, bytes.NewReader(file.Bytes()), commands.ImportOptions{})
	took := time.Since(began)
	if err != nil {
		return 0, fmt.Errorf("import of %d rows with rules: %w", rows, err)
	}
	if r.Created != rows {
		return 0, fmt.Errorf("import of %d rows with rules created %d", rows, r.Created)
	}
	fmt.Fprintf(os.Stderr, "   import of %d rows with a round_robin rule: %s\n", rows, took.Round(time.Millisecond))
	return took.Seconds(), nil
}
