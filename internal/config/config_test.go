package config

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/keyring"
)

func TestFromEnv(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	if _, err := FromEnv(env(nil)); !errors.Is(err, ErrNoDatabaseURL) {
		t.Fatalf("missing DATABASE_URL: %v", err)
	}
	c, err := FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x"}))
	if err != nil || c.Addr != "127.0.0.1:8080" || c.BaseURL != "http://127.0.0.1:8080" || c.LogLevel != slog.LevelInfo {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LEDGER_ADDR": "0.0.0.0:9000",
		"LEDGER_BASE_URL": "https://ledger.example/", "LEDGER_LOG_LEVEL": "debug"}))
	if err != nil || c.Addr != "0.0.0.0:9000" || c.BaseURL != "https://ledger.example" || c.LogLevel != slog.LevelDebug {
		t.Fatalf("overrides: %+v %v", c, err)
	}
	if _, err := FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LEDGER_LOG_LEVEL": "loud"})); err == nil {
		t.Fatal("bad log level accepted")
	}
	if c.RequestTimeout != DefaultRequestTimeout || c.ExportTimeout != DefaultExportTimeout {
		t.Fatalf("default time limits: %+v", c)
	}
	c, err = FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LEDGER_REQUEST_TIMEOUT": "2500ms", "LEDGER_EXPORT_TIMEOUT": "1m"}))
	if err != nil || c.RequestTimeout != 2500*time.Millisecond || c.ExportTimeout != time.Minute {
		t.Fatalf("time limits: %+v %v", c, err)
	}
	for _, bad := range []string{"10", "-1s", "0s", "soon"} {
		if _, err := FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LEDGER_REQUEST_TIMEOUT": bad})); err == nil {
			t.Fatalf("LEDGER_REQUEST_TIMEOUT=%s accepted", bad)
		}
	}
	if c.EmailEnabled() {
		t.Fatal("e-mail on without LEDGER_SMTP_URL")
	}
	c, err = FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LEDGER_SMTP_URL": "smtp://127.0.0.1:2525", "LEDGER_MAIL_FROM": "ledger@x.example"}))
	if err != nil || !c.EmailEnabled() || c.MailFrom != "ledger@x.example" {
		t.Fatalf("e-mail: %+v %v", c, err)
	}
	if _, err := FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LEDGER_SMTP_URL": "smtp://127.0.0.1:2525"})); err == nil {
		t.Fatal("LEDGER_SMTP_URL without LEDGER_MAIL_FROM accepted")
	}
}

func TestKeyring(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	kek := keyring.NewKEK()
	if _, err := FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LEDGER_KEK": kek, "LEDGER_KEK_FILE": "/k"})); err == nil {
		t.Fatal("LEDGER_KEK and LEDGER_KEK_FILE together were accepted")
	}
	c, err := FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LEDGER_KEK": kek}))
	if err != nil {
		t.Fatal(err)
	}
	fromEnv, err := c.Keyring(nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(file, []byte(kek+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := Config{KEKFile: file}.Keyring(nil)
	if err != nil || !fromFile.Equal(fromEnv) {
		t.Fatalf("the KEK file opens another keyring: %v", err)
	}
	if _, err := (Config{KEK: "c2hvcnQ="}).Keyring(nil); err == nil {
		t.Fatal("a short KEK was accepted")
	}
	// With neither, a KEK file in the user's configuration directory is
	// made once and then kept.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	first, err := Config{}.Keyring(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Config{}.Keyring(nil)
	if err != nil || !again.Equal(first) {
		t.Fatalf("the default KEK file changed: %v", err)
	}
	path, _ := DefaultKEKFile()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("default KEK file %s: %v %v", path, st, err)
	}
}

func TestSigningKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	c, err := FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LEDGER_KEK_FILE": filepath.Join(dir, "kek"),
		"LEDGER_BASE_URL": "https://ledger.example/", "LEDGER_CHECKPOINT_INTERVAL": "10m"}))
	if err != nil || c.CheckpointInterval != 10*time.Minute {
		t.Fatalf("config: %+v %v", c, err)
	}
	if d, _ := FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x"})); d.CheckpointInterval != DefaultCheckpointInterval {
		t.Fatalf("default checkpoint interval %v", d.CheckpointInterval)
	}
	if _, err := FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LEDGER_CHECKPOINT_INTERVAL": "hourly"})); err == nil {
		t.Fatal("a bad LEDGER_CHECKPOINT_INTERVAL was accepted")
	}
	// Without LEDGER_SIGNING_KEY_FILE: a key beside the KEK, made once.
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	k1, err := c.SigningKey(log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "created a new signing key") || !strings.HasPrefix(k1.Verifier, "ledger.example+") {
		t.Fatalf("first start: key %q, log %q", k1.Verifier, logged.String())
	}
	k2, err := c.SigningKey(log)
	if err != nil || k2.Verifier != k1.Verifier {
		t.Fatalf("second start: key %q (%v), first %q", k2.Verifier, err, k1.Verifier)
	}
	// LEDGER_SIGNING_KEY_FILE names the key; a missing file is an error,
	// never a new key.
	c.SigningKeyFile = filepath.Join(dir, "signing-key")
	if k3, err := c.SigningKey(log); err != nil || k3.Verifier != k1.Verifier {
		t.Fatalf("LEDGER_SIGNING_KEY_FILE: %q %v", k3.Verifier, err)
	}
	c.SigningKeyFile = filepath.Join(dir, "absent")
	if _, err := c.SigningKey(log); err == nil {
		t.Fatal("a missing LEDGER_SIGNING_KEY_FILE was accepted")
	}
	if _, err := os.Stat(c.SigningKeyFile); err == nil {
		t.Fatal("a missing LEDGER_SIGNING_KEY_FILE was created")
	}
}

// LEDGER_REPLICA_URLS lists replicas, blanks ignored; LEDGER_REPLICA_MAX_LAG
// defaults to a second and must be a positive duration.
func TestReplicaSettings(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) (string, bool) {
		m["DATABASE_URL"] = "postgres://x"
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	c, err := FromEnv(env(map[string]string{}))
	if err != nil || c.ReplicaURLs != nil || c.ReplicaMaxLag != time.Second {
		t.Fatalf("defaults: %v %v %v", c.ReplicaURLs, c.ReplicaMaxLag, err)
	}
	c, err = FromEnv(env(map[string]string{"LEDGER_REPLICA_URLS": " postgres://a/l , ,postgres://b/l", "LEDGER_REPLICA_MAX_LAG": "250ms"}))
	if err != nil || len(c.ReplicaURLs) != 2 || c.ReplicaURLs[0] != "postgres://a/l" || c.ReplicaURLs[1] != "postgres://b/l" || c.ReplicaMaxLag != 250*time.Millisecond {
		t.Fatalf("set: %q %v %v", c.ReplicaURLs, c.ReplicaMaxLag, err)
	}
	for _, bad := range []string{"soon", "0s", "-1s"} {
		if _, err := FromEnv(env(map[string]string{"LEDGER_REPLICA_MAX_LAG": bad})); err == nil || !strings.Contains(err.Error(), "LEDGER_REPLICA_MAX_LAG") {
			t.Errorf("LEDGER_REPLICA_MAX_LAG=%s: %v", bad, err)
		}
	}
}
