// Package mailer sends e-mail through the SMTP server of the configuration (section
// [email]), with github.com/wneessen/go-mail. Spelt mails 3PID validation tokens.
package mailer

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Config is the SMTP server and the sender.
type Config struct {
	Host string
	// Port 465 means implicit TLS (SMTPS); any other port speaks plain SMTP and
	// upgrades with STARTTLS.
	Port int
	// User and Password authenticate to the server when User is not empty, with the
	// best mechanism it offers (PLAIN and LOGIN only over TLS, or to a loopback host).
	User     string
	Password string
	// From is the sender, "addr@example.org" or "Name <addr@example.org>".
	From string
	// RequireTLS fails a delivery when the server does not offer STARTTLS; otherwise
	// STARTTLS is used when offered and the mail goes in clear text when not.
	RequireTLS bool
	// Timeout bounds connecting and each SMTP exchange; 30 seconds when zero.
	Timeout time.Duration
}

// Mailer sends plain-text e-mail. It holds no connection: each Send dials the server.
type Mailer struct {
	cfg Config
}

// New checks cfg and returns a Mailer.
func New(cfg Config) (*Mailer, error) {
	if cfg.Host == "" {
		return nil, errors.New("mailer: no SMTP host")
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("mailer: port %d out of range", cfg.Port)
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("mailer: from address: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &Mailer{cfg: cfg}, nil
}

// Send delivers one plain-text message to the address to.
func (m *Mailer) Send(ctx context.Context, to, subject, body string) error {
	msg := gomail.NewMsg()
	if err := msg.From(m.cfg.From); err != nil {
		return fmt.Errorf("mailer: from: %w", err)
	}
	if err := msg.To(to); err != nil {
		return fmt.Errorf("mailer: to: %w", err)
	}
	msg.Subject(subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, body)

	opts := []gomail.Option{gomail.WithPort(m.cfg.Port), gomail.WithTimeout(m.cfg.Timeout)}
	switch {
	case m.cfg.Port == 465:
		opts = append(opts, gomail.WithSSL())
	case m.cfg.RequireTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if m.cfg.User != "" {
		// The strongest mechanism the server offers. PLAIN and LOGIN send the password
		// itself: go-mail's client refuses them without TLS unless the server is on
		// localhost.
		opts = append(opts, gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
			gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(m.cfg.User), gomail.WithPassword(m.cfg.Password))
	}
	client, err := gomail.NewClient(m.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mailer: send to %s:%d: %w", m.cfg.Host, m.cfg.Port, err)
	}
	return nil
}
