package mail_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/internal/smtptest"
	"github.com/assignment-ledger/ledger/mail"
)

const testMessage = "From: <ledger@acme.example>\r\nTo: <carla@client.example>\r\nSubject: hi\r\nMessage-ID: <1@acme.example>\r\n\r\nhello\r\n"

func sender(t *testing.T, srv *smtptest.Server, url string) *mail.SMTP {
	t.Helper()
	s, err := mail.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	s.Timeout = 10 * time.Second
	if srv.CertPool != nil {
		s.TLSConfig = &tls.Config{RootCAs: srv.CertPool}
	}
	return s
}

func TestSMTPUsesSTARTTLSWhenOfferedAndAuthenticates(t *testing.T) {
	t.Parallel()
	srv := smtptest.StartWith(t, smtptest.Options{TLS: "starttls", User: "ledger", Pass: "s3cret"})
	if !strings.HasPrefix(srv.URL(), "smtp://ledger:s3cret@") {
		t.Fatalf("URL %s", srv.URL())
	}
	if err := sender(t, srv, srv.URL()).Send(context.Background(), "ledger@acme.example", "carla@client.example", []byte(testMessage)); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()
	if len(m) != 1 || !m[0].TLS || m[0].User != "ledger" || m[0].MessageID != "<1@acme.example>" {
		t.Fatalf("received %+v", m)
	}
}

func TestSMTPSUsesImplicitTLS(t *testing.T) {
	t.Parallel()
	srv := smtptest.StartWith(t, smtptest.Options{TLS: "implicit", User: "ledger", Pass: "s3cret"})
	if !strings.HasPrefix(srv.URL(), "smtps://") {
		t.Fatalf("URL %s", srv.URL())
	}
	if err := sender(t, srv, srv.URL()).Send(context.Background(), "ledger@acme.example", "carla@client.example", []byte(testMessage)); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages(); len(m) != 1 || !m[0].TLS || m[0].User != "ledger" {
		t.Fatalf("received %+v", m)
	}
}

func TestSMTPRefusals(t *testing.T) {
	t.Parallel()
	srv := smtptest.StartWith(t, smtptest.Options{TLS: "starttls", User: "ledger", Pass: "s3cret"})
	// A wrong password is a 535: permanent.
	bad := strings.Replace(srv.URL(), "s3cret", "wrong", 1)
	err := sender(t, srv, bad).Send(context.Background(), "ledger@acme.example", "carla@client.example", []byte(testMessage))
	var perm *mail.PermanentError
	if !errors.As(err, &perm) || !strings.Contains(err.Error(), "535") {
		t.Errorf("wrong password: %v", err)
	}
	// An untrusted certificate stops the delivery before anything is sent.
	s, err := mail.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	s.Timeout = 10 * time.Second
	if err := s.Send(context.Background(), "ledger@acme.example", "carla@client.example", []byte(testMessage)); err == nil || errors.As(err, &perm) {
		t.Errorf("untrusted certificate: %v (want a temporary error)", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for raw, addr := range map[string]string{
		"smtp://mail.example":           "mail.example:587",
		"smtps://u:p@mail.example":      "mail.example:465",
		"smtp://u:p%40x@127.0.0.1:2525": "127.0.0.1:2525",
		"smtp://[::1]:25":               "[::1]:25",
	} {
		s, err := mail.ParseURL(raw)
		if err != nil || s.Addr() != addr {
			t.Errorf("%s: %v %v, want %s", raw, s, err, addr)
		}
	}
	for _, raw := range []string{"http://mail.example", "smtp://", "smtp:///x", "mail.example:25"} {
		if _, err := mail.ParseURL(raw); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}
}
