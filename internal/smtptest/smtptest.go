// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on
// a loopback port for tests, keeping what it accepts in memory.
package smtptest

import (
	"bytes"
	"io"
	"net"
	netmail "net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From      string
	To        []string
	Data      []byte
	MessageID string
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

	srv  *smtp.Server
	mu   sync.Mutex
	msgs []Message
	hook func(Stage, *Message) error
	got  chan struct{}
}

// Start starts a server on 127.0.0.1 and stops it at the test's end.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), got: make(chan struct{}, 1)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "smtptest.local"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// URL is the server's smtp:// URL.
func (s *Server) URL() string { return "smtp://" + s.Addr }

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
	s   *Server
	msg Message
}

func (ss *session) Reset()        { ss.msg = Message{} }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.msg.From = from
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

// Permanent is a 550 reply: never.
var Permanent = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
