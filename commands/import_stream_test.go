package commands_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// importFile is a file of n new clients, the first team member of each
// being team (when not empty).
func importFile(prefix string, n int, team string) string {
	var b strings.Builder
	b.WriteString("First Name,Last Name,Email,Phone Number,Team\n")
	for i := range n {
		fmt.Fprintf(&b, "%s%06d,Client,%s%06d@client.example,+1 555 %04d,%s\n", prefix, i, prefix, i, i%10000, team)
	}
	return b.String()
}

// An import longer than one batch is still one all-or-nothing
// transaction: a bad row or a duplicate far into the file rolls back the
// batches appended before it, the report names every bad row, and a clean
// file creates every row, with one position and an idempotent replay.
func TestImportAcrossBatchesIsAllOrNothing(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	if _, err := cmd.CreateUser(ctx, b.admin, "Tom", "tom@acme.example", domain.RoleMember); err != nil {
		t.Fatal(err)
	}
	existing, err := cmd.RegisterCustomer(ctx, b.admin, domain.Profile{FirstName: "Old", LastName: "Name", Email: "old@client.example"})
	wantErr(t, err, "")
	const rows = 2500 // three batches
	good := importFile("b", rows, "tom@acme.example")
	before := b.eventCount(t)

	// A duplicate of row 5 on row 2,400 and a stranger as team member on
	// the last row: every batch before them was appended, then rolled back.
	lines := strings.Split(strings.TrimSuffix(good, "\n"), "\n")
	lines[2400] = "Dup,Client,b000004@client.example,,"
	lines[rows] = "Last,Client,last@client.example,,nobody@acme.example"
	_, err = cmd.ImportClients(ctx, b.admin, strings.NewReader(strings.Join(lines, "\n")+"\n"), commands.ImportOptions{})
	var rejected *commands.ImportRejectedError
	if !errors.As(err, &rejected) {
		t.Fatalf("a file with bad rows: %v", err)
	}
	if errs := rejected.Report.Errors; len(errs) != 2 || errs[0].Row != 2400 || !strings.Contains(errs[0].Error, "also on row 5") ||
		errs[1].Row != rows || !strings.Contains(errs[1].Error, "nobody@acme.example") {
		t.Fatalf("row errors: %+v", errs)
	}
	if n := b.eventCount(t); n != before {
		t.Fatalf("a rejected import wrote %d events", n-before)
	}

	// With the existing client on the last row, updated across batches.
	file := good + "New,Name,old@client.example,,\n"
	m := keyed(b.admin, "big", file)
	rep, err := cmd.ImportClients(ctx, m, strings.NewReader(file), commands.ImportOptions{UpdateExisting: true})
	wantErr(t, err, "")
	if rep.Created != rows || rep.Updated != 1 || rep.Unchanged != 0 || len(rep.Errors) != 0 || rep.Position == 0 {
		t.Fatalf("report: %+v", rep)
	}
	var last int64
	if err := b.pool.QueryRow(ctx, `SELECT max(position) FROM events`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if rep.Position != last {
		t.Fatalf("position %d, want the import's last event %d", rep.Position, last)
	}
	var customers int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM streams WHERE stream_type = 'customer'`).Scan(&customers); err != nil {
		t.Fatal(err)
	}
	if customers != rows+1 {
		t.Fatalf("%d customer streams, want %d", customers, rows+1)
	}
	c, err := cmd.GetCustomer(ctx, b.tenantID, existing.ID)
	wantErr(t, err, "")
	if c.FirstName != "New" {
		t.Fatalf("the existing client was not updated: %+v", c)
	}
	count := b.eventCount(t)
	again, err := cmd.ImportClients(ctx, m, strings.NewReader(file), commands.ImportOptions{UpdateExisting: true})
	wantErr(t, err, "")
	if again.Created != rep.Created || again.Position != rep.Position || b.eventCount(t) != count {
		t.Fatalf("replay: %+v (events %d → %d)", again, count, b.eventCount(t))
	}
}

// An import holds a batch in memory, not the file: the peak heap in use
// during an import of 4N rows is about that of N rows (before: every row's
// events, claims and keys until the one append, 2 GB for 100,000 rows).
// The heap is sampled with the collector made eager (GOGC 10), so that
// the heap in use follows the live heap; the test runs alone (not
// parallel), so the heap is the import's.
func TestImportMemoryDoesNotGrowWithTheFile(t *testing.T) {
	cmd, b := setup(t)
	ctx := context.Background()
	if _, err := cmd.CreateUser(ctx, b.admin, "Tom", "tom@acme.example", domain.RoleMember); err != nil {
		t.Fatal(err)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	peak := func(prefix string, n int) uint64 {
		file := importFile(prefix, n, "tom@acme.example")
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		var top atomic.Uint64
		done, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > top.Load() {
					top.Store(ms.HeapInuse)
				}
				select {
				case <-done:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		rep, err := cmd.ImportClients(ctx, b.admin, strings.NewReader(file), commands.ImportOptions{})
		close(done)
		<-stopped
		if err != nil || rep.Created != n {
			t.Fatalf("import of %d rows: %+v, %v", n, rep, err)
		}
		grew := uint64(0)
		if top.Load() > base {
			grew = top.Load() - base
		}
		t.Logf("import of %d rows: peak heap in use %.1f MB above %.1f MB", n, float64(grew)/(1<<20), float64(base)/(1<<20))
		return grew
	}
	const n = 2000
	small := peak("s", n)
	big := peak("g", 4*n)
	// Linear growth would make big about 4 × small; what a batch holds
	// does not grow. 8 MB of slack for the file itself (held by the
	// test) and the collector's timing.
	if big > 2*small+8<<20 {
		t.Fatalf("the peak heap grew from %.1f MB (%d rows) to %.1f MB (%d rows): it grows with the file",
			float64(small)/(1<<20), n, float64(big)/(1<<20), 4*n)
	}
}
