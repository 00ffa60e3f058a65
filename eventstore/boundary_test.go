package eventstore_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// ownTables matches SQL that reads or writes the event store's tables.
var ownTables = regexp.MustCompile(`(?i)\b(FROM|INTO|UPDATE|JOIN|TABLE|TRUNCATE)\s+(events|streams|idempotency_keys|outbox)\b`)

// notYetBehindTheBoundary lists the files outside the event store that still
// write SQL against its tables (issue 20, item 3). The list may only shrink:
// a file not on it that does so fails the test, and so does a file on it that
// no longer does (take it off).
var notYetBehindTheBoundary = []string{
	"cmd/ledgerbench/phase_catchup.go",
	"cmd/ledgerbench/phase_lag.go",
	"cmd/ledgerbench/phase_rebuild.go",
	"cmd/ledgerbench/service.go",
}

// No package but eventstore writes SQL against events, streams,
// idempotency_keys or outbox (tests may look at them to check what was
// written).
func TestOnlyTheEventStoreQueriesItsTables(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "eventstore" || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if ownTables.Match(b) {
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if !slices.Contains(notYetBehindTheBoundary, f) {
			t.Errorf("%s writes SQL against the event store's tables (%s): add a typed operation to eventstore instead",
				f, ownTables.FindString(mustRead(t, filepath.Join(root, f))))
		}
	}
	for _, f := range notYetBehindTheBoundary {
		if !slices.Contains(found, f) {
			t.Errorf("%s no longer queries the event store's tables: take it off notYetBehindTheBoundary", f)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
