// Package office lets tests open a file with LibreOffice, headless, and
// read back what it understood as CSV: the proof that an export opens in a
// real office suite. LibreOffice is required, never skipped: without it
// the test fails with the command that installs it (scripts/libreoffice.sh,
// run by make test, installs it where it can).
package office

import (
	"bytes"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// InstallCommand installs what ToCSV needs.
const InstallCommand = "sudo apt-get install -y --no-install-recommends libreoffice-calc-nogui"

// ToCSV converts the spreadsheet (or HTML table) in data, a file with
// extension ext, to CSV with LibreOffice and returns its records. infilter
// names LibreOffice's import filter when the extension alone does not
// (e.g. "HTML (StarCalc)"), else "".
func ToCSV(t testing.TB, data []byte, ext, infilter string) [][]string {
	t.Helper()
	bin := ""
	for _, name := range []string{"soffice", "libreoffice"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Fatalf("LibreOffice is needed to check exports and is not installed; run: %s (or scripts/libreoffice.sh)", InstallCommand)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "export."+ext)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	// A profile of its own: two conversions at once must not share one,
	// and the user's must not be touched. CSV options: comma, double
	// quote, UTF-8 (76), from line 1.
	args := []string{"-env:UserInstallation=file://" + filepath.Join(dir, "profile"), "--headless", "--norestore",
		"--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1", "--outdir", out}
	if infilter != "" {
		args = append(args, "--infilter="+infilter)
	}
	args = append(args, in)
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v: %s", bin, err, stderr.String())
		}
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("%s did not convert within 3 minutes: %s", bin, stderr.String())
	}
	raw, err := os.ReadFile(filepath.Join(out, "export.csv"))
	if err != nil {
		t.Fatalf("LibreOffice produced no CSV (%v): %s", err, stderr.String())
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatalf("LibreOffice's CSV: %v: %q", err, raw)
	}
	for i := range recs {
		for j := range recs[i] {
			recs[i][j] = strings.TrimRight(recs[i][j], "\r")
		}
	}
	return recs
}
