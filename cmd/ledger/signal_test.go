package main

import (
	"errors"
	nethttp "net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/internal/testdb"
)

// TestMain lets a test re-run this binary as `ledger` itself, so real
// signals reach the real main.
func TestMain(m *testing.M) {
	if os.Getenv("LEDGER_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"ledger"}, os.Args[1:]...)
		main()
		return
	}
	os.Exit(m.Run())
}

func TestServeExitsZeroOnSIGTERM(t *testing.T) {
	t.Parallel()
	dsn := testdb.NewURL(t)
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), "LEDGER_TEST_RUN_MAIN=1", "DATABASE_URL="+dsn, "LEDGER_ADDR=127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	select {
	case a := <-servingAddr(stderr):
		resp, err := nethttp.Get("http://" + a + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/readyz: %d", resp.StatusCode)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("serve exited %d after SIGTERM", exit.ExitCode())
		}
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}
