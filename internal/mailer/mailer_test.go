package mailer

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// server is a plain SMTP server on loopback (no STARTTLS) that wants user/pw.
func server(t *testing.T) (port int, got chan string) {
	t.Helper()
	got = make(chan string, 1)
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{got: got}, nil }))
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port, got
}

type session struct {
	got    chan string
	authed bool
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pw string) error {
		if user != "user" || pw != "pw" {
			return errors.New("bad credentials")
		}
		s.authed = true
		return nil
	}), nil
}
func (s *session) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.got <- string(b)
	return err
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func TestSend(t *testing.T) {
	t.Parallel()
	port, got := server(t)
	cfg := Config{Host: "127.0.0.1", Port: port, User: "user", Password: "pw", From: "Spelt <m@spelt.test>"}

	// require_tls: a server without STARTTLS gets nothing.
	m, err := New(Config{Host: cfg.Host, Port: port, From: cfg.From, User: "user", Password: "pw", RequireTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), "a@example.org", "s", "b"); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("send without TLS when required: %v", err)
	}
	// Wrong password: refused by the server.
	bad := cfg
	bad.Password = "nope"
	if m, _ := New(bad); m.Send(context.Background(), "a@example.org", "s", "b") == nil {
		t.Error("sent with a wrong password")
	}
	m, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), "a@example.org", "Hello", "line one\nline two"); err != nil {
		t.Fatal(err)
	}
	msg := <-got
	for _, want := range []string{"Subject: Hello", "To: <a@example.org>", `From: "Spelt" <m@spelt.test>`, "line one"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{Port: 25, From: "a@b"},
		{Host: "h", Port: 0, From: "a@b"},
		{Host: "h", Port: 25, From: "not an address"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
