package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/text/language"
	"maunium.net/go/mautrix"

	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/spectest"
)

// The tests of single sign-on run a real OpenID provider on loopback: zitadel/oidc's
// provider (pkg/op) with its example in-memory storage and login form, behind a thin
// wrapper that records the authorization requests and, when a test asks, rewrites the
// next ID token (re-signed with a key the provider's JWKS also lists) to check that
// Spelt refuses a wrong nonce, issuer, audience or expiry.

const (
	testIdP         = "zitadel"
	testIdPName     = "Zitadel"
	testClientID    = "spelt"
	testSecret      = "client-secret"
	testPassword    = "verysecure"
	testCallbackURL = "http://spelt.test:8008/_synapse/client/oidc/callback"
)

// testUsers are the provider's accounts: subject → username (preferred_username) and
// first and last name (name).
var testUsers = map[string]*storage.User{
	"sub-alice": {ID: "sub-alice", Username: "alice", FirstName: "Alice", LastName: "Liddell"},
	"sub-bob":   {ID: "sub-bob", Username: "bob", FirstName: "Bob", LastName: "Builder"},
	"sub-carol": {ID: "sub-carol", Username: "Carol@Example", FirstName: "Carol", LastName: "C"},
	"sub-dave":  {ID: "sub-dave", Username: "dave", FirstName: "Dave", LastName: "D"},
}

type userStore struct{}

func (userStore) GetUserByID(id string) *storage.User {
	if u, ok := testUsers[id]; ok {
		c := *u
		c.Password, c.PreferredLanguage, c.EmailVerified, c.Email = testPassword, language.English, true, u.ID+"@example.org"
		return &c
	}
	return nil
}

func (s userStore) GetUserByUsername(name string) *storage.User {
	for id, u := range testUsers {
		if u.Username == name {
			return s.GetUserByID(id)
		}
	}
	return nil
}

func (userStore) ExampleClientID() string { return "service" }

// testOP is an OpenID provider for one test.
type testOP struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey // signs rewritten ID tokens; listed in the JWKS as "rewrite"
	rogue  *rsa.PrivateKey // signs when a test wants a key the provider does not list
	mu     sync.Mutex
	tamper func(claims map[string]any) (rogueKey bool)
	auths  []url.Values // authorization requests seen
	tokens atomic.Int32 // token requests seen
	hits   atomic.Int32 // requests of any kind
}

func startOP(t *testing.T) *testOP {
	t.Helper()
	op := &testOP{t: t}
	var err error
	if op.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if op.rogue, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	var inner http.Handler
	op.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { op.serve(w, r, inner) }))
	t.Cleanup(op.srv.Close)
	clients := map[string]*storage.Client{testClientID: storage.WebClient(testClientID, testSecret, testCallbackURL)}
	inner = exampleop.SetupServer(op.srv.URL, storage.NewStorageWithClients(userStore{}, clients), nil, false)
	return op
}

func (op *testOP) serve(w http.ResponseWriter, r *http.Request, inner http.Handler) {
	op.hits.Add(1)
	switch r.URL.Path {
	case "/auth":
		op.mu.Lock()
		op.auths = append(op.auths, r.URL.Query())
		op.mu.Unlock()
	case "/keys", "/oauth/token":
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK && r.URL.Path == "/keys" {
			body = op.addKey(body)
		}
		if rec.Code == http.StatusOK && r.URL.Path == "/oauth/token" {
			op.tokens.Add(1)
			body = op.rewrite(body)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
		return
	}
	inner.ServeHTTP(w, r)
}

// addKey lists the rewrite key in the JWKS.
func (op *testOP) addKey(body []byte) []byte {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		op.t.Errorf("jwks: %v", err)
		return body
	}
	set.Keys = append(set.Keys, jose.JSONWebKey{Key: &op.key.PublicKey, KeyID: "rewrite", Algorithm: "RS256", Use: "sig"})
	out, _ := json.Marshal(set)
	return out
}

// rewrite applies the test's tamper function to the ID token of a token response.
func (op *testOP) rewrite(body []byte) []byte {
	op.mu.Lock()
	tamper := op.tamper
	op.tamper = nil
	op.mu.Unlock()
	if tamper == nil {
		return body
	}
	var resp map[string]any
	if err := json.Unmarshal(body, &resp); err != nil {
		op.t.Errorf("token response: %v", err)
		return body
	}
	raw, _ := resp["id_token"].(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		op.t.Errorf("token response without an id_token: %s", body)
		return body
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		op.t.Fatal(err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		op.t.Fatal(err)
	}
	key, kid := op.key, "rewrite"
	if tamper(claims) {
		key, kid = op.rogue, "rewrite" // same kid, wrong key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		op.t.Fatal(err)
	}
	payload, _ = json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		op.t.Fatal(err)
	}
	resp["id_token"], err = jws.CompactSerialize()
	if err != nil {
		op.t.Fatal(err)
	}
	out, _ := json.Marshal(resp)
	return out
}

// tamperNext makes the next token response carry an ID token changed by f.
func (op *testOP) tamperNext(f func(claims map[string]any) (rogueKey bool)) {
	op.mu.Lock()
	op.tamper = f
	op.mu.Unlock()
}

func (op *testOP) lastAuth() url.Values {
	op.mu.Lock()
	defer op.mu.Unlock()
	if len(op.auths) == 0 {
		return nil
	}
	return op.auths[len(op.auths)-1]
}

// withSSO configures the provider in a test environment.
func withSSO(op *testOP, allowPrivate bool) func(*config.Config) {
	return func(c *config.Config) {
		c.SSO.AllowPrivateAddresses = allowPrivate
		c.SSO.Providers = []config.SSOProvider{{ID: testIdP, Name: testIdPName, Issuer: op.srv.URL, ClientID: testClientID,
			ClientSecret: testSecret, AllowInsecureIssuer: true}}
	}
}

// browser is a user's browser: a cookie jar, redirects followed by hand, and Spelt's
// public host (spelt.test:8008, from public_baseurl) dialled to a test server.
type browser struct {
	t      *testing.T
	client *http.Client
	target atomic.Value // "127.0.0.1:port" of the Spelt server spelt.test:8008 reaches
}

func newBrowser(t *testing.T, s *testServer, checkSpec bool) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t}
	b.use(s)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	var tr http.RoundTripper = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == "spelt.test:8008" {
			addr = b.target.Load().(string)
		}
		return dialer.DialContext(ctx, network, addr)
	}}
	if checkSpec {
		tr = spectest.Transport(t, tr)
	}
	b.client = &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return b
}

// use points spelt.test:8008 at another server (a restart, a second process).
func (b *browser) use(s *testServer) { b.target.Store(strings.TrimPrefix(s.baseURL, "http://")) }

type page struct {
	status   int
	location string
	header   http.Header
	body     string
}

func (p page) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(p.body), &m); err != nil {
		t.Fatalf("not JSON (%d): %q", p.status, p.body)
	}
	return m
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), header: resp.Header, body: string(body)}
}

func (b *browser) get(rawURL string) page {
	b.t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// resolve makes a Location absolute against the URL that sent it.
func resolve(t *testing.T, base, loc string) string {
	t.Helper()
	bu, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	lu, err := bu.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return lu.String()
}

const spelt = "http://spelt.test:8008"

// atProvider logs the user in at the provider, from its authorization URL to the
// redirect back to Spelt's callback, which it returns without following.
func (b *browser) atProvider(authURL, username string) string {
	b.t.Helper()
	p := b.get(authURL)
	if p.status != http.StatusFound {
		b.t.Fatalf("authorize: %d %s", p.status, p.body)
	}
	loginURL := resolve(b.t, authURL, p.location)
	lu, _ := url.Parse(loginURL)
	form := url.Values{"id": {lu.Query().Get("authRequestID")}, "username": {username}, "password": {testPassword}}
	req, _ := http.NewRequest("POST", lu.Scheme+"://"+lu.Host+lu.Path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	p = b.do(req)
	if p.status != http.StatusFound {
		b.t.Fatalf("provider login as %s: %d %s", username, p.status, p.body)
	}
	p = b.get(resolve(b.t, loginURL, p.location))
	if p.status != http.StatusFound || !strings.HasPrefix(p.location, testCallbackURL+"?") {
		b.t.Fatalf("provider did not send the browser back to Spelt: %d %q %s", p.status, p.location, p.body)
	}
	return p.location
}

// startLogin follows Spelt's redirect endpoint to the provider and logs in there; it
// returns the callback URL.
func (b *browser) startLogin(path, username string) string {
	b.t.Helper()
	p := b.get(spelt + path)
	if p.status != http.StatusFound {
		b.t.Fatalf("GET %s: %d %s", path, p.status, p.body)
	}
	return b.atProvider(p.location, username)
}

// finish delivers the callback, finds on the confirmation page the link that continues
// to the client, and returns its loginToken.
func (b *browser) finish(callback, redirectPrefix string) string {
	b.t.Helper()
	p := b.get(callback)
	m := regexp.MustCompile(`<a id="continue" href="([^"]+)"`).FindStringSubmatch(string(p.body))
	if p.status != http.StatusOK || m == nil {
		b.t.Fatalf("callback: %d %s", p.status, p.body)
	}
	link := html.UnescapeString(m[1])
	if !strings.HasPrefix(link, redirectPrefix) {
		b.t.Fatalf("continue link %q does not go to %s", link, redirectPrefix)
	}
	u, err := url.Parse(link)
	if err != nil {
		b.t.Fatal(err)
	}
	tok := u.Query()["loginToken"]
	if len(tok) != 1 || tok[0] == "" {
		b.t.Fatalf("continue link without one loginToken: %s", link)
	}
	return tok[0]
}

// loginWithToken exchanges a login token for an access token.
func loginWithToken(t *testing.T, s *testServer, token string) *mautrix.RespLogin {
	t.Helper()
	resp, err := s.client("", "").Login(context.Background(), &mautrix.ReqLogin{Type: mautrix.AuthTypeToken, Token: token})
	if err != nil {
		t.Fatalf("m.login.token: %v", err)
	}
	return resp
}

// ssoCounts counts accounts, linked identities and login tokens in the write model.
func ssoCounts(t *testing.T, dbURL string) [3]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n [3]int
	err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM writemodel.users), (SELECT count(*) FROM writemodel.sso_identities),
		(SELECT count(*) FROM writemodel.login_tokens)`).Scan(&n[0], &n[1], &n[2])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSSOLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	op := startOP(t)
	te := newTestEnv(t, withSSO(op, true))
	s := te.start()
	s.register(ctx, "bob", "pw") // a local bob: the provider's bob gets bob1

	// GET /login lists the provider.
	status, _, body := s.raw("GET", "/_matrix/client/v3/login", "", nil)
	flows, _ := json.Marshal(body["flows"])
	if status != 200 || !strings.Contains(string(flows), `{"identity_providers":[{"id":"zitadel","name":"Zitadel"}],"type":"m.login.sso"}`) {
		t.Fatalf("GET /login: %d %s", status, flows)
	}

	b := newBrowser(t, s, true)
	client := "https://client.example/sso?x=1&loginToken=stale"

	// The redirect carries the state, a nonce and an S256 code challenge, and sets a
	// cookie for the callback only.
	p := b.get(spelt + "/_matrix/client/v3/login/sso/redirect/" + testIdP + "?redirectUrl=" + url.QueryEscape(client))
	if p.status != http.StatusFound || !strings.HasPrefix(p.location, op.srv.URL+"/auth?") {
		t.Fatalf("redirect: %d %q %s", p.status, p.location, p.body)
	}
	q, _ := url.ParseQuery(strings.SplitN(p.location, "?", 2)[1])
	for k, want := range map[string]string{"response_type": "code", "client_id": testClientID, "redirect_uri": testCallbackURL,
		"code_challenge_method": "S256", "scope": "openid profile email"} {
		if q.Get(k) != want {
			t.Errorf("authorization request %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 32 || len(q.Get("nonce")) < 32 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("authorization request lacks state, nonce or code challenge: %v", q)
	}
	cookie := p.header.Get("Set-Cookie")
	if !strings.HasPrefix(cookie, "spelt_sso_") || !strings.Contains(cookie, "Path=/_synapse/client/oidc") ||
		!strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Errorf("cookie: %q", cookie)
	}
	before := ssoCounts(t, te.dbURL)
	callback := b.atProvider(p.location, "alice")
	if op.lastAuth().Get("state") != q.Get("state") {
		t.Fatal("the provider saw another state")
	}
	if cb, _ := url.Parse(callback); cb.Query().Get("state") != q.Get("state") || cb.Query().Get("code") == "" {
		t.Fatalf("callback: %s", callback)
	}

	// From another browser (no cookie), the callback is refused and creates nothing;
	// the code is not spent, and the right browser still finishes.
	other := newBrowser(t, s, true)
	if p := other.get(callback); p.status != http.StatusForbidden || p.json(t)["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("callback from another browser: %d %s", p.status, p.body)
	}
	if got := ssoCounts(t, te.dbURL); got != before {
		t.Fatalf("a refused callback changed the write model: %v, then %v", before, got)
	}

	// The callback sends the browser to redirectUrl with a fresh loginToken (the stale
	// one removed, other parameters kept).
	cbURL, _ := url.Parse(callback)
	var firstCookie *http.Cookie
	for _, c := range b.client.Jar.Cookies(&url.URL{Scheme: "http", Host: "spelt.test:8008", Path: "/_synapse/client/oidc/callback"}) {
		firstCookie = c
	}
	token := b.finish(callback, "https://client.example/sso?")
	login := loginWithToken(t, s, token)
	if login.UserID != "@alice:spelt.test" {
		t.Fatalf("SSO login as %s, want @alice:spelt.test", login.UserID)
	}
	if who, err := s.client("", login.AccessToken).Whoami(ctx); err != nil || who.UserID != login.UserID {
		t.Fatalf("whoami: %+v %v", who, err)
	}
	if got := ssoCounts(t, te.dbURL); got[0] != before[0]+1 || got[1] != before[1]+1 {
		t.Fatalf("first login: accounts and links %v, then %v", before, got)
	}
	// The login token works once.
	status, _, body = s.raw("POST", "/_matrix/client/v3/login", "", mustJSON(t, map[string]string{"type": "m.login.token", "token": token}))
	wantError(t, "reused login token", status, body, 403, "M_FORBIDDEN")

	// A replayed callback (even with the login's cookie) is refused: the state is spent.
	req, _ := http.NewRequest("GET", callback, nil)
	req.AddCookie(&http.Cookie{Name: firstCookie.Name, Value: firstCookie.Value})
	if p := newBrowser(t, s, true).do(req); p.status != http.StatusForbidden {
		t.Fatalf("replayed callback: %d %s", p.status, p.body)
	}
	// A forged state is refused.
	forged := testCallbackURL + "?state=forged-state-forged-state-forged&code=" + url.QueryEscape(cbURL.Query().Get("code"))
	if p := b.get(forged); p.status != http.StatusForbidden {
		t.Fatalf("forged state: %d %s", p.status, p.body)
	}

	// A second login of the same identity is the same account, through the generic
	// redirect (one provider: straight to it).
	mid := ssoCounts(t, te.dbURL)
	token = b.finish(b.startLogin("/_matrix/client/v3/login/sso/redirect?redirectUrl="+url.QueryEscape("myapp://sso"), "alice"), "myapp://sso?")
	if again := loginWithToken(t, s, token); again.UserID != "@alice:spelt.test" || again.DeviceID == login.DeviceID {
		t.Fatalf("second login: %+v", again)
	}
	if got := ssoCounts(t, te.dbURL); got[0] != mid[0] || got[1] != mid[1] {
		t.Fatalf("second login created an account: %v, then %v", mid, got)
	}

	// A localpart that is taken gets a number; a username outside the grammar is mapped.
	for user, want := range map[string]string{"bob": "@bob1:spelt.test", "Carol@Example": "@carol=40example:spelt.test"} {
		token := b.finish(b.startLogin("/_matrix/client/v3/login/sso/redirect/"+testIdP+"?redirectUrl="+url.QueryEscape(client), user), "https://client.example/")
		if got := loginWithToken(t, s, token).UserID.String(); got != want {
			t.Errorf("%s logs in as %s, want %s", user, got, want)
		}
	}
	// The provider's display name is recorded with the link.
	var display string
	conn, err := pgx.Connect(ctx, te.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT payload->>'display_name' FROM eventlog.events
		WHERE type = 'sso.identity_linked.v1' AND payload->>'user_id' = '@bob1:spelt.test'`).Scan(&display); err != nil || display != "Bob Builder" {
		t.Errorf("display name of bob1: %q %v", display, err)
	}
	// ... and becomes the new account's display name.
	if name, err := s.client("", "").GetDisplayName(ctx, "@bob1:spelt.test"); err != nil || name.DisplayName != "Bob Builder" {
		t.Errorf("bob1's profile: %+v %v", name, err)
	}
	// The log holds neither the state, nor the nonce, nor the verifier.
	var leaks int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM eventlog.events WHERE payload::text LIKE '%' || $1 || '%' OR payload::text LIKE '%' || $2 || '%'`,
		q.Get("state"), q.Get("nonce")).Scan(&leaks); err != nil || leaks != 0 {
		t.Errorf("events holding the state or nonce: %d %v", leaks, err)
	}
}

// TestSSOExistingUsers: with allow_existing_users, an identity's first login whose
// username names an existing account logs in to it and stays linked to it.
func TestSSOExistingUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	op := startOP(t)
	te := newTestEnv(t, func(c *config.Config) {
		withSSO(op, true)(c)
		c.SSO.Providers[0].AllowExistingUsers = true
	})
	s := te.start()
	s.register(ctx, "bob", "pw")
	b := newBrowser(t, s, true)
	client := "https://client.example/sso"
	before := ssoCounts(t, te.dbURL)
	token := b.finish(b.startLogin("/_matrix/client/v3/login/sso/redirect/"+testIdP+"?redirectUrl="+url.QueryEscape(client), "bob"), client+"?")
	if got := loginWithToken(t, s, token).UserID; got != "@bob:spelt.test" {
		t.Fatalf("the provider's bob logs in as %s, want the existing @bob:spelt.test", got)
	}
	if got := ssoCounts(t, te.dbURL); got[0] != before[0] || got[1] != before[1]+1 {
		t.Fatalf("accounts and links: %v, then %v (want no new account, one new link)", before, got)
	}
	// The link stays, and the password still works.
	token = b.finish(b.startLogin("/_matrix/client/v3/login/sso/redirect/"+testIdP+"?redirectUrl="+url.QueryEscape(client), "bob"), client+"?")
	if got := loginWithToken(t, s, token).UserID; got != "@bob:spelt.test" {
		t.Fatalf("second login as %s", got)
	}
	if _, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Password: "pw",
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "bob"}}); err != nil {
		t.Fatalf("password login after linking: %v", err)
	}
	// A username without an account still gets a new one.
	token = b.finish(b.startLogin("/_matrix/client/v3/login/sso/redirect/"+testIdP+"?redirectUrl="+url.QueryEscape(client), "alice"), client+"?")
	if got := loginWithToken(t, s, token).UserID; got != "@alice:spelt.test" {
		t.Fatalf("new user logs in as %s", got)
	}
}

func TestSSORefusals(t *testing.T) {
	t.Parallel()
	op := startOP(t)
	te := newTestEnv(t, withSSO(op, true))
	s := te.start()
	b := newBrowser(t, s, true)
	redirect := "/_matrix/client/v3/login/sso/redirect/" + testIdP + "?redirectUrl=" + url.QueryEscape("https://client.example/")

	// Each ID token is rewritten (and re-signed with a key the provider lists) in one
	// way that must make Spelt refuse it; none creates an account, a link or a token.
	tampers := map[string]func(c map[string]any) bool{
		"wrong nonce":    func(c map[string]any) bool { c["nonce"] = "not-the-logins-nonce"; return false },
		"other issuer":   func(c map[string]any) bool { c["iss"] = "https://evil.example"; return false },
		"other audience": func(c map[string]any) bool { c["aud"] = []string{"another-client"}; return false },
		"expired":        func(c map[string]any) bool { c["exp"] = time.Now().Add(-time.Hour).Unix(); return false },
		"unknown key":    func(c map[string]any) bool { return true },
		"no nonce":       func(c map[string]any) bool { delete(c, "nonce"); return false },
	}
	before := ssoCounts(t, te.dbURL)
	for name, tamper := range tampers {
		callback := b.startLogin(redirect, "dave")
		op.tamperNext(tamper)
		p := b.get(callback)
		if p.status != http.StatusForbidden || p.json(t)["errcode"] != "M_FORBIDDEN" {
			t.Errorf("%s: %d %s", name, p.status, p.body)
		}
		if got := ssoCounts(t, te.dbURL); got != before {
			t.Errorf("%s: the write model changed: %v, then %v", name, before, got)
		}
	}
	// Control: the same rewrite without a change is accepted.
	callback := b.startLogin(redirect, "dave")
	op.tamperNext(func(map[string]any) bool { return false })
	if got := loginWithToken(t, s, b.finish(callback, "https://client.example/")).UserID; got != "@dave:spelt.test" {
		t.Errorf("re-signed but unchanged token: %s", got)
	}

	// The provider's own refusal.
	p := b.get(spelt + redirect)
	state := mustQuery(t, p.location).Get("state")
	if p := b.get(testCallbackURL + "?error=access_denied&state=" + url.QueryEscape(state)); p.status != http.StatusForbidden ||
		!strings.Contains(p.json(t)["error"].(string), "access_denied") {
		t.Errorf("provider refusal: %d %s", p.status, p.body)
	}
	// A code from another login (here: another browser's) does not finish this one:
	// the PKCE verifier and the nonce are the login's.
	other := newBrowser(t, s, true)
	otherCallback := other.startLogin(redirect, "alice")
	p = b.get(spelt + redirect)
	mine := mustQuery(t, p.location).Get("state")
	stolen := mustQuery(t, otherCallback).Get("code")
	if p := b.get(testCallbackURL + "?state=" + url.QueryEscape(mine) + "&code=" + url.QueryEscape(stolen)); p.status != http.StatusForbidden {
		t.Errorf("code of another login: %d %s", p.status, p.body)
	}

	// Parameter errors of the redirect endpoints.
	for _, tt := range []struct {
		path   string
		status int
		code   string
	}{
		{"/_matrix/client/v3/login/sso/redirect", 400, "M_MISSING_PARAM"},
		{"/_matrix/client/v3/login/sso/redirect/" + testIdP, 400, "M_MISSING_PARAM"},
		{"/_matrix/client/v3/login/sso/redirect/nope?redirectUrl=https://client.example/", 404, "M_NOT_FOUND"},
		{"/_matrix/client/v3/login/sso/redirect/" + testIdP + "?redirectUrl=" + url.QueryEscape("javascript:alert(1)"), 400, "M_INVALID_PARAM"},
		{"/_matrix/client/v3/login/sso/redirect/" + testIdP + "?redirectUrl=relative/path", 400, "M_INVALID_PARAM"},
	} {
		p := b.get(spelt + tt.path)
		if p.status != tt.status || p.json(t)["errcode"] != tt.code {
			t.Errorf("GET %s: %d %s, want %d %s", tt.path, p.status, p.body, tt.status, tt.code)
		}
	}
}

func mustQuery(t *testing.T, rawURL string) url.Values {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestSSOAcrossProcesses starts a login on one server and finishes it on another
// (a second process on the same database), and after a restart.
func TestSSOAcrossProcesses(t *testing.T) {
	t.Parallel()
	op := startOP(t)
	te := newTestEnv(t, withSSO(op, true))
	a := te.start()
	second := te.start()
	b := newBrowser(t, a, true)
	redirect := "/_matrix/client/v3/login/sso/redirect/" + testIdP + "?redirectUrl=" + url.QueryEscape("https://client.example/")

	callback := b.startLogin(redirect, "alice")
	b.use(second)
	if got := loginWithToken(t, second, b.finish(callback, "https://client.example/")).UserID; got != "@alice:spelt.test" {
		t.Fatalf("finished on a second process as %s", got)
	}
	b.use(a)
	callback = b.startLogin(redirect, "alice")
	a.stop()
	second.stop()
	restarted := te.start()
	b.use(restarted)
	if got := loginWithToken(t, restarted, b.finish(callback, "https://client.example/")).UserID; got != "@alice:spelt.test" {
		t.Fatalf("finished after a restart as %s", got)
	}
}

// TestSSOUserInteractiveAuth: an account made by SSO confirms operations with
// m.login.sso through the fallback page.
func TestSSOUserInteractiveAuth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	op := startOP(t)
	te := newTestEnv(t, withSSO(op, true))
	s := te.start()
	b := newBrowser(t, s, true)
	redirect := "/_matrix/client/v3/login/sso/redirect/" + testIdP + "?redirectUrl=" + url.QueryEscape("https://client.example/")
	first := loginWithToken(t, s, b.finish(b.startLogin(redirect, "alice"), "https://client.example/"))
	second := loginWithToken(t, s, b.finish(b.startLogin(redirect, "alice"), "https://client.example/"))
	// bob has an SSO account too, for the wrong-identity case.
	loginWithToken(t, s, b.finish(b.startLogin(redirect, "bob"), "https://client.example/"))

	// The account has no password: m.login.sso is its only flow.
	status, _, body := s.raw("POST", "/_matrix/client/v3/delete_devices", first.AccessToken,
		mustJSON(t, map[string]any{"devices": []string{second.DeviceID.String()}}))
	session, _ := body["session"].(string)
	flows, _ := json.Marshal(body["flows"])
	if status != 401 || session == "" || string(flows) != `[{"stages":["m.login.sso"]}]` {
		t.Fatalf("delete_devices without auth: %d %v", status, body)
	}
	fallback := spelt + "/_matrix/client/v3/auth/m.login.sso/fallback/web?session=" + url.QueryEscape(session)

	// Resubmitting before the fallback is done is still a challenge.
	status, _, body = s.raw("POST", "/_matrix/client/v3/delete_devices", first.AccessToken,
		mustJSON(t, map[string]any{"devices": []string{second.DeviceID.String()}, "auth": map[string]any{"session": session}}))
	if status != 401 || body["session"] != session {
		t.Fatalf("resubmitted too early: %d %v", status, body)
	}

	// The fallback page says what is being confirmed and links to the provider.
	p := b.get(fallback)
	if p.status != 200 || !strings.Contains(p.body, "Continue with "+testIdPName) || p.header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("fallback page: %d %s", p.status, p.body)
	}
	link := fallback + "&idp=" + testIdP
	if !strings.Contains(p.body, "web?session="+url.QueryEscape(session)+"&amp;idp="+testIdP) {
		t.Fatalf("fallback page lacks the provider's link: %s", p.body)
	}

	// Another identity (bob's) does not complete alice's session.
	p = b.get(link)
	if p.status != http.StatusFound {
		t.Fatalf("fallback redirect: %d %s", p.status, p.body)
	}
	if p := b.get(b.atProvider(p.location, "bob")); p.status != http.StatusForbidden {
		t.Fatalf("bob completing alice's session: %d %s", p.status, p.body)
	}

	// alice's identity does: the completion page, then the session alone authorises.
	p = b.get(link)
	p = b.get(b.atProvider(p.location, "alice"))
	if p.status != 200 || !strings.Contains(p.body, `window.opener.postMessage("authDone", "*")`) {
		t.Fatalf("fallback completion: %d %s", p.status, p.body)
	}
	status, _, body = s.raw("POST", "/_matrix/client/v3/delete_devices", first.AccessToken,
		mustJSON(t, map[string]any{"devices": []string{second.DeviceID.String()}, "auth": map[string]any{"session": session}}))
	if status != 200 {
		t.Fatalf("delete_devices after the fallback: %d %v", status, body)
	}
	if _, err := s.client("", second.AccessToken).Whoami(ctx); err == nil {
		t.Fatal("the deleted device still works")
	}
	// The session authorised one operation.
	status, _, body = s.raw("POST", "/_matrix/client/v3/delete_devices", first.AccessToken,
		mustJSON(t, map[string]any{"devices": []string{"OTHER"}, "auth": map[string]any{"session": session}}))
	wantError(t, "reused session", status, body, 400, "M_UNKNOWN")
	if p := b.get(link); p.status != http.StatusBadRequest {
		t.Fatalf("fallback of a used session: %d %s", p.status, p.body)
	}

	// Setting a password through m.login.sso (with "type" given, as some clients do)
	// adds m.login.password to the account's flows.
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/password", first.AccessToken, mustJSON(t, map[string]any{"new_password": "pw"}))
	session, _ = body["session"].(string)
	if status != 401 {
		t.Fatalf("password change: %d %v", status, body)
	}
	p = b.get(spelt + "/_matrix/client/v3/auth/m.login.sso/fallback/web?session=" + url.QueryEscape(session) + "&idp=" + testIdP)
	if p := b.get(b.atProvider(p.location, "alice")); p.status != 200 {
		t.Fatalf("fallback completion: %d %s", p.status, p.body)
	}
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/password", first.AccessToken,
		mustJSON(t, map[string]any{"new_password": "pw", "logout_devices": false, "auth": map[string]any{"type": "m.login.sso", "session": session}}))
	if status != 200 {
		t.Fatalf("password change after the fallback: %d %v", status, body)
	}
	status, _, body = s.raw("POST", "/_matrix/client/v1/login/get_token", first.AccessToken, []byte(`{}`))
	flows, _ = json.Marshal(body["flows"])
	if status != 401 || string(flows) != `[{"stages":["m.login.password"]},{"stages":["m.login.sso"]}]` {
		t.Fatalf("flows with a password: %d %s", status, flows)
	}
	if _, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "alice"}, Password: "pw"}); err != nil {
		t.Fatalf("password login: %v", err)
	}

	// The write model of logins, links and sessions is rebuilt identically from the log.
	s.stop()
	before := dumpState(t, ctx, te.dbURL)
	if !strings.Contains(before, "(zitadel,sub-alice,@alice:spelt.test)") {
		t.Fatalf("dump lacks alice's link:\n%s", before)
	}
	if code, stdout, stderr := te.cli(ctx, "replay"); code != 0 {
		t.Fatalf("replay: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if after := dumpState(t, ctx, te.dbURL); after != before {
		t.Fatalf("models differ after replay\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestSSONotConfigured: without providers, the SSO endpoints are not there.
func TestSSONotConfigured(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t, nil).start()
	status, _, body := s.raw("GET", "/_matrix/client/v3/login", "", nil)
	if flows, _ := json.Marshal(body["flows"]); status != 200 || bytes.Contains(flows, []byte("m.login.sso")) {
		t.Fatalf("GET /login: %d %s", status, flows)
	}
	// Not checked against the spec: a 404 M_UNRECOGNIZED is what the spec's common
	// error codes prescribe for an endpoint a server does not implement, which the
	// endpoint's own definition does not list.
	b := newBrowser(t, s, false)
	for _, path := range []string{
		"/_matrix/client/v3/login/sso/redirect?redirectUrl=https://client.example/",
		"/_matrix/client/v3/login/sso/redirect/x?redirectUrl=https://client.example/",
		"/_synapse/client/oidc/callback?state=x&code=y",
		"/_matrix/client/v3/auth/m.login.sso/fallback/web?session=x",
	} {
		p := b.get(spelt + path)
		if p.status != 404 || p.json(t)["errcode"] != "M_UNRECOGNIZED" {
			t.Errorf("GET %s: %d %s", path, p.status, p.body)
		}
	}
}

// TestSSOPrivateAddressRefused: without [sso] allow_private_addresses, Spelt does not
// connect to a provider on loopback.
func TestSSOPrivateAddressRefused(t *testing.T) {
	t.Parallel()
	op := startOP(t)
	s := newTestEnv(t, withSSO(op, false)).start()
	b := newBrowser(t, s, false) // 502 is not in the endpoint's definition
	p := b.get(spelt + "/_matrix/client/v3/login/sso/redirect?redirectUrl=https://client.example/")
	if p.status != http.StatusBadGateway || p.json(t)["errcode"] != "M_UNKNOWN" {
		t.Fatalf("redirect to a loopback provider: %d %s", p.status, p.body)
	}
	if n := op.hits.Load(); n != 0 {
		t.Fatalf("the provider got %d requests", n)
	}
}

// TestSSOChooser: with several providers, the generic redirect shows a page to choose
// one (the spec allows it; its OpenAPI lists only the redirect, so the page is not
// checked against it).
func TestSSOChooser(t *testing.T) {
	t.Parallel()
	op := startOP(t)
	s := newTestEnv(t, func(c *config.Config) {
		withSSO(op, true)(c)
		second := c.SSO.Providers[0]
		second.ID, second.Name = "other.idp", "Other <IdP>"
		c.SSO.Providers = append(c.SSO.Providers, second)
	}).start()
	b := newBrowser(t, s, false)
	client := url.QueryEscape("https://client.example/?a=b")
	p := b.get(spelt + "/_matrix/client/v3/login/sso/redirect?redirectUrl=" + client)
	if p.status != 200 || !strings.Contains(p.body, "Other &lt;IdP&gt;") ||
		!strings.Contains(p.body, `href="redirect/zitadel?redirectUrl=`+client+`"`) ||
		!strings.Contains(p.body, `href="redirect/other.idp?redirectUrl=`+client+`"`) {
		t.Fatalf("chooser: %d %s", p.status, p.body)
	}
	p = b.get(spelt + "/_matrix/client/v3/login/sso/redirect/other.idp?redirectUrl=" + client)
	if p.status != http.StatusFound || !strings.HasPrefix(p.location, op.srv.URL+"/auth?") {
		t.Fatalf("redirect to the second provider: %d %q", p.status, p.location)
	}
	if got := loginWithToken(t, s, b.finish(b.atProvider(p.location, "alice"), "https://client.example/?a=b&")).UserID; got != "@alice:spelt.test" {
		t.Fatalf("login through the second provider: %s", got)
	}
}
