package testdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/migrations"
)

// Replicated is a throwaway primary and a streaming hot standby of it,
// started by scripts/pg.sh (as `make run-replica` starts one), for tests of
// read replicas and failover. Both are real clusters of their own on
// 127.0.0.1; the standby is a pg_basebackup -R copy of the primary.
type Replicated struct {
	PrimaryPort, ReplicaPort int
	primaryDir, replicaDir   string
	script                   string
}

// ReplicatedOptions choose the set-up.
type ReplicatedOptions struct {
	// Sync makes the standby synchronous: every commit on the primary
	// waits for it (the primary then runs durable, synchronous_commit=on).
	Sync bool
}

// NewReplicated starts a primary with the ledger database migrated and a
// hot standby streaming from it, both stopped and removed at cleanup.
func NewReplicated(t testing.TB, o ReplicatedOptions) *Replicated {
	t.Helper()
	c, err := StartReplicated(context.Background(), t.TempDir(), o)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// StartReplicated is NewReplicated outside a test (the benchmark): the
// clusters live under dir; Close stops them.
func StartReplicated(ctx context.Context, dir string, o ReplicatedOptions) (_ *Replicated, err error) {
	script, err := pgScript()
	if err != nil {
		return nil, err
	}
	c := &Replicated{primaryDir: filepath.Join(dir, "primary"), replicaDir: filepath.Join(dir, "replica"), script: script}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	mode := []string{}
	if o.Sync {
		mode = append(mode, "durable")
	}
	if c.PrimaryPort, err = c.startOnFreePort(func(port int) []string {
		return append([]string{"start", c.primaryDir, strconv.Itoa(port)}, mode...)
	}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, c.PrimaryURL())
	if err != nil {
		return nil, fmt.Errorf("connect to the primary: %w", err)
	}
	err = migrations.Apply(ctx, pool, nil)
	pool.Close()
	if err != nil {
		return nil, fmt.Errorf("migrate the primary: %w", err)
	}
	sync := []string{}
	if o.Sync {
		sync = append(sync, "sync")
	}
	if c.ReplicaPort, err = c.startOnFreePort(func(port int) []string {
		return append([]string{"replica", strconv.Itoa(c.PrimaryPort), c.replicaDir, strconv.Itoa(port)}, sync...)
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Close stops both clusters: the standby first, as a synchronous primary
// would otherwise wait for it on its shutdown checkpoint.
func (c *Replicated) Close() {
	_ = c.run("stop", c.replicaDir)
	_ = c.run("stop", c.primaryDir)
}

// PrimaryURL is the ledger database on the primary.
func (c *Replicated) PrimaryURL() string { return clusterURL(c.PrimaryPort) }

// ReplicaURL is the ledger database on the standby.
func (c *Replicated) ReplicaURL() string { return clusterURL(c.ReplicaPort) }

// MultiHostURL names both clusters, primary first, with
// target_session_attrs=read-write: the one a failover moves to.
func (c *Replicated) MultiHostURL() string {
	return fmt.Sprintf("postgres://ledger@127.0.0.1:%d,127.0.0.1:%d/ledger?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		c.PrimaryPort, c.ReplicaPort)
}

// StopReplica stops the standby (fast shutdown).
func (c *Replicated) StopReplica() error { return c.run("stop", c.replicaDir) }

// StartReplica starts the stopped standby again on its port; it catches up
// from the primary.
func (c *Replicated) StartReplica() error {
	return c.run("start", c.replicaDir, strconv.Itoa(c.ReplicaPort))
}

// KillPrimary stops the primary at once (pg_ctl stop -m immediate), as a
// crash does.
func (c *Replicated) KillPrimary() error { return c.run("kill", c.primaryDir) }

// RejoinAsStandby makes the old primary, killed by KillPrimary, a standby
// of the promoted one on its old port: its data thrown away and copied
// again with pg_basebackup -R (what pg_rewind would save copying), so the
// two have swapped roles.
func (c *Replicated) RejoinAsStandby() error {
	if err := os.RemoveAll(filepath.Join(c.primaryDir, "pgdata")); err != nil {
		return err
	}
	return c.run("replica", strconv.Itoa(c.ReplicaPort), c.primaryDir, strconv.Itoa(c.PrimaryPort))
}

// Promote makes the standby a primary (pg_ctl promote, waiting until it
// takes writes).
func (c *Replicated) Promote() error { return c.run("promote", c.replicaDir) }

// FreezeReplica stops every process of the standby (SIGSTOP), as a frozen
// host or a partition without a reset leaves it: connections neither fail
// nor answer. thaw resumes them (SIGCONT).
func (c *Replicated) FreezeReplica() (thaw func(), err error) {
	raw, err := os.ReadFile(filepath.Join(c.replicaDir, "pgdata", "postmaster.pid"))
	if err != nil {
		return nil, err
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil, fmt.Errorf("postmaster.pid: %w", err)
	}
	pids := []int{postmaster}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ')'.
		i := strings.LastIndexByte(string(b), ')')
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(postmaster) {
			if pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSuffix(filepath.Dir(f), "/"), "/proc/")); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	return func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}, nil
}

func clusterURL(port int) string {
	return fmt.Sprintf("postgres://ledger@127.0.0.1:%d/ledger?sslmode=disable", port)
}

// startOnFreePort runs pg.sh with the arguments args makes for a port that
// was free a moment ago, and tries another when pg.sh says it was taken
// meanwhile (exit code 3).
func (c *Replicated) startOnFreePort(args func(port int) []string) (int, error) {
	for range 20 {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		err = c.run(args(port)...)
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 {
			continue
		}
		if err != nil {
			return 0, err
		}
		return port, nil
	}
	return 0, errors.New("no free port for a cluster")
}

func (c *Replicated) run(args ...string) error {
	cmd := exec.Command(c.script, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg.sh %v: %w\n%s", args, err, out)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// pgScript finds scripts/pg.sh from the test's directory upwards (tests
// run in their package's directory, inside the module).
func pgScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "pg.sh")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("no scripts/pg.sh beside %s/go.mod: %w", dir, err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/pg.sh not found: run the tests inside the module")
		}
		dir = parent
	}
}
