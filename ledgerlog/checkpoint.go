// Package ledgerlog is the ledger log (docs/API.md, "The ledger log"): per
// tenant, an RFC 6962 Merkle tree over the tenant's events in commit order,
// signed checkpoints of it (C2SP tlog-checkpoint bodies in signed notes,
// Ed25519) and the inclusion and consistency proofs an auditor checks
// against a checkpoint.
//
// The hashing, the proofs and the note format are golang.org/x/mod/sumdb's
// tlog and note packages (the Go checksum database's own code; see
// docs/ARCHITECTURE.md). The tree's stored hashes are a read model
// (projections, ledger_tree); this package reads them to answer proofs,
// signs checkpoints of them, and, for `ledger verify --checkpoint`,
// recomputes a tenant's tree from the events alone.
package ledgerlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is the body of a signed checkpoint (C2SP tlog-checkpoint):
// the origin line, the tree size and the base64 root hash, one per line.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Origin is the origin line of a tenant's checkpoints.
func Origin(baseURL, tenantID string) string {
	return strings.TrimRight(baseURL, "/") + "/tenants/" + tenantID
}

// Body is the checkpoint as the note's text.
func (c Checkpoint) Body() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ErrMalformedCheckpoint is a note whose text is not a checkpoint.
var ErrMalformedCheckpoint = errors.New("malformed checkpoint")

// ParseCheckpoint reads a checkpoint body (extension lines after the root
// are allowed and ignored, as C2SP says).
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return Checkpoint{}, fmt.Errorf("%w: want origin, size and root hash lines", ErrMalformedCheckpoint)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("%w: tree size %q", ErrMalformedCheckpoint, lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q", ErrMalformedCheckpoint, lines[2])
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: tlog.Hash(root)}, nil
}

// Sign signs the checkpoint: the signed note, as text.
func Sign(c Checkpoint, s note.Signer) (string, error) {
	msg, err := note.Sign(&note.Note{Text: c.Body()}, s)
	if err != nil {
		return "", fmt.Errorf("sign checkpoint: %w", err)
	}
	return string(msg), nil
}

// CheckVerifierKey reports whether vkey is a verifier key (note verifier
// format, as GET /v1/ledger/public-key answers).
func CheckVerifierKey(vkey string) error {
	_, err := note.NewVerifier(strings.TrimSpace(vkey))
	return err
}

// Open verifies a signed checkpoint with the verifier key vkey and returns
// its body.
func Open(signed []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	return ParseCheckpoint(n.Text)
}

// Key is the service's signing key: the note signer key and the verifier
// key published at /v1/ledger/public-key.
type Key struct {
	Signer   note.Signer
	Verifier string
}

// ParseKey reads a note signer key ("PRIVATE+KEY+name+hash+key") and derives
// its verifier key.
func ParseKey(skey string) (Key, error) {
	skey = strings.TrimSpace(skey)
	s, err := note.NewSigner(skey)
	if err != nil {
		return Key{}, fmt.Errorf("signing key: %w", err)
	}
	// The signer key's last field is the algorithm byte and the Ed25519
	// seed; NewSigner checked both.
	// (The key is the fifth '+'-separated field: base64 may hold '+'.)
	fields := strings.SplitN(skey, "+", 5)
	if len(fields) != 5 {
		return Key{}, errors.New("signing key: not a note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(fields[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return Key{}, errors.New("signing key: not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return Key{}, fmt.Errorf("signing key: %w", err)
	}
	return Key{Signer: s, Verifier: vkey}, nil
}

// LoadOrCreateKey reads the signer key at path, or, when the file does not
// exist, generates one named name, writes it there (mode 0600, directories
// made) and reports created.
func LoadOrCreateKey(path, name string) (key Key, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseKey(string(b))
		if err != nil {
			return Key{}, false, fmt.Errorf("%s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Key{}, false, fmt.Errorf("read signing key: %w", err)
	}
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return Key{}, false, fmt.Errorf("generate signing key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, false, fmt.Errorf("signing key directory: %w", err)
	}
	// O_EXCL: two processes starting at once keep the first one's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKey(path, name)
	}
	if err != nil {
		return Key{}, false, fmt.Errorf("write signing key: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return Key{}, false, fmt.Errorf("write signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return Key{}, false, fmt.Errorf("write signing key: %w", err)
	}
	k, err := ParseKey(skey)
	return k, true, err
}

// KeyName makes a note key name from the service's base URL: its host,
// which is what a verifier recognises (names may not hold spaces or '+').
func KeyName(baseURL string) string {
	name := baseURL
	if _, rest, ok := strings.Cut(name, "://"); ok {
		name = rest
	}
	name, _, _ = strings.Cut(name, "/")
	name = strings.Map(func(r rune) rune {
		if r <= ' ' || r == '+' || r > '~' {
			return '-'
		}
		return r
	}, name)
	if name == "" {
		return "assignment-ledger"
	}
	return name
}
