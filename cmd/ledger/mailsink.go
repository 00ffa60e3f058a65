package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// runMailsink is a local SMTP server that keeps every message it is given
// as an .eml file: `make run` points LEDGER_SMTP_URL at it, so invitation
// e-mails can be read without any outside server. It delivers nothing.
func runMailsink(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "mailsink", "mailsink [--addr HOST:PORT] [--dir DIR]",
		"Accepts SMTP on --addr (no authentication, no TLS: for local use) and writes each\n"+
			"message to DIR as an .eml file, which any mail reader opens. Delivers nothing.")
	addr := fs.String("addr", "127.0.0.1:2525", "listen address")
	dir := fs.String("dir", ".data/mail", "directory for the .eml files")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("mail directory: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	sink := &mailsink{dir: *dir, log: env.stderr}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: sink}, nil }))
	srv.Domain = "mailsink.local"
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 10 << 20
	fmt.Fprintf(env.stderr, "mailsink: SMTP on %s, messages written to %s/\n", ln.Addr(), *dir)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

type mailsink struct {
	dir string
	log io.Writer
	n   atomic.Int64
}

// write stores one message; the .eml appears whole (written under another
// name, then renamed), so a reader never finds it half written.
func (s *mailsink) write(from string, to []string, data []byte) error {
	name := fmt.Sprintf("%s-%03d.eml", time.Now().UTC().Format("20060102T150405.000000"), s.n.Add(1))
	tmp := filepath.Join(s.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return err
	}
	fmt.Fprintf(s.log, "mailsink: %s -> %v: %s\n", from, to, filepath.Join(s.dir, name))
	return nil
}

type sinkSession struct {
	sink *mailsink
	from string
	to   []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.sink.write(ss.from, ss.to, data); err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store the message: " + err.Error()}
	}
	return nil
}
