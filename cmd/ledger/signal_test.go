package main

import (
	"errors"
	"io"
	nethttp "net/http"
	"os"
	"os/exec"
	"strings"
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
	for _, args := range [][]string{
		{"serve"},
		{"serve", "--no-projections"},
		{"project", "--metrics-addr", "127.0.0.1:0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			exitsZeroOnSIGTERM(t, args)
		})
	}
}

// exitsZeroOnSIGTERM runs the real binary with args, waits until it is
// ready (/readyz on the address it logs; /healthz and /metrics answer too), sends SIGTERM and expects exit 0.
func exitsZeroOnSIGTERM(t *testing.T, args []string) {
	dsn := testdb.NewURL(t)
	cmd := exec.Command(os.Args[0], args...)
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
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := nethttp.Get("http://" + a + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
			}
			// Every node reports the projections' checkpoints and lag,
			// read from the database, whether it runs them or not.
			if path == "/metrics" && !strings.Contains(string(body), "ledger_projection_lag_events") {
				t.Errorf("/metrics lacks the projections' lag")
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not start", args)
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
			t.Fatalf("%v exited %d after SIGTERM", args, exit.ExitCode())
		}
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not stop on SIGTERM", args)
	}
}
