// Package config reads the service's configuration from the environment.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/assignment-ledger/ledger/keyring"
	"github.com/assignment-ledger/ledger/ledgerlog"
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
	// ExportTimeout bounds a streamed export's, ImportTimeout a CSV
	// import's.
	RequestTimeout, ExportTimeout, ImportTimeout time.Duration
	// SMTPURL and MailFrom turn e-mail on (both or neither):
	// smtp://user:pass@host:port (STARTTLS when offered) or smtps://…
	// (implicit TLS), and the sender's address.
	SMTPURL  string
	MailFrom string
	// KEK (LEDGER_KEK, base64) or KEKFile (LEDGER_KEK_FILE, a file holding
	// the base64) is the key-encryption key wrapping every customer's data
	// key; see Keyring.
	KEK, KEKFile string
	// SigningKeyFile (LEDGER_SIGNING_KEY_FILE) holds the ledger log's
	// signing key in the note signer-key format; see SigningKey.
	SigningKeyFile string
	// CheckpointInterval (LEDGER_CHECKPOINT_INTERVAL, default 1h) is how
	// often the ledger log signs a checkpoint while events arrive.
	CheckpointInterval time.Duration

	// ReplicaURLs (LEDGER_REPLICA_URLS, comma-separated) are streaming
	// replicas that serve reads; ReplicaMaxLag (LEDGER_REPLICA_MAX_LAG,
	// default 1s) bounds how far behind one may serve a read that asks for
	// no position.
	ReplicaURLs   []string
	ReplicaMaxLag time.Duration
}

// Defaults of the request time limits: long enough for any sound request on
// a loaded machine, short enough that a blocked database answers 503 before
// clients and proxies give up on their own.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultExportTimeout  = 5 * time.Minute
	// DefaultImportTimeout leaves a 100,000-row import (the most a file
	// may hold) room on a loaded machine: 2.5 min was measured on 2 cores
	// at a load average of 27 (docs/PERFORMANCE.md).
	DefaultImportTimeout = 10 * time.Minute
	// DefaultCheckpointInterval: one signed checkpoint an hour while events
	// arrive, so one can be had for any day.
	DefaultCheckpointInterval = time.Hour
	// DefaultReplicaMaxLag: a read without a position may see a replica
	// at most a second behind.
	DefaultReplicaMaxLag = time.Second
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
		{"LEDGER_IMPORT_TIMEOUT", &c.ImportTimeout, DefaultImportTimeout},
		{"LEDGER_CHECKPOINT_INTERVAL", &c.CheckpointInterval, DefaultCheckpointInterval},
		{"LEDGER_REPLICA_MAX_LAG", &c.ReplicaMaxLag, DefaultReplicaMaxLag},
	} {
		v, err := time.ParseDuration(get(d.name, d.def.String()))
		if err != nil || v <= 0 {
			return Config{}, fmt.Errorf("%s: want a positive duration such as 10s (got %q)", d.name, get(d.name, ""))
		}
		*d.dst = v
	}
	c.KEK, c.KEKFile = get("LEDGER_KEK", ""), get("LEDGER_KEK_FILE", "")
	if c.KEK != "" && c.KEKFile != "" {
		return Config{}, errors.New("LEDGER_KEK and LEDGER_KEK_FILE both set: give the key-encryption key one way")
	}
	c.SigningKeyFile = get("LEDGER_SIGNING_KEY_FILE", "")
	for _, u := range strings.Split(get("LEDGER_REPLICA_URLS", ""), ",") {
		if u = strings.TrimSpace(u); u != "" {
			c.ReplicaURLs = append(c.ReplicaURLs, u)
		}
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

// Keyring opens the keyring over the configured KEK: LEDGER_KEK, else the
// file LEDGER_KEK_FILE names. With neither, the KEK is the file
// DefaultKEKFile() names, created (mode 0600) with a random key when
// missing, and a warning is logged: the service then runs, but the key sits
// on the service's machine unmanaged, and losing that file loses every
// customer's personal data (as if all were erased).
func (c Config) Keyring(log *slog.Logger) (*keyring.Keyring, error) {
	text := c.KEK
	if text == "" {
		path, created := c.KEKFile, false
		if path == "" {
			var err error
			if path, created, err = defaultKEKFile(); err != nil {
				return nil, err
			}
			if log != nil {
				log.Warn("LEDGER_KEK is not set: using a key-encryption key from a local file; set LEDGER_KEK or LEDGER_KEK_FILE in production",
					slog.String("file", path), slog.Bool("created", created))
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("LEDGER_KEK_FILE: %w", err)
		}
		text = string(b)
	}
	kek, err := keyring.ParseKEK(text)
	if err != nil {
		return nil, fmt.Errorf("LEDGER_KEK: %w", err)
	}
	return keyring.New(kek)
}

// SigningKey reads the ledger log's signing key from LEDGER_SIGNING_KEY_FILE
// (which must exist: a missing mount must not silently start a new key).
// Without it, the key is the file "signing-key" beside the KEK file
// (LEDGER_KEK_FILE, else DefaultKEKFile), created with a new Ed25519 key
// named after the base URL's host when absent, with a warning.
func (c Config) SigningKey(log *slog.Logger) (ledgerlog.Key, error) {
	if c.SigningKeyFile != "" {
		b, err := os.ReadFile(c.SigningKeyFile)
		if err != nil {
			return ledgerlog.Key{}, fmt.Errorf("LEDGER_SIGNING_KEY_FILE: %w", err)
		}
		k, err := ledgerlog.ParseKey(string(b))
		if err != nil {
			return ledgerlog.Key{}, fmt.Errorf("LEDGER_SIGNING_KEY_FILE: %w", err)
		}
		return k, nil
	}
	dir := ""
	if c.KEKFile != "" {
		dir = filepath.Dir(c.KEKFile)
	} else {
		kek, err := DefaultKEKFile()
		if err != nil {
			return ledgerlog.Key{}, fmt.Errorf("no LEDGER_SIGNING_KEY_FILE: %w", err)
		}
		dir = filepath.Dir(kek)
	}
	path := filepath.Join(dir, "signing-key")
	k, created, err := ledgerlog.LoadOrCreateKey(path, ledgerlog.KeyName(c.BaseURL))
	if err != nil {
		return ledgerlog.Key{}, fmt.Errorf("signing key: %w", err)
	}
	if log != nil {
		msg := "LEDGER_SIGNING_KEY_FILE is not set: signing the ledger log's checkpoints with a key from a local file beside the KEK; set LEDGER_SIGNING_KEY_FILE in production"
		if created {
			msg = "LEDGER_SIGNING_KEY_FILE is not set: created a new signing key for the ledger log's checkpoints beside the KEK; keep it, and set LEDGER_SIGNING_KEY_FILE in production"
		}
		log.Warn(msg, slog.String("file", path), slog.String("public_key", k.Verifier))
	}
	return k, nil
}

// DefaultKEKFile is where the KEK is kept when neither LEDGER_KEK nor
// LEDGER_KEK_FILE is set: assignment-ledger/kek in the user's configuration
// directory ($XDG_CONFIG_HOME, ~/.config).
func DefaultKEKFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no LEDGER_KEK and no user configuration directory for a KEK file: %w", err)
	}
	return filepath.Join(dir, "assignment-ledger", "kek"), nil
}

func defaultKEKFile() (path string, created bool, err error) {
	if path, err = DefaultKEKFile(); err != nil {
		return "", false, err
	}
	if _, err := os.Stat(path); err == nil {
		return path, false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("KEK file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return path, false, nil // another process made it first
	}
	if err != nil {
		return "", false, fmt.Errorf("KEK file: %w", err)
	}
	if _, err := f.WriteString(keyring.NewKEK() + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("KEK file: %w", err)
	}
	return path, true, f.Close()
}

// FromOS reads the process environment.
func FromOS() (Config, error) { return FromEnv(os.LookupEnv) }
