package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/assignment-ledger/ledger/internal/testdb"
)

// A tiny run of every phase completes and reports every figure the issue
// asks for, with its target verdict where it has one. No timing is judged
// here: the figures only have to exist, be measured (positive) and come with
// their evidence.
func TestEveryPhaseReportsItsFigures(t *testing.T) {
	t.Parallel()
	url := testdb.NewURL(t)
	out := filepath.Join(t.TempDir(), "bench.json")
	args := []string{"-quick", "-out", out, "-duration", "300ms", "-warmup", "100ms",
		"-cmd-customers", "1000", "-cmd-users", "10", "-lag-rate", "200", "-lag-duration", "500ms", "-lag-workers", "8",
		"-catchup-rows", "300", "-rebuild-events", "3000", "-rebuild-users", "20",
		"-customers", "2000", "-users", "50", "-assignments", "5000", "-read-queries", "30", "-bulk-customers", "200"}
	if err := run(context.Background(), args, url); err != nil {
		t.Fatalf("run: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Figures []figure       `json:"figures"`
		Details map[string]any `json:"details"`
		Errors  []string       `json:"errors"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	byName := map[string]figure{}
	for _, f := range rep.Figures {
		byName[f.Phase+"/"+f.Name] = f
	}
	withTarget := []string{
		"commands/ratio cmd/raw @16",
		"lag/achieved command rate",
		"lag/commit→read model p99",
		"catchup/after a 300-row import",
		"catchup/after a BulkEdit of 2 users × 300",
		"rebuild/rebuild all, 3000 events",
		"reads/My Clients first page p99",
		"reads/customers by assigned user p99",
	}
	for _, name := range withTarget {
		f, ok := byName[name]
		if !ok {
			t.Errorf("no figure %q (have %d figures)", name, len(rep.Figures))
			continue
		}
		if f.Value <= 0 || f.Target == "" || f.Pass == nil {
			t.Errorf("%s: value %v, target %q, verdict %v", name, f.Value, f.Target, f.Pass)
		}
	}
	for _, name := range []string{"commands/AssignUser HTTP @1", "commands/raw INSERT @16", "commands/AssignUser p99 @16",
		"lag/commit→read model p50", "reads/baseline PK lookup p99", "catchup/rebuild of the same events (baseline)",
		"bulk/BulkEdit add, 200 customers", "bulk/BulkEdit set (one owner), 200 customers", "bulk/transfer (all), 200 customers",
		"bulk/BulkEdit set (one owner) peak heap",
		"bulk/export csv, 200 customers", "bulk/export xlsx, 200 customers", "bulk/export ods, 200 customers",
		"bulk/export vcf, 200 customers", "bulk/export html, 200 customers", "bulk/export xlsx peak heap"} {
		if f, ok := byName[name]; !ok || f.Value <= 0 {
			t.Errorf("figure %q: %+v (present %v)", name, f, ok)
		}
	}
	// Every command of the lag phase became visible, none failed, and the
	// rebuilt projections matched what the generator decided.
	lag, _ := rep.Details["lag"].(map[string]any)
	res, _ := lag["result"].(map[string]any)
	if res == nil || res["never_visible"] != 0.0 || res["errors"] != 0.0 || res["answered"] == 0.0 {
		t.Errorf("lag result: %v", res)
	}
	rebuild, _ := rep.Details["rebuild"].(map[string]any)
	if rebuild == nil || rebuild["check_mismatches"] != nil {
		t.Errorf("rebuild details: mismatches %v", rebuild["check_mismatches"])
	}
}
