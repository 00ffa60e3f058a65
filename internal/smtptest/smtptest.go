// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on
// a loopback port for tests, keeping what it accepts in memory.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	netmail "net/mail"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From      string
	To        []string
	Data      []byte
	MessageID string
	// TLS is true when the message came over TLS (STARTTLS or implicit).
	TLS bool
	// User is who authenticated (PLAIN), if anyone.
	User string
}

// Options make the server speak TLS and require authentication.
type Options struct {
	// TLS is "" (plain text), "starttls" (offered after EHLO) or
	// "implicit" (TLS from the first byte, as for smtps://).
	TLS string
	// User and Pass, when set, are the only credentials PLAIN accepts,
	// and a message needs them.
	User, Pass string
}

// Stage is the point of an SMTP transaction a Hook is called at.
type Stage string

const (
	// StageRcpt is after RCPT TO, before DATA.
	StageRcpt Stage = "rcpt"
	// StageData is after the whole message was read, before the server
	// answers the end of DATA: a nil error accepts it.
	StageData Stage = "data"
)

// Server is a running SMTP server.
type Server struct {
	// Addr is host:port.
	Addr string

	// CertPool trusts the server's certificate (with Options.TLS).
	CertPool *x509.CertPool

	opts Options
	srv  *smtp.Server
	mu   sync.Mutex
	msgs []Message
	hook func(Stage, *Message) error
	got  chan struct{}
}

// Start starts a plain-text server on 127.0.0.1 and stops it at the test's
// end.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith starts a server as o says.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), got: make(chan struct{}, 1), opts: o}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s, conn: c}, nil }))
	s.srv.Domain = "smtptest.local"
	s.srv.AllowInsecureAuth = o.TLS == ""
	if o.TLS != "" {
		cert, pool := selfSigned(t)
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.CertPool = pool
		if o.TLS == "implicit" {
			ln = tls.NewListener(ln, s.srv.TLSConfig)
		}
	}
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// URL is the server's URL: smtp:// or smtps:// (implicit TLS), with the
// credentials of Options.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr}
	if s.opts.TLS == "implicit" {
		u.Scheme = "smtps"
	}
	if s.opts.User != "" {
		u.User = url.UserPassword(s.opts.User, s.opts.Pass)
	}
	return u.String()
}

// SetHook makes the server call h at each stage; an error is the server's
// answer (an *smtp.SMTPError sets the reply code). h may block.
func (s *Server) SetHook(h func(Stage, *Message) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// Messages returns what the server accepted, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait waits until the server has accepted at least n messages.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("smtptest: %d message(s) after %s, want %d", len(s.Messages()), timeout, n)
		}
	}
}

func (s *Server) call(st Stage, m *Message) error {
	s.mu.Lock()
	h := s.hook
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(st, m)
}

type session struct {
	s    *Server
	conn *smtp.Conn
	msg  Message
	user string
}

// AuthMechanisms offers PLAIN when the server has credentials.
func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.opts.User || pass != ss.s.opts.Pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) Reset()        { ss.msg = Message{} }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.User != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.msg.From, ss.msg.User = from, ss.user
	_, ss.msg.TLS = ss.conn.TLSConnectionState()
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.msg.To = append(ss.msg.To, to)
	return ss.s.call(StageRcpt, &ss.msg)
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.msg.Data = data
	if m, err := netmail.ReadMessage(bytes.NewReader(data)); err == nil {
		ss.msg.MessageID = m.Header.Get("Message-ID")
	} else {
		return &smtp.SMTPError{Code: 554, Message: "not a valid message: " + err.Error()}
	}
	if err := ss.s.call(StageData, &ss.msg); err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.msg)
	ss.s.mu.Unlock()
	select {
	case ss.s.got <- struct{}{}:
	default:
	}
	return nil
}

// Temporary is a 451 reply: try again later.
var Temporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// Permanent is a 550 reply: never.
var Permanent = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
