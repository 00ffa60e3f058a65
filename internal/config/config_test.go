package config

import (
	"errors"
	"log/slog"
	"testing"
	"time"
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
