// Package config reads the service's configuration from the environment.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Config is everything `ledger serve` can be told through the environment.
type Config struct {
	DatabaseURL string
	Addr        string
	// BaseURL prefixes invitation links; defaults to http://<Addr>.
	BaseURL  string
	LogLevel slog.Level
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration
	// RequestTimeout bounds each request's database work (503 past it);
	// ExportTimeout bounds a streamed export's.
	RequestTimeout, ExportTimeout time.Duration
	// SMTPURL and MailFrom turn e-mail on (both or neither):
	// smtp://user:pass@host:port (STARTTLS when offered) or smtps://…
	// (implicit TLS), and the sender's address.
	SMTPURL  string
	MailFrom string
}

// Defaults of the request time limits: long enough for any sound request on
// a loaded machine, short enough that a blocked database answers 503 before
// clients and proxies give up on their own.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultExportTimeout  = 5 * time.Minute
)

// EmailEnabled reports whether e-mail is configured.
func (c Config) EmailEnabled() bool { return c.SMTPURL != "" }

// ErrNoDatabaseURL is returned when DATABASE_URL is unset.
var ErrNoDatabaseURL = errors.New("DATABASE_URL is not set (example: postgres://user@127.0.0.1:5432/ledger?sslmode=disable)")

// FromEnv reads the configuration; lookup is os.LookupEnv in production.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(k, def string) string {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	c := Config{
		DatabaseURL:     get("DATABASE_URL", ""),
		Addr:            get("LEDGER_ADDR", "127.0.0.1:8080"),
		ShutdownTimeout: 20 * time.Second,
	}
	c.BaseURL = strings.TrimRight(get("LEDGER_BASE_URL", "http://"+c.Addr), "/")
	if err := c.LogLevel.UnmarshalText([]byte(get("LEDGER_LOG_LEVEL", "info"))); err != nil {
		return Config{}, fmt.Errorf("LEDGER_LOG_LEVEL: %w", err)
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{
		{"LEDGER_REQUEST_TIMEOUT", &c.RequestTimeout, DefaultRequestTimeout},
		{"LEDGER_EXPORT_TIMEOUT", &c.ExportTimeout, DefaultExportTimeout},
	} {
		v, err := time.ParseDuration(get(d.name, d.def.String()))
		if err != nil || v <= 0 {
			return Config{}, fmt.Errorf("%s: want a positive duration such as 10s (got %q)", d.name, get(d.name, ""))
		}
		*d.dst = v
	}
	c.SMTPURL, c.MailFrom = get("LEDGER_SMTP_URL", ""), get("LEDGER_MAIL_FROM", "")
	if (c.SMTPURL == "") != (c.MailFrom == "") {
		return Config{}, errors.New("LEDGER_SMTP_URL and LEDGER_MAIL_FROM turn e-mail on together: set both or neither")
	}
	if c.DatabaseURL == "" {
		return c, ErrNoDatabaseURL
	}
	return c, nil
}

// FromOS reads the process environment.
func FromOS() (Config, error) { return FromEnv(os.LookupEnv) }
