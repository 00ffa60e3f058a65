// Package mail delivers the outbox's e-mails over SMTP: a Watermill handler
// (Relay) takes due outbox rows one at a time, renders and sends each with
// a stable Message-ID, and records the outcome on the row, retrying
// temporary failures with exponential backoff.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// SMTP sends messages to one SMTP server, configured by a URL:
// smtp://user:pass@host:port (STARTTLS when the server offers it) or
// smtps://user:pass@host:port (implicit TLS).
type SMTP struct {
	addr        string
	host        string
	implicitTLS bool
	user, pass  string
	// TLSConfig overrides the TLS settings (tests trust their own CA).
	TLSConfig *tls.Config
	// Timeout bounds one whole delivery, from dial to QUIT.
	Timeout time.Duration
}

// ParseURL reads an SMTP URL. The port defaults to 587 for smtp and 465
// for smtps.
func ParseURL(raw string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("SMTP URL: %w", err)
	}
	s := &SMTP{Timeout: time.Minute}
	port := ""
	switch u.Scheme {
	case "smtp":
		port = "587"
	case "smtps":
		port, s.implicitTLS = "465", true
	default:
		return nil, fmt.Errorf("SMTP URL: scheme must be smtp or smtps, not %q", u.Scheme)
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, errors.New("SMTP URL: a host is required")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	return s, nil
}

// Addr is the server's host:port.
func (s *SMTP) Addr() string { return s.addr }

// PermanentError is a refusal that retrying will not change (an SMTP 5xx
// reply): the message is marked failed at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Send delivers msg (a whole RFC 5322 message) from from to rcpt. A 5xx
// reply is a *PermanentError; anything else that fails (the server is
// down, a 4xx reply, a timeout) may succeed later. ctx ending closes the
// connection, so a stopped relay never leaves a delivery half done: without
// the final reply to DATA the server has not taken the message.
func (s *SMTP) Send(ctx context.Context, from, rcpt string, msg []byte) (err error) {
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", s.addr, err)
	}
	if s.implicitTLS {
		conn = tls.Client(conn, s.tlsConfig())
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	defer func() {
		if ctx.Err() != nil && err != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
	}()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		_ = conn.Close()
		return classify("greeting", err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return classify("EHLO", err)
	}
	if !s.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tlsConfig()); err != nil {
				return classify("STARTTLS", err)
			}
		}
	}
	if s.user != "" {
		// net/smtp's PLAIN refuses to send the password over a connection
		// that is neither TLS nor to localhost.
		if err := c.Auth(smtp.PlainAuth("", s.user, s.pass, s.host)); err != nil {
			return classify("AUTH", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return classify("MAIL FROM", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return classify("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return classify("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return classify("DATA", err)
	}
	if err := w.Close(); err != nil {
		return classify("end of DATA", err)
	}
	// The message is the server's now; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

func (s *SMTP) tlsConfig() *tls.Config {
	if s.TLSConfig != nil {
		cfg := s.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = s.host
		}
		return cfg
	}
	return &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
}

// classify wraps an SMTP step's error, marking 5xx replies permanent.
func classify(step string, err error) error {
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 {
		return &PermanentError{Err: fmt.Errorf("%s: %w", step, err)}
	}
	return fmt.Errorf("%s: %w", step, err)
}

// domainOf is the part of an address after its last @.
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}
