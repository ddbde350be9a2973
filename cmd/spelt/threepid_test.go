package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"maunium.net/go/mautrix"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/config"
)

// mailbox is a real SMTP server on loopback (github.com/emersion/go-smtp) that requires
// authentication and keeps every message it accepts, for Spelt to send its e-mail to.
type mailbox struct {
	port  int
	mails chan receivedMail
}

// receivedMail is one message as the SMTP server got it.
type receivedMail struct {
	from string
	to   []string
	msg  *mail.Message
	body string // decoded
}

const (
	mailUser     = "spelt"
	mailPassword = "smtp-pw"
	mailFrom     = "Spelt <matrix@spelt.test>"
)

// mailboxes finds a test server's mailbox by its SMTP port (busyServer).
var mailboxes sync.Map

// startMailbox starts the SMTP server; it stops at the end of the test.
func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{mails: make(chan receivedMail, 16)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &mailSession{mb: mb}, nil
	}))
	srv.Domain = "mail.spelt.test"
	srv.AllowInsecureAuth = true // loopback, no TLS
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.port = l.Addr().(*net.TCPAddr).Port
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Errorf("smtp server: %v", err)
		}
	})
	mailboxes.Store(mb.port, mb)
	return mb
}

// configure points Spelt's [email] section at the mailbox.
func (mb *mailbox) configure(c *config.Config) {
	c.Email.SMTPHost = "127.0.0.1"
	c.Email.SMTPPort = mb.port
	c.Email.SMTPUser, c.Email.SMTPPassword = mailUser, mailPassword
	c.Email.From = mailFrom
	c.Email.RequireTLS = false
}

// withMailbox is a newTestEnv mutator: the server mails to a new mailbox.
func withMailbox(t *testing.T) func(*config.Config) {
	mb := startMailbox(t)
	return mb.configure
}

// mailboxOf returns the mailbox the server sends to.
func mailboxOf(t testing.TB, s *testServer) *mailbox {
	t.Helper()
	mb, ok := mailboxes.Load(s.env.cfg.Email.SMTPPort)
	if !ok || s.env.cfg.Email.SMTPHost == "" {
		t.Fatal("the server has no test mailbox: start it from newTestEnv(t, withMailbox(t))")
	}
	return mb.(*mailbox)
}

type mailSession struct {
	mb     *mailbox
	authed bool
	from   string
	to     []string
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != mailUser || password != mailPassword {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	s.mb.mails <- receivedMail{from: s.from, to: s.to, msg: msg, body: string(b)}
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

// next returns the next message, waiting for it up to 10 seconds.
func (mb *mailbox) next(t testing.TB) receivedMail {
	t.Helper()
	select {
	case m := <-mb.mails:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no e-mail arrived")
		return receivedMail{}
	}
}

// empty checks no message arrived. Spelt sends before it answers, so a mail of a
// request already answered is in the channel.
func (mb *mailbox) empty(t testing.TB, what string) {
	t.Helper()
	select {
	case m := <-mb.mails:
		t.Errorf("%s: unexpected e-mail to %v: %s", what, m.to, m.msg.Header.Get("Subject"))
	default:
	}
}

var linkRE = regexp.MustCompile(`https?://\S+`)

// validationLink is the link of a validation e-mail, with its parameters.
type validationLink struct {
	url                      *url.URL
	sid, clientSecret, token string
}

// link finds the validation link in a mail to address.
func (m receivedMail) link(t testing.TB, address string) validationLink {
	t.Helper()
	if len(m.to) != 1 || m.to[0] != address {
		t.Fatalf("mail to %v, want %s", m.to, address)
	}
	from, err := mail.ParseAddress(m.msg.Header.Get("From"))
	if err != nil || from.Address != "matrix@spelt.test" || m.from != "matrix@spelt.test" {
		t.Errorf("mail from %q (envelope %q)", m.msg.Header.Get("From"), m.from)
	}
	raw := linkRE.FindString(m.body)
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		t.Fatalf("no link in the mail:\n%s", m.body)
	}
	q := u.Query()
	l := validationLink{url: u, sid: q.Get("sid"), clientSecret: q.Get("client_secret"), token: q.Get("token")}
	if l.sid == "" || l.clientSecret == "" || l.token == "" {
		t.Fatalf("link without sid, client_secret or token: %s", raw)
	}
	return l
}

// page sends a request as a browser would (no redirects followed) and returns the
// status, the headers and the body.
func (s *testServer) page(method, path, form string) (int, http.Header, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.baseURL+path, strings.NewReader(form))
	if err != nil {
		s.t.Fatal(err)
	}
	if method == "POST" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != http.StatusFound && mt != "text/html" {
		s.t.Errorf("%s %s: content type %q", method, path, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, resp.Header, string(b)
}

// eventCount is the number of events in the log: "changes nothing" means it stays.
func (s *testServer) eventCount() int {
	s.t.Helper()
	var n int
	if err := s.env.pool.QueryRow(context.Background(), "SELECT count(*) FROM eventlog.events").Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// requestEmailToken posts to a requestToken endpoint and returns the session ID.
func (s *testServer) requestEmailToken(kind, email, secret string, attempt int) string {
	s.t.Helper()
	status, _, body := s.raw("POST", "/_matrix/client/v3/"+kind+"/email/requestToken", "",
		[]byte(fmt.Sprintf(`{"client_secret":%q,"email":%q,"send_attempt":%d}`, secret, email, attempt)))
	sid, _ := body["sid"].(string)
	if status != 200 || sid == "" {
		s.t.Fatalf("%s requestToken for %s: %d %v", kind, email, status, body)
	}
	if _, ok := body["submit_url"]; ok {
		s.t.Errorf("requestToken answered a submit_url: %v", body)
	}
	return sid
}

// submitToken validates a session as a client does, with JSON.
func (s *testServer) submitToken(l validationLink) {
	s.t.Helper()
	status, _, body := s.raw("POST", l.url.Path, "", []byte(fmt.Sprintf(`{"sid":%q,"client_secret":%q,"token":%q}`, l.sid, l.clientSecret, l.token)))
	if status != 200 || body["success"] != true {
		s.t.Fatalf("submit token: %d %v", status, body)
	}
}

// addThreepid runs POST /account/3pid/add through its password stage.
func (s *testServer) addThreepid(token, user, password, sid, secret string) {
	s.t.Helper()
	req := map[string]any{"sid": sid, "client_secret": secret}
	status, _, body := s.raw("POST", "/_matrix/client/v3/account/3pid/add", token, mustJSON(s.t, req))
	session, _ := body["session"].(string)
	if status != 401 || session == "" {
		s.t.Fatalf("3pid/add without auth: %d %v", status, body)
	}
	req["auth"] = passwordAuth(session, user, password)
	if status, _, body := s.raw("POST", "/_matrix/client/v3/account/3pid/add", token, mustJSON(s.t, req)); status != 200 {
		s.t.Fatalf("3pid/add: %d %v", status, body)
	}
}

// addEmail adds an e-mail address to an account the way a client does: request a
// token, follow the mailed link, add with the password.
func (s *testServer) addEmail(token, user, password, address string) {
	s.t.Helper()
	mb := mailboxOf(s.t, s)
	secret := "secret-" + user
	sid := s.requestEmailToken("account/3pid", address, secret, 1)
	l := mb.next(s.t).link(s.t, address)
	if l.sid != sid {
		s.t.Fatalf("mailed sid %s, requestToken answered %s", l.sid, sid)
	}
	s.submitToken(l)
	s.addThreepid(token, user, password, sid, secret)
}

// threepids returns GET /account/3pid's list.
func (s *testServer) threepids(token string) []map[string]any {
	s.t.Helper()
	status, _, body := s.raw("GET", "/_matrix/client/v3/account/3pid", token, nil)
	list, ok := body["threepids"].([]any)
	if status != 200 || !ok {
		s.t.Fatalf("GET /account/3pid: %d %v", status, body)
	}
	out := make([]map[string]any, len(list))
	for i, v := range list {
		out[i] = v.(map[string]any)
	}
	return out
}

func TestThreepidEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mb := startMailbox(t)
	s := newTestEnv(t, mb.configure).start()
	alice := s.register(ctx, "alice", "pw")
	bob := s.register(ctx, "bob", "pw")
	tok := alice.AccessToken

	caps, err := s.client("", tok).Capabilities(ctx)
	if err != nil || caps.ThreePIDChanges == nil || !caps.ThreePIDChanges.Enabled {
		t.Fatalf("capabilities: %+v %v", caps, err)
	}

	// Requesting a token mails a link to the canonical address.
	sid := s.requestEmailToken("account/3pid", " Alice@Example.ORG", "s3cret.A=_-", 1)
	m := mb.next(t)
	if !strings.Contains(m.msg.Header.Get("Subject"), "spelt.test") {
		t.Errorf("subject %q", m.msg.Header.Get("Subject"))
	}
	first := m.link(t, "alice@example.org")
	if first.sid != sid || first.clientSecret != "s3cret.A=_-" || first.url.Path != "/_matrix/client/unstable/add_threepid/email/submit_token" ||
		first.url.Host != "spelt.test:8008" {
		t.Fatalf("link %s (sid %s)", first.url, sid)
	}
	// The same send attempt sends nothing and answers the same session; a higher one
	// sends a new token, and the first no longer works.
	if again := s.requestEmailToken("account/3pid", "alice@example.org", "s3cret.A=_-", 1); again != sid {
		t.Errorf("repeated request: sid %s, want %s", again, sid)
	}
	mb.empty(t, "repeated send attempt")
	if again := s.requestEmailToken("account/3pid", "alice@example.org", "s3cret.A=_-", 2); again != sid {
		t.Errorf("next send attempt: sid %s, want %s", again, sid)
	}
	link := mb.next(t).link(t, "alice@example.org")
	if link.token == first.token {
		t.Fatal("a new send attempt mailed the same token")
	}

	// Adding before the link is followed fails, and records nothing.
	before := s.eventCount()
	status, _, body := s.raw("POST", "/_matrix/client/v3/account/3pid/add", tok,
		mustJSON(t, map[string]any{"sid": sid, "client_secret": link.clientSecret}))
	wantError(t, "add before validation", status, body, 400, "M_THREEPID_AUTH_FAILED")

	// The link shows a confirmation page and changes nothing; bad submissions change
	// nothing either.
	status, hdr, html := s.page("GET", link.url.RequestURI(), "")
	if status != 200 || !strings.Contains(html, `<form method="post"`) || !strings.Contains(html, link.token) ||
		hdr.Get("X-Frame-Options") != "DENY" || hdr.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("confirmation page: %d %v\n%s", status, hdr, html)
	}
	status, _, html = s.page("GET", link.url.Path+"?sid="+link.sid, "")
	if status != 400 || !strings.Contains(html, "incomplete") {
		t.Errorf("incomplete link: %d\n%s", status, html)
	}
	form := func(sid, secret, token string) string {
		return url.Values{"sid": {sid}, "client_secret": {secret}, "token": {token}}.Encode()
	}
	status, _, html = s.page("POST", link.url.Path, form(link.sid, link.clientSecret, first.token))
	if status != 400 || !strings.Contains(html, "No validation session matches") {
		t.Errorf("form with the replaced token: %d\n%s", status, html)
	}
	submit := func(what, body string, wantStatus int, wantCode string) {
		t.Helper()
		status, _, b := s.raw("POST", link.url.Path, "", []byte(body))
		wantError(t, what, status, b, wantStatus, wantCode)
	}
	js := func(sid, secret, token string) string {
		return fmt.Sprintf(`{"sid":%q,"client_secret":%q,"token":%q}`, sid, secret, token)
	}
	submit("wrong token", js(link.sid, link.clientSecret, "nope"), 400, "M_NO_VALID_SESSION")
	submit("replaced token", js(link.sid, link.clientSecret, first.token), 400, "M_NO_VALID_SESSION")
	submit("wrong client secret", js(link.sid, "other", link.token), 400, "M_NO_VALID_SESSION")
	submit("unknown sid", js("nosuchsid", link.clientSecret, link.token), 400, "M_NO_VALID_SESSION")
	submit("missing token", fmt.Sprintf(`{"sid":%q,"client_secret":%q}`, link.sid, link.clientSecret), 400, "M_MISSING_PARAM")
	submit("token not a string", fmt.Sprintf(`{"sid":%q,"client_secret":%q,"token":5}`, link.sid, link.clientSecret), 400, "M_BAD_JSON")
	submit("not JSON", `{"sid":`, 400, "M_NOT_JSON")
	if after := s.eventCount(); after != before {
		t.Fatalf("failed requests appended %d events", after-before)
	}

	// Confirming on the page validates the address.
	status, _, html = s.page("POST", link.url.Path, form(link.sid, link.clientSecret, link.token))
	if status != 200 || !strings.Contains(html, "validated") {
		t.Fatalf("confirm: %d\n%s", status, html)
	}
	n := s.eventCount()
	s.submitToken(link) // again: still fine, nothing new
	if s.eventCount() != n {
		t.Error("validating twice appended an event")
	}

	// Adding needs the password (user-interactive authentication).
	req := map[string]any{"sid": sid, "client_secret": link.clientSecret}
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid/add", tok, mustJSON(t, req))
	session, _ := body["session"].(string)
	flows, _ := body["flows"].([]any)
	if status != 401 || session == "" || len(flows) != 1 {
		t.Fatalf("add without auth: %d %v", status, body)
	}
	req["auth"] = passwordAuth(session, "alice", "wrong")
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid/add", tok, mustJSON(t, req))
	wantError(t, "add with a wrong password", status, body, 401, "M_FORBIDDEN")
	req["auth"] = passwordAuth(session, "alice", "pw")
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid/add", tok, mustJSON(t, req))
	if status != 200 {
		t.Fatalf("add: %d %v", status, body)
	}
	list := s.threepids(tok)
	if len(list) != 1 || list[0]["medium"] != "email" || list[0]["address"] != "alice@example.org" {
		t.Fatalf("threepids: %v", list)
	}
	validated, added := list[0]["validated_at"].(float64), list[0]["added_at"].(float64)
	if validated <= 0 || added < validated || added > float64(time.Now().UnixMilli()) {
		t.Errorf("validated_at %v, added_at %v", validated, added)
	}
	if got := s.threepids(bob.AccessToken); len(got) != 0 {
		t.Errorf("bob's threepids: %v", got)
	}
	// Bob can neither ask to validate Alice's address nor add her session.
	before = s.eventCount()
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid/email/requestToken", "",
		[]byte(`{"client_secret":"bobs","email":"ALICE@example.org","send_attempt":1}`))
	wantError(t, "request for an address in use", status, body, 400, "M_THREEPID_IN_USE")
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid/add", bob.AccessToken,
		mustJSON(t, map[string]any{"sid": sid, "client_secret": link.clientSecret}))
	wantError(t, "bob adds alice's session", status, body, 400, "M_THREEPID_IN_USE")
	mb.empty(t, "address in use")
	if after := s.eventCount(); after != before {
		t.Fatalf("refused requests appended %d events", after-before)
	}

	// Log in with the address, in any case, and with the deprecated forms.
	resp, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Password: "pw",
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeThirdParty, Medium: "email", Address: "ALICE@example.org"}})
	if err != nil || resp.UserID != alice.UserID {
		t.Fatalf("login with e-mail: %+v %v", resp, err)
	}
	status, _, body = s.raw("POST", "/_matrix/client/v3/login", "", []byte(
		`{"type":"m.login.password","medium":"email","address":"alice@example.org","password":"pw"}`))
	if status != 200 || body["user_id"] != string(alice.UserID) {
		t.Errorf("login with the top-level 3PID: %d %v", status, body)
	}
	for _, tc := range []struct{ what, body string }{
		{"wrong password", `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"alice@example.org"},"password":"x"}`},
		{"unknown address", `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"nobody@example.org"},"password":"pw"}`},
		{"not an address", `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"nonsense"},"password":"pw"}`},
		{"phone", `{"type":"m.login.password","identifier":{"type":"m.id.phone","country":"GB","phone":"07700 900001"},"password":"pw"}`},
		{"msisdn", `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"msisdn","address":"447700900001"},"password":"pw"}`},
	} {
		status, _, body := s.raw("POST", "/_matrix/client/v3/login", "", []byte(tc.body))
		wantError(t, "login: "+tc.what, status, body, 403, "M_FORBIDDEN")
	}
	status, _, body = s.raw("POST", "/_matrix/client/v3/login", "", []byte(
		`{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email"},"password":"pw"}`))
	wantError(t, "login without an address", status, body, 400, "M_MISSING_PARAM")

	// Unbind: Spelt knows no identity server; the address stays.
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid/unbind", tok, []byte(`{"medium":"email","address":"alice@example.org"}`))
	if status != 200 || body["id_server_unbind_result"] != "no-support" {
		t.Errorf("unbind: %d %v", status, body)
	}
	if len(s.threepids(tok)) != 1 {
		t.Error("unbind removed the address")
	}
	// Bind (and the deprecated POST /account/3pid, its equivalent) is refused.
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid/bind", tok, []byte(
		`{"client_secret":"x","id_server":"id.example.org","id_access_token":"t","sid":"abc"}`))
	wantError(t, "bind", status, body, 400, "M_SERVER_NOT_TRUSTED")
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid", tok, []byte(
		`{"three_pid_creds":{"client_secret":"x","id_server":"id.example.org","sid":"abc"}}`))
	wantError(t, "deprecated add", status, body, 400, "M_SERVER_NOT_TRUSTED")

	// Bad input, endpoint by endpoint: the spec's error, and nothing recorded.
	before = s.eventCount()
	for _, tc := range []struct {
		what, path, token, body string
		status                  int
		code                    string
	}{
		{"requestToken without client_secret", "account/3pid/email/requestToken", "", `{"email":"a@example.org","send_attempt":1}`, 400, "M_MISSING_PARAM"},
		{"requestToken without email", "register/email/requestToken", "", `{"client_secret":"x","send_attempt":1}`, 400, "M_MISSING_PARAM"},
		{"requestToken without send_attempt", "account/password/email/requestToken", "", `{"client_secret":"x","email":"a@example.org"}`, 400, "M_MISSING_PARAM"},
		{"requestToken send_attempt string", "account/3pid/email/requestToken", "", `{"client_secret":"x","email":"a@example.org","send_attempt":"1"}`, 400, "M_BAD_JSON"},
		{"requestToken email number", "account/3pid/email/requestToken", "", `{"client_secret":"x","email":5,"send_attempt":1}`, 400, "M_BAD_JSON"},
		{"requestToken bad client_secret", "account/3pid/email/requestToken", "", `{"client_secret":"not secret!","email":"a@example.org","send_attempt":1}`, 400, "M_INVALID_PARAM"},
		{"requestToken long client_secret", "account/3pid/email/requestToken", "", `{"client_secret":"` + strings.Repeat("x", 256) + `","email":"a@example.org","send_attempt":1}`, 400, "M_INVALID_PARAM"},
		{"requestToken bad email", "account/3pid/email/requestToken", "", `{"client_secret":"x","email":"Alice <a@example.org>","send_attempt":1}`, 400, "M_INVALID_PARAM"},
		{"requestToken no domain", "register/email/requestToken", "", `{"client_secret":"x","email":"alice@","send_attempt":1}`, 400, "M_INVALID_PARAM"},
		{"requestToken bad next_link", "account/3pid/email/requestToken", "", `{"client_secret":"x","email":"a@example.org","send_attempt":1,"next_link":"javascript:alert(1)"}`, 400, "M_INVALID_PARAM"},
		{"requestToken not JSON", "account/3pid/email/requestToken", "", `nope`, 400, "M_NOT_JSON"},
		{"password reset for an unknown address", "account/password/email/requestToken", "", `{"client_secret":"x","email":"nobody@example.org","send_attempt":1}`, 400, "M_THREEPID_NOT_FOUND"},
		{"register with an address in use", "register/email/requestToken", "", `{"client_secret":"x","email":"alice@example.org","send_attempt":1}`, 400, "M_THREEPID_IN_USE"},
		{"msisdn register", "register/msisdn/requestToken", "", `{"client_secret":"x","country":"GB","phone_number":"07700900001","send_attempt":1}`, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED"},
		{"msisdn add", "account/3pid/msisdn/requestToken", "", `{"client_secret":"x","country":"GB","phone_number":"07700900001","send_attempt":1}`, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED"},
		{"msisdn password", "account/password/msisdn/requestToken", "", `{"client_secret":"x","country":"GB","phone_number":"07700900001","send_attempt":1}`, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED"},
		{"msisdn not JSON", "account/3pid/msisdn/requestToken", "", `[`, 400, "M_NOT_JSON"},
		{"add without sid", "account/3pid/add", tok, `{"client_secret":"x"}`, 400, "M_MISSING_PARAM"},
		{"add without client_secret", "account/3pid/add", tok, `{"sid":"x"}`, 400, "M_MISSING_PARAM"},
		{"add sid number", "account/3pid/add", tok, `{"sid":5,"client_secret":"x"}`, 400, "M_BAD_JSON"},
		{"add bad client_secret", "account/3pid/add", tok, `{"sid":"x","client_secret":"a b"}`, 400, "M_INVALID_PARAM"},
		{"add unknown sid", "account/3pid/add", tok, `{"sid":"nosuchsid","client_secret":"x"}`, 400, "M_THREEPID_AUTH_FAILED"},
		{"add wrong client_secret", "account/3pid/add", tok, fmt.Sprintf(`{"sid":%q,"client_secret":"other"}`, sid), 400, "M_THREEPID_AUTH_FAILED"},
		{"add without token", "account/3pid/add", "", `{"sid":"x","client_secret":"x"}`, 401, "M_MISSING_TOKEN"},
		{"list without token", "account/3pid", "", ``, 401, "M_MISSING_TOKEN"},
		{"delete without medium", "account/3pid/delete", tok, `{"address":"alice@example.org"}`, 400, "M_MISSING_PARAM"},
		{"delete without address", "account/3pid/delete", tok, `{"medium":"email"}`, 400, "M_MISSING_PARAM"},
		{"delete bad medium", "account/3pid/delete", tok, `{"medium":"fax","address":"1"}`, 400, "M_INVALID_PARAM"},
		{"delete address number", "account/3pid/delete", tok, `{"medium":"email","address":1}`, 400, "M_BAD_JSON"},
		{"delete bad email", "account/3pid/delete", tok, `{"medium":"email","address":"nonsense"}`, 400, "M_INVALID_PARAM"},
		{"unbind without medium", "account/3pid/unbind", tok, `{"address":"alice@example.org"}`, 400, "M_MISSING_PARAM"},
		{"unbind bad medium", "account/3pid/unbind", tok, `{"medium":"fax","address":"1"}`, 400, "M_INVALID_PARAM"},
		{"bind without id_server", "account/3pid/bind", tok, `{"client_secret":"x","id_access_token":"t","sid":"abc"}`, 400, "M_MISSING_PARAM"},
		{"bind without id_access_token", "account/3pid/bind", tok, `{"client_secret":"x","id_server":"i","sid":"abc"}`, 400, "M_MISSING_PARAM"},
		{"bind sid number", "account/3pid/bind", tok, `{"client_secret":"x","id_server":"i","id_access_token":"t","sid":1}`, 400, "M_BAD_JSON"},
		{"deprecated without creds", "account/3pid", tok, `{}`, 400, "M_MISSING_PARAM"},
		{"deprecated without sid", "account/3pid", tok, `{"three_pid_creds":{"client_secret":"x","id_server":"i"}}`, 400, "M_MISSING_PARAM"},
	} {
		method := "POST"
		var b []byte
		if tc.body != "" {
			b = []byte(tc.body)
		}
		if tc.path == "account/3pid" && tc.body == "" {
			method = "GET"
		}
		status, _, body := s.raw(method, "/_matrix/client/v3/"+tc.path, tc.token, b)
		wantError(t, tc.what, status, body, tc.status, tc.code)
	}
	mb.empty(t, "bad requests")
	if after := s.eventCount(); after != before {
		t.Fatalf("bad requests appended %d events", after-before)
	}

	// Delete removes the address: it no longer logs in, and can be added elsewhere.
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid/delete", tok, []byte(`{"medium":"email","address":"Alice@Example.org"}`))
	if status != 200 || body["id_server_unbind_result"] != "no-support" {
		t.Fatalf("delete: %d %v", status, body)
	}
	if got := s.threepids(tok); len(got) != 0 {
		t.Errorf("threepids after delete: %v", got)
	}
	n = s.eventCount()
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid/delete", tok, []byte(`{"medium":"email","address":"alice@example.org","id_server":"id.example.org"}`))
	if status != 200 || body["id_server_unbind_result"] != "no-support" || s.eventCount() != n {
		t.Errorf("delete again: %d %v", status, body)
	}
	status, _, body = s.raw("POST", "/_matrix/client/v3/login", "", []byte(
		`{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"alice@example.org"},"password":"pw"}`))
	wantError(t, "login with a deleted address", status, body, 403, "M_FORBIDDEN")
	s.addEmail(bob.AccessToken, "bob", "pw", "alice@example.org")
	if got := s.threepids(bob.AccessToken); len(got) != 1 || got[0]["address"] != "alice@example.org" {
		t.Errorf("bob's threepids: %v", got)
	}
}

func TestThreepidTokenExpiry(t *testing.T) {
	t.Parallel()
	mb := startMailbox(t)
	s := newTestEnv(t, func(c *config.Config) {
		mb.configure(c)
		// Expired before anyone can follow the link: the mail alone takes longer.
		c.Email.TokenLifetime = config.Duration{Duration: time.Millisecond}
	}).start()
	sid := s.requestEmailToken("account/3pid", "late@example.org", "x", 1)
	l := mb.next(t).link(t, "late@example.org")
	before := s.eventCount()
	status, _, body := s.raw("POST", l.url.Path, "", []byte(fmt.Sprintf(`{"sid":%q,"client_secret":"x","token":%q}`, sid, l.token)))
	wantError(t, "expired token", status, body, 400, "M_SESSION_EXPIRED")
	status, _, html := s.page("POST", l.url.Path, url.Values{"sid": {sid}, "client_secret": {"x"}, "token": {l.token}}.Encode())
	if status != 400 || !strings.Contains(html, "expired") {
		t.Errorf("expired token on the page: %d\n%s", status, html)
	}
	if s.eventCount() != before {
		t.Error("an expired token recorded something")
	}
}

func TestThreepidWithoutEmail(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t, nil).start()
	reg := s.register(context.Background(), "noemail", "pw")
	for _, kind := range []string{"register", "account/3pid", "account/password"} {
		for _, medium := range []string{"email", "msisdn"} {
			status, _, body := s.raw("POST", "/_matrix/client/v3/"+kind+"/"+medium+"/requestToken", "",
				[]byte(`{"client_secret":"x","email":"a@example.org","country":"GB","phone_number":"1","send_attempt":1}`))
			wantError(t, kind+" "+medium, status, body, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED")
		}
	}
	// Without e-mail there is no password reset: /account/password needs a token.
	status, _, body := s.raw("POST", "/_matrix/client/v3/account/password", "", []byte(`{"new_password":"x"}`))
	wantError(t, "password without token", status, body, 401, "M_MISSING_TOKEN")
	caps, err := s.client("", reg.AccessToken).Capabilities(context.Background())
	if err != nil || caps.ThreePIDChanges == nil || caps.ThreePIDChanges.Enabled {
		t.Errorf("capabilities: %+v %v", caps, err)
	}
	if got := s.threepids(reg.AccessToken); len(got) != 0 {
		t.Errorf("threepids: %v", got)
	}
}

func TestThreepidRegistrationAndPasswordReset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mb := startMailbox(t)
	s := newTestEnv(t, func(c *config.Config) {
		mb.configure(c)
		c.Registration.RequireEmail = true
	}).start()

	// Registration asks for an e-mail address.
	register := func(body map[string]any) (int, map[string]any) {
		t.Helper()
		status, _, b := s.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, body))
		return status, b
	}
	status, body := register(map[string]any{"username": "carol", "password": "old"})
	session, _ := body["session"].(string)
	if status != 401 || fmt.Sprint(body["flows"]) != "[map[stages:[m.login.email.identity]]]" {
		t.Fatalf("register: %d %v", status, body)
	}
	sid := s.requestEmailToken("register", "carol@example.org", "reg", 1)
	l := mb.next(t).link(t, "carol@example.org")
	if l.url.Path != "/_matrix/client/unstable/registration/email/submit_token" {
		t.Errorf("registration link %s", l.url)
	}
	emailAuth := func(session, sid, secret string) map[string]any {
		return map[string]any{"type": "m.login.email.identity", "session": session,
			"threepid_creds": map[string]string{"sid": sid, "client_secret": secret}}
	}
	// Not validated yet: the stage fails.
	status, body = register(map[string]any{"username": "carol", "password": "old", "auth": emailAuth(session, sid, "reg")})
	wantError(t, "register before validation", status, body, 401, "M_THREEPID_AUTH_FAILED")
	status, body = register(map[string]any{"username": "carol", "password": "old",
		"auth": map[string]any{"type": "m.login.email.identity", "session": session}})
	wantError(t, "register without threepid_creds", status, body, 401, "M_UNRECOGNIZED")
	s.submitToken(l)
	status, body = register(map[string]any{"username": "carol", "password": "old", "auth": emailAuth(session, sid, "wrong")})
	wantError(t, "register with a wrong client secret", status, body, 401, "M_THREEPID_AUTH_FAILED")
	status, body = register(map[string]any{"username": "carol", "password": "old", "auth": emailAuth(session, sid, "reg")})
	carolToken, _ := body["access_token"].(string)
	if status != 200 || body["user_id"] != "@carol:spelt.test" {
		t.Fatalf("register with e-mail: %d %v", status, body)
	}
	if got := s.threepids(carolToken); len(got) != 1 || got[0]["address"] != "carol@example.org" {
		t.Fatalf("carol's threepids: %v", got)
	}
	// The session is spent, and the address taken.
	status, body = register(map[string]any{"username": "dave", "password": "pw", "auth": emailAuth("", sid, "reg")})
	wantError(t, "register with a used session", status, body, 401, "M_THREEPID_AUTH_FAILED")
	status, _, body = s.raw("POST", "/_matrix/client/v3/register/email/requestToken", "",
		[]byte(`{"client_secret":"x","email":"carol@example.org","send_attempt":1}`))
	wantError(t, "register an address in use", status, body, 400, "M_THREEPID_IN_USE")

	// Password reset: request a token for the address, confirm on the page, then
	// POST /account/password without an access token.
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/password/email/requestToken", "",
		[]byte(`{"client_secret":"reset","email":"Carol@example.org","send_attempt":1,"next_link":"https://app.spelt.test/reset-done"}`))
	if status != 200 {
		t.Fatalf("reset requestToken: %d %v", status, body)
	}
	m := mb.next(t)
	if !strings.Contains(m.msg.Header.Get("Subject"), "password") {
		t.Errorf("reset subject %q", m.msg.Header.Get("Subject"))
	}
	rl := m.link(t, "carol@example.org")
	if rl.url.Path != "/_synapse/client/password_reset/email/submit_token" {
		t.Errorf("reset link %s", rl.url)
	}
	status, _, html := s.page("GET", rl.url.RequestURI(), "")
	if status != 200 || !strings.Contains(html, "password") {
		t.Fatalf("reset page: %d\n%s", status, html)
	}
	// Confirming goes on to the next_link given to requestToken.
	status, hdr, _ := s.page("POST", rl.url.Path, url.Values{"sid": {rl.sid}, "client_secret": {rl.clientSecret}, "token": {rl.token}}.Encode())
	if status != 302 || hdr.Get("Location") != "https://app.spelt.test/reset-done" {
		t.Fatalf("reset confirm: %d %v", status, hdr)
	}
	reset := func(body map[string]any) (int, map[string]any) {
		t.Helper()
		status, _, b := s.raw("POST", "/_matrix/client/v3/account/password", "", mustJSON(t, body))
		return status, b
	}
	status, body = reset(map[string]any{"new_password": "new"})
	resetSession, _ := body["session"].(string)
	if status != 401 || fmt.Sprint(body["flows"]) != "[map[stages:[m.login.email.identity]]]" {
		t.Fatalf("reset: %d %v", status, body)
	}
	// A session validated to add an address to an account resets no password.
	addSid := s.requestEmailToken("account/3pid", "someone@example.org", "add-secret", 1)
	s.submitToken(mb.next(t).link(t, "someone@example.org"))
	before := s.eventCount()
	status, body = reset(map[string]any{"new_password": "new", "auth": emailAuth(resetSession, addSid, "add-secret")})
	wantError(t, "reset with a session validated for adding", status, body, 401, "M_THREEPID_AUTH_FAILED")
	status, body = reset(map[string]any{"auth": emailAuth(resetSession, rl.sid, rl.clientSecret)})
	wantError(t, "reset without new_password", status, body, 400, "M_MISSING_PARAM")
	status, body = reset(map[string]any{"new_password": "new", "auth": emailAuth(resetSession, sid, "reg")})
	wantError(t, "reset with the registration's spent session", status, body, 401, "M_THREEPID_AUTH_FAILED")
	if after := s.eventCount(); after != before {
		t.Errorf("failed resets appended %d events", after-before)
	}
	status, body = reset(map[string]any{"new_password": "new", "auth": emailAuth(resetSession, rl.sid, rl.clientSecret)})
	if status != 200 {
		t.Fatalf("reset: %d %v", status, body)
	}
	// Every device is logged out; the new password works, with the address too.
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami", carolToken, nil)
	wantError(t, "old token after reset", status, body, 401, "M_UNKNOWN_TOKEN")
	for _, tc := range []struct {
		password string
		status   int
	}{{"old", 403}, {"new", 200}} {
		status, _, body := s.raw("POST", "/_matrix/client/v3/login", "", []byte(fmt.Sprintf(
			`{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"carol@example.org"},"password":%q}`, tc.password)))
		if status != tc.status {
			t.Errorf("login with %s password: %d %v", tc.password, status, body)
		}
	}
	// The validated session resets once.
	status, body = reset(map[string]any{"new_password": "newer", "auth": emailAuth("", rl.sid, rl.clientSecret)})
	wantError(t, "second reset with one session", status, body, 401, "M_THREEPID_AUTH_FAILED")

	// With a registration token required too, the flow is e-mail then token: the
	// address proved in one request is added when the account is created in another.
	mb2 := startMailbox(t)
	s2 := newTestEnv(t, func(c *config.Config) {
		mb2.configure(c)
		c.Registration.RequireEmail = true
		c.Registration.RequireToken = true
	}).start()
	if _, _, err := s2.app.commands.CreateRegistrationToken(ctx, eventlog.Metadata{Origin: eventlog.OriginAdmin}, "tok-1", nil, nil); err != nil {
		t.Fatal(err)
	}
	status, _, body = s2.raw("POST", "/_matrix/client/v3/register", "", []byte(`{"username":"erin","password":"pw"}`))
	session, _ = body["session"].(string)
	if status != 401 || fmt.Sprint(body["flows"]) != "[map[stages:[m.login.email.identity m.login.registration_token]]]" {
		t.Fatalf("register with both: %d %v", status, body)
	}
	sid = s2.requestEmailToken("register", "erin@example.org", "e", 1)
	s2.submitToken(mb2.next(t).link(t, "erin@example.org"))
	status, _, body = s2.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, map[string]any{
		"username": "erin", "password": "pw", "auth": emailAuth(session, sid, "e")}))
	if status != 401 || fmt.Sprint(body["completed"]) != "[m.login.email.identity]" {
		t.Fatalf("email stage: %d %v", status, body)
	}
	status, _, body = s2.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, map[string]any{
		"username": "erin", "password": "pw", "auth": map[string]any{"type": "m.login.registration_token", "token": "tok-1", "session": session}}))
	erinToken, _ := body["access_token"].(string)
	if status != 200 {
		t.Fatalf("token stage: %d %v", status, body)
	}
	if got := s2.threepids(erinToken); len(got) != 1 || got[0]["address"] != "erin@example.org" {
		t.Errorf("erin's threepids: %v", got)
	}
}

// TestThreepidAddRace: two accounts adding one address at the same moment; the
// address's stream serialises them, so exactly one gets it.
func TestThreepidAddRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, withMailbox(t)).start()
	mb := mailboxOf(t, s)
	type contender struct {
		token, user, sid, secret, session string
	}
	var cs []*contender
	for _, u := range []string{"racer1", "racer2"} {
		reg := s.register(ctx, u, "pw")
		c := &contender{token: reg.AccessToken, user: u, secret: "secret-" + u}
		c.sid = s.requestEmailToken("account/3pid", "shared@example.org", c.secret, 1)
		s.submitToken(mb.next(t).link(t, "shared@example.org"))
		_, _, body := s.raw("POST", "/_matrix/client/v3/account/3pid/add", c.token, mustJSON(t, map[string]any{"sid": c.sid, "client_secret": c.secret}))
		c.session, _ = body["session"].(string)
		cs = append(cs, c)
	}
	statuses := make(chan int, len(cs))
	for _, c := range cs {
		go func() {
			status, _, _ := s.raw("POST", "/_matrix/client/v3/account/3pid/add", c.token, mustJSON(t, map[string]any{
				"sid": c.sid, "client_secret": c.secret, "auth": passwordAuth(c.session, c.user, "pw")}))
			statuses <- status
		}()
	}
	won := 0
	for range cs {
		if <-statuses == 200 {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d accounts got the address, want 1", won)
	}
	owners := 0
	for _, c := range cs {
		owners += len(s.threepids(c.token))
	}
	if owners != 1 {
		t.Errorf("the address is on %d accounts", owners)
	}
}
