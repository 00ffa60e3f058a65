package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// runBulk measures the all-or-nothing bulk commands over -bulk-customers
// customers (10,000, the contract's limit per call), each in one
// transaction: BulkEdit add of one user to every customer, BulkEdit set
// handing every one-owner customer to another user (max_assignees 1, the
// one-owner reassignment), and a transfer of all of a user's customers.
// Each is timed through the commands (no HTTP: the JSON of a 10,000-pair
// report is not what is measured) with the process's peak heap in use.
// Then the customer list is exported in every format (runExports).
func runBulk(ctx context.Context, o options, srv *server, rep *report) error {
	pool, _, err := srv.createDB(ctx, "bulk", 32, nil)
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
	var users [3]string
	for i := range users {
		u, err := cmd.CreateUser(ctx, admin, fmt.Sprintf("Bulk User %d", i), fmt.Sprintf("bulk%d@bench.example", i), domain.RoleMember)
		if err != nil {
			return err
		}
		users[i] = u.ID
	}
	ids := make([]string, o.bulkCustomers)
	streams := make([]eventstore.StreamWrite, len(ids))
	// Sealed as the commands write them, so the bulk commands below open
	// each customer's profile as they do in production.
	keys := make([]keyring.DataKey, len(ids))
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		typ, schema, data, err := domain.EncodeEvent(domain.CustomerRegistered{CustomerID: ids[i], Profile: domain.Profile{FirstName: "Bulk", LastName: fmt.Sprint(i)}})
		if err != nil {
			return err
		}
		if keys[i], err = benchKeyring().NewDataKey(ids[i]); err != nil {
			return err
		}
		if schema, data, err = keys[i].Seal(typ, schema, data); err != nil {
			return err
		}
		streams[i] = eventstore.StreamWrite{StreamID: ids[i], StreamType: "customer", ExpectedVersion: eventstore.NoStream,
			Events: []eventstore.EventData{{Type: typ, SchemaVersion: schema, Data: data}}}
	}
	if err := store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
		if err := keyring.Store(ctx, tx, boot.TenantID, keys); err != nil {
			return err
		}
		_, err := tx.Append(ctx, eventstore.AppendRequest{TenantID: boot.TenantID, Streams: streams})
		return err
	}); err != nil {
		return fmt.Errorf("seed customers: %w", err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		return err
	}
	one := 1
	steps := []struct {
		name   string
		policy *domain.Policy
		run    func() (int, error)
	}{
		{"BulkEdit add", nil, func() (int, error) {
			r, err := cmd.BulkEdit(ctx, admin, commands.BulkRequest{Action: "add", CustomerIDs: ids, UserIDs: []string{users[0]}})
			return len(r.ToBeAssigned), err
		}},
		{"BulkEdit set (one owner)", &domain.Policy{MaxAssignees: &one, RequireLead: true, MembersCanSelfAssign: true}, func() (int, error) {
			r, err := cmd.BulkEdit(ctx, admin, commands.BulkRequest{Action: "set", CustomerIDs: ids, UserIDs: []string{users[1]}})
			return len(r.ToBeAssigned), err
		}},
		{"transfer (all)", nil, func() (int, error) {
			r, err := cmd.TransferCustomers(ctx, admin, commands.TransferRequest{From: users[1], To: users[2]})
			return len(r.ToBeAssigned), err
		}},
	}
	details := map[string]any{"customers": len(ids)}
	for _, s := range steps {
		if s.policy != nil {
			if _, err := cmd.ChangePolicy(ctx, admin, *s.policy); err != nil {
				return err
			}
		}
		runtime.GC()
		peak := sampleHeap()
		began := time.Now()
		changed, err := s.run()
		took := time.Since(began)
		heap := peak()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if changed != len(ids) {
			return fmt.Errorf("%s changed %d of %d customers", s.name, changed, len(ids))
		}
		fmt.Fprintf(os.Stderr, "   %s of %d customers: %s, peak heap %.0f MB\n", s.name, len(ids), took.Round(time.Millisecond), heap)
		rep.add(figure{Phase: "bulk", Name: fmt.Sprintf("%s, %d customers", s.name, len(ids)), Value: took.Seconds(), Unit: "s",
			Note: "one transaction, all or nothing"})
		rep.add(figure{Phase: "bulk", Name: s.name + " peak heap", Value: heap, Unit: "MB"})
		details[s.name] = map[string]any{"seconds": took.Seconds(), "peak_heap_mb": heap}
	}
	rep.detail("bulk", details)
	return runExports(ctx, "bulk", pool, store, cmd, boot.APIKey, len(ids), srv, rep)
}

// sampleHeap samples the heap in use every 5 ms until the returned function
// is called, which answers the peak in MB.
func sampleHeap() func() float64 {
	stop := sampleHeaps()
	return func() float64 {
		inuse, _ := stop()
		return inuse
	}
}

// sampleHeaps samples the heap in use and the live heap every 5 ms until
// the returned function is called, which answers both peaks in MB. The heap
// in use includes garbage not yet collected (up to GOGC% more than the live
// heap: the benchmark runs with GOGC 400, as ledger serve does); the live
// heap is what the last collection found reachable
// (runtime/metrics /gc/heap/live:bytes), what a command or export holds.
func sampleHeaps() func() (inuse, live float64) {
	var peak, peakLive atomic.Uint64
	liveSample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			metrics.Read(liveSample)
			if v := liveSample[0].Value.Uint64(); v > peakLive.Load() {
				peakLive.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() (float64, float64) {
		close(done)
		<-stopped
		return float64(peak.Load()) / (1 << 20), float64(peakLive.Load()) / (1 << 20)
	}
}
