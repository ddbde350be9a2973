package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/synapseadmin"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/config"
)

func TestDiscovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()

	v, err := s.client("", "").Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Contains(mautrix.SpecV113) || !v.Contains(mautrix.SpecV11) {
		t.Errorf("versions %v lack v1.1 or v1.13", v.Versions)
	}

	status, hdr, body := s.raw("GET", "/.well-known/matrix/client", "", nil)
	hs, _ := body["m.homeserver"].(map[string]any)
	if status != 200 || hs["base_url"] != "http://spelt.test:8008/" {
		t.Errorf("well-known client: %d %v", status, body)
	}
	if hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("no CORS header on %v", hdr)
	}
	status, _, body = s.raw("GET", "/.well-known/matrix/support", "", nil)
	wantError(t, "support without contacts", status, body, 404, "M_NOT_FOUND")

	// Pre-flight requests get the CORS headers on any path.
	status, hdr, _ = s.raw("OPTIONS", "/_matrix/client/v3/login", "", nil)
	if status != 204 || !strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "PUT") {
		t.Errorf("OPTIONS: %d %v", status, hdr)
	}
	status, _, body = s.raw("GET", "/_matrix/client/v3/no/such/endpoint", "", nil)
	wantError(t, "unknown endpoint", status, body, 404, "M_UNRECOGNIZED")
	status, _, body = s.raw("DELETE", "/_matrix/client/versions", "", nil)
	wantError(t, "wrong method", status, body, 405, "M_UNRECOGNIZED")
}

func TestSupportWellKnown(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t, func(c *config.Config) {
		c.Support.AdminMatrixID = "@admin:spelt.test"
		c.Support.Page = "https://spelt.test/help"
	}).start()
	status, _, body := s.raw("GET", "/.well-known/matrix/support", "", nil)
	contacts, _ := body["contacts"].([]any)
	if status != 200 || body["support_page"] != "https://spelt.test/help" || len(contacts) != 1 {
		t.Fatalf("support: %d %v", status, body)
	}
	c := contacts[0].(map[string]any)
	if c["role"] != "m.role.admin" || c["matrix_id"] != "@admin:spelt.test" {
		t.Errorf("contact %v", c)
	}
}

func TestRegisterLoginWhoamiLogout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()

	avail, err := s.client("", "").RegisterAvailable(ctx, "alice")
	if err != nil || !avail.Available {
		t.Fatalf("alice available: %v %v", avail, err)
	}
	reg, err := s.client("", "").RegisterDummy(ctx, &mautrix.ReqRegister[any]{
		Username: "alice", Password: "correct horse", InitialDeviceDisplayName: "phone",
	})
	if err != nil {
		t.Fatal(err)
	}
	if reg.UserID != "@alice:spelt.test" || reg.AccessToken == "" || reg.DeviceID == "" {
		t.Fatalf("register: %+v", reg)
	}
	// The token works at once: the response waited for the read model.
	who, err := s.client("", reg.AccessToken).Whoami(ctx)
	if err != nil || who.UserID != reg.UserID || who.DeviceID != reg.DeviceID {
		t.Fatalf("whoami after register: %+v %v", who, err)
	}
	_, err = s.client("", "").RegisterAvailable(ctx, "alice")
	if he := httpError(t, err); he.RespError.ErrCode != "M_USER_IN_USE" || he.Response.StatusCode != 400 {
		t.Errorf("alice after registration: %v", err)
	}

	// Log in twice: by localpart and by full user ID; each login is its own device.
	login := func(user, deviceID string) *mautrix.RespLogin {
		t.Helper()
		resp, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{
			Type:       mautrix.AuthTypePassword,
			Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: user},
			Password:   "correct horse", DeviceID: mautrixDevice(deviceID),
		})
		if err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
		return resp
	}
	l1 := login("alice", "")
	l2 := login("@alice:spelt.test", "MYDEVICE")
	if l1.UserID != reg.UserID || l2.DeviceID != "MYDEVICE" || l1.DeviceID == reg.DeviceID || l1.AccessToken == l2.AccessToken {
		t.Fatalf("logins: %+v %+v", l1, l2)
	}
	if l1.WellKnown == nil || l1.WellKnown.Homeserver.BaseURL != "http://spelt.test:8008/" {
		t.Errorf("login well_known: %+v", l1.WellKnown)
	}

	// Logout ends that device's token only.
	c1 := s.client(string(reg.UserID), l1.AccessToken)
	if _, err := c1.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c1.Whoami(ctx)
	if he := httpError(t, err); he.RespError.ErrCode != "M_UNKNOWN_TOKEN" || he.Response.StatusCode != 401 {
		t.Errorf("whoami after logout: %v", err)
	}
	if who, err := s.client("", l2.AccessToken).Whoami(ctx); err != nil || who.DeviceID != "MYDEVICE" {
		t.Fatalf("other device after logout: %+v %v", who, err)
	}
	// Logout all ends every token.
	if _, err := s.client("", l2.AccessToken).LogoutAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{reg.AccessToken, l2.AccessToken} {
		status, _, body := s.raw("GET", "/_matrix/client/v3/account/whoami", tok, nil)
		wantError(t, "whoami after logout/all", status, body, 401, "M_UNKNOWN_TOKEN")
		if body["soft_logout"] != false {
			t.Errorf("soft_logout = %v, want false", body["soft_logout"])
		}
	}
	// The password still works.
	login("alice", "")
}

func mautrixDevice(s string) id.DeviceID { return id.DeviceID(s) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t, nil).start()
	status, _, body := s.raw("GET", "/_matrix/client/v3/account/whoami", "", nil)
	wantError(t, "no token", status, body, 401, "M_MISSING_TOKEN")
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami", "spt_nonsense", nil)
	wantError(t, "unknown token", status, body, 401, "M_UNKNOWN_TOKEN")
	status, _, body = s.raw("POST", "/_matrix/client/v3/logout", "spt_nonsense", nil)
	wantError(t, "logout with unknown token", status, body, 401, "M_UNKNOWN_TOKEN")
	// The deprecated query parameter works too.
	reg := s.register(context.Background(), "qp", "pw")
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami?access_token="+reg.AccessToken, "", nil)
	if status != 200 || body["user_id"] != "@qp:spelt.test" || body["is_guest"] != false {
		t.Errorf("whoami with access_token parameter: %d %v", status, body)
	}
}

func TestRegisterErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, func(c *config.Config) { c.HTTP.MaxBodyBytes = 2048 }).start()
	s.register(ctx, "taken", "pw")

	cases := []struct {
		name       string
		path, body string
		status     int
		code       string
	}{
		{"upper case", "/_matrix/client/v3/register", `{"username":"Bob","password":"x"}`, 400, "M_INVALID_USERNAME"},
		{"bad character", "/_matrix/client/v3/register", `{"username":"b b","password":"x"}`, 400, "M_INVALID_USERNAME"},
		{"numeric", "/_matrix/client/v3/register", `{"username":"12345","password":"x"}`, 400, "M_INVALID_USERNAME"},
		{"too long", "/_matrix/client/v3/register", `{"username":"` + strings.Repeat("a", 250) + `","password":"x"}`, 400, "M_INVALID_USERNAME"},
		{"taken", "/_matrix/client/v3/register", `{"username":"taken","password":"x"}`, 400, "M_USER_IN_USE"},
		{"unknown session", "/_matrix/client/v3/register", `{"username":"new1","password":"x","auth":{"type":"m.login.dummy","session":"nope"}}`, 400, "M_UNKNOWN"},
		{"guest", "/_matrix/client/v3/register?kind=guest", `{}`, 403, "M_GUEST_ACCESS_FORBIDDEN"},
		{"bad kind", "/_matrix/client/v3/register?kind=admin", `{}`, 400, "M_INVALID_PARAM"},
		{"not json", "/_matrix/client/v3/register", `{"username":`, 400, "M_NOT_JSON"},
		{"wrong type", "/_matrix/client/v3/register", `{"username":42}`, 400, "M_BAD_JSON"},
		{"array", "/_matrix/client/v3/register", `[]`, 400, "M_BAD_JSON"},
		{"too large", "/_matrix/client/v3/register", `{"username":"` + strings.Repeat("a", 4000) + `"}`, 413, "M_TOO_LARGE"},
		{"available invalid", "/_matrix/client/v3/register/available?username=A", "", 400, "M_INVALID_USERNAME"},
		{"available missing", "/_matrix/client/v3/register/available", "", 400, "M_MISSING_PARAM"},
	}
	for _, tc := range cases {
		method := "POST"
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		} else {
			method = "GET"
		}
		status, _, resp := s.raw(method, tc.path, "", body)
		wantError(t, tc.name, status, resp, tc.status, tc.code)
	}

	// A stage that is not the flow's answers 401 with the flows again.
	status, _, resp := s.raw("POST", "/_matrix/client/v3/register", "", []byte(`{"username":"new2","password":"x"}`))
	session, _ := resp["session"].(string)
	if status != 401 || session == "" || resp["flows"] == nil {
		t.Fatalf("first stage: %d %v", status, resp)
	}
	status, _, resp = s.raw("POST", "/_matrix/client/v3/register", "",
		[]byte(`{"username":"new2","password":"x","auth":{"type":"m.login.registration_token","session":"`+session+`","token":"x"}}`))
	if status != 401 || resp["errcode"] == nil || resp["session"] != session {
		t.Errorf("wrong stage: %d %v", status, resp)
	}
	// Nothing was registered by all that.
	for _, u := range []string{"new1", "new2", "bob"} {
		if a, err := s.client("", "").RegisterAvailable(ctx, u); err != nil || !a.Available {
			t.Errorf("%s should still be available: %v", u, err)
		}
	}
}

func TestRegistrationDisabled(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t, func(c *config.Config) { c.Registration.Enabled = false }).start()
	status, _, body := s.raw("POST", "/_matrix/client/v3/register", "", []byte(`{"username":"x","password":"y"}`))
	wantError(t, "register when disabled", status, body, 403, "M_FORBIDDEN")
	status, _, body = s.raw("GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=abc", "", nil)
	wantError(t, "token validity when disabled", status, body, 403, "M_FORBIDDEN")
}

func TestLoginErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	s.register(ctx, "carol", "right")

	flows, err := s.client("", "").GetLoginFlows(ctx)
	if err != nil || !flows.HasFlow(mautrix.AuthTypePassword) {
		t.Fatalf("login flows: %+v %v", flows, err)
	}
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"wrong password", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"carol"},"password":"wrong"}`, 403, "M_FORBIDDEN"},
		{"unknown user", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"nobody"},"password":"x"}`, 403, "M_FORBIDDEN"},
		{"other server", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"@carol:elsewhere"},"password":"right"}`, 403, "M_FORBIDDEN"},
		{"unknown type", `{"type":"m.login.magic","identifier":{"type":"m.id.user","user":"carol"},"password":"right"}`, 400, "M_UNKNOWN"},
		{"missing type", `{"identifier":{"type":"m.id.user","user":"carol"},"password":"right"}`, 400, "M_MISSING_PARAM"},
		{"missing password", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"carol"}}`, 400, "M_MISSING_PARAM"},
		{"bad json", `{"type":`, 400, "M_NOT_JSON"},
		{"wrong field type", `{"type":"m.login.password","password":7}`, 400, "M_BAD_JSON"},
	}
	for _, tc := range cases {
		status, _, body := s.raw("POST", "/_matrix/client/v3/login", "", []byte(tc.body))
		wantError(t, tc.name, status, body, tc.status, tc.code)
	}
	// The deprecated top-level user field logs in.
	status, _, body := s.raw("POST", "/_matrix/client/v3/login", "", []byte(`{"type":"m.login.password","user":"carol","password":"right"}`))
	if status != 200 || body["user_id"] != "@carol:spelt.test" {
		t.Errorf("legacy login: %d %v", status, body)
	}
}

func TestRegistrationTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, func(c *config.Config) { c.Registration.RequireToken = true }).start()
	one := int32(1)
	tok, pos, err := s.app.commands.CreateRegistrationToken(ctx, eventlog.Metadata{Origin: eventlog.OriginAdmin, Actor: "test"}, "", &one, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.app.runner.WaitFor(ctx, pos); err != nil {
		t.Fatal(err)
	}
	validity := func(token string) any {
		status, _, body := s.raw("GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token="+token, "", nil)
		if status != 200 {
			t.Fatalf("validity: %d %v", status, body)
		}
		return body["valid"]
	}
	if validity(tok) != true || validity("unknown") != false {
		t.Fatal("token validity wrong before use")
	}

	c := s.client("", "")
	req := &mautrix.ReqRegister[any]{Username: "dave", Password: "pw"}
	_, uia, err := c.Register(ctx, req)
	if uia == nil || !uia.HasSingleStageFlow(mautrix.AuthType("m.login.registration_token")) {
		t.Fatalf("flows: %+v %v", uia, err)
	}
	// A wrong token is refused and the session stays usable.
	req.Auth = map[string]any{"type": "m.login.registration_token", "token": "wrong", "session": uia.Session}
	status, _, body := s.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, req))
	if status != 401 || body["errcode"] != "M_FORBIDDEN" || body["session"] != uia.Session || body["flows"] == nil {
		t.Fatalf("wrong token: %d %v", status, body)
	}
	req.Auth = map[string]any{"type": "m.login.registration_token", "token": tok, "session": uia.Session}
	reg, _, err := c.Register(ctx, req)
	if err != nil || reg.UserID != "@dave:spelt.test" {
		t.Fatalf("register with token: %+v %v", reg, err)
	}
	// Its single use is spent.
	if validity(tok) != false {
		t.Error("token still valid after its only use")
	}
	// Dummy auth is not enough when tokens are required.
	_, err = c.RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: "eve", Password: "pw"})
	if err == nil {
		t.Error("m.login.dummy registered a user although tokens are required")
	}
}

func TestSharedSecretRegistration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, func(c *config.Config) { c.Registration.Enabled = false }).start()
	admin := synapseadmin.Client{Client: s.client("", "")}
	resp, err := admin.SharedSecretRegister(ctx, "s3cret", synapseadmin.ReqSharedSecretRegister{
		Username: "root", Password: "pw", Admin: true,
	})
	if err != nil || resp.UserID != "@root:spelt.test" || resp.AccessToken == "" {
		t.Fatalf("shared-secret register: %+v %v", resp, err)
	}
	if who, err := s.client("", resp.AccessToken).Whoami(ctx); err != nil || who.UserID != resp.UserID {
		t.Fatalf("whoami: %+v %v", who, err)
	}
	_, err = admin.SharedSecretRegister(ctx, "wrong", synapseadmin.ReqSharedSecretRegister{Username: "x", Password: "pw"})
	if he := httpError(t, err); he.Response.StatusCode != http.StatusForbidden {
		t.Errorf("bad MAC: %v", err)
	}
	_, err = admin.SharedSecretRegister(ctx, "s3cret", synapseadmin.ReqSharedSecretRegister{Username: "root", Password: "pw"})
	if he := httpError(t, err); he.RespError.ErrCode != "M_USER_IN_USE" {
		t.Errorf("taken: %v", err)
	}
	// A nonce works once.
	status, _, body := s.raw("GET", "/_synapse/admin/v1/register", "", nil)
	nonce, _ := body["nonce"].(string)
	if status != 200 || nonce == "" {
		t.Fatalf("nonce: %d %v", status, body)
	}
	req := synapseadmin.ReqSharedSecretRegister{Nonce: nonce, Username: "once", Password: "pw"}
	req.SHA1Checksum = req.Sign("s3cret")
	for i, want := range []int{200, 400} {
		status, _, body := s.raw("POST", "/_synapse/admin/v1/register", "", mustJSON(t, req))
		if status != want {
			t.Errorf("nonce use %d: %d %v", i+1, status, body)
		}
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t, func(c *config.Config) {
		c.RateLimits.Enabled = true
		c.RateLimits.LoginBurst = 2
		c.RateLimits.LoginPerSecond = 0.01
	}).start()
	body := []byte(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"x"},"password":"y"}`)
	for i := 0; i < 2; i++ {
		if status, _, b := s.raw("POST", "/_matrix/client/v3/login", "", body); status != 403 {
			t.Fatalf("login %d: %d %v", i, status, b)
		}
	}
	status, hdr, resp := s.raw("POST", "/_matrix/client/v3/login", "", body)
	wantError(t, "third login", status, resp, 429, "M_LIMIT_EXCEEDED")
	if ms, _ := resp["retry_after_ms"].(float64); ms < 1000 || hdr.Get("Retry-After") == "" {
		t.Errorf("retry_after_ms = %v, Retry-After = %q", resp["retry_after_ms"], hdr.Get("Retry-After"))
	}
}

var _ = time.Second

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{"serve", "migrate", "replay", "verify", "version"} {
		var out, errb strings.Builder
		if code := run(context.Background(), []string{sub, "--help"}, &out, &errb); code != 0 ||
			!strings.Contains(errb.String(), "Usage: spelt "+sub) || !strings.Contains(errb.String(), "-config") {
			t.Errorf("%s --help: exit %d\n%s", sub, code, errb.String())
		}
	}
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "replay") {
		t.Errorf("--help: %d %s", code, errb.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
	// A bad configuration is reported key by key, before anything starts.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("server_name = \"Not Valid!\"\n[log]\nlevel = \"loud\"\n[listen]\nclinet = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run(context.Background(), []string{"migrate", "--config", bad}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "server_name") || !strings.Contains(errb.String(), "log.level") ||
		!strings.Contains(errb.String(), "listen.clinet") {
		t.Errorf("bad config: exit %d\n%s", code, errb.String())
	}
}

func TestGuests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, func(c *config.Config) {
		c.Registration.Guests = true
		c.Registration.Enabled = false // guests do not need open registration
	}).start()
	reg, _, err := s.client("", "").RegisterGuest(ctx, &mautrix.ReqRegister[any]{InitialDeviceDisplayName: "guest phone"})
	if err != nil || reg.AccessToken == "" {
		t.Fatalf("guest registration: %+v %v", reg, err)
	}
	lp := strings.TrimPrefix(strings.TrimSuffix(string(reg.UserID), ":spelt.test"), "@")
	if strings.Trim(lp, "0123456789") != "" {
		t.Errorf("guest user ID %s is not numeric", reg.UserID)
	}
	status, _, body := s.raw("GET", "/_matrix/client/v3/account/whoami", reg.AccessToken, nil)
	if status != 200 || body["is_guest"] != true || body["user_id"] != string(reg.UserID) {
		t.Fatalf("guest whoami: %d %v", status, body)
	}
	if status, _, body := s.raw("GET", "/_matrix/client/v3/devices", reg.AccessToken, nil); status != 200 {
		t.Errorf("guest devices: %d %v", status, body)
	}
	for _, ep := range []struct{ method, path, body string }{
		{"POST", "/_matrix/client/v3/account/password", `{"new_password":"x"}`},
		{"POST", "/_matrix/client/v3/account/deactivate", `{}`},
		{"POST", "/_matrix/client/v3/delete_devices", `{"devices":[]}`},
		{"POST", "/_matrix/client/v1/login/get_token", `{}`},
		{"GET", "/_matrix/client/v3/capabilities", ``},
	} {
		var b []byte
		if ep.body != "" {
			b = []byte(ep.body)
		}
		status, _, body := s.raw(ep.method, ep.path, reg.AccessToken, b)
		wantError(t, "guest "+ep.path, status, body, 403, "M_GUEST_ACCESS_FORBIDDEN")
	}
	// Ordinary registration stays closed.
	status, _, body = s.raw("POST", "/_matrix/client/v3/register", "", []byte(`{"username":"x","password":"y"}`))
	wantError(t, "user registration", status, body, 403, "M_FORBIDDEN")
}

func TestGuestUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, func(c *config.Config) { c.Registration.Guests = true }).start()
	guest, _, err := s.client("", "").RegisterGuest(ctx, &mautrix.ReqRegister[any]{})
	if err != nil {
		t.Fatal(err)
	}
	lp := strings.TrimPrefix(strings.TrimSuffix(string(guest.UserID), ":spelt.test"), "@")
	body := map[string]any{"username": lp, "password": "now-a-user", "guest_access_token": guest.AccessToken}
	status, _, resp := s.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, body))
	session, _ := resp["session"].(string)
	if status != 401 || session == "" {
		t.Fatalf("upgrade, first stage: %d %v", status, resp)
	}
	body["auth"] = map[string]any{"type": "m.login.dummy", "session": session}
	status, _, resp = s.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, body))
	token, _ := resp["access_token"].(string)
	if status != 200 || resp["user_id"] != string(guest.UserID) || token == "" {
		t.Fatalf("upgrade: %d %v", status, resp)
	}
	status, _, resp = s.raw("GET", "/_matrix/client/v3/account/whoami", token, nil)
	if status != 200 || resp["is_guest"] != false || resp["user_id"] != string(guest.UserID) {
		t.Fatalf("whoami after upgrade: %d %v", status, resp)
	}
	// Now a user: the password logs in and non-guest endpoints open.
	if _, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Password: "now-a-user",
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: lp}}); err != nil {
		t.Fatalf("login after upgrade: %v", err)
	}
	if status, _, resp := s.raw("GET", "/_matrix/client/v3/capabilities", token, nil); status != 200 {
		t.Errorf("capabilities after upgrade: %d %v", status, resp)
	}
	// A second upgrade, a wrong username and a non-guest token are refused.
	reg := s.register(ctx, "notguest", "pw")
	for name, b := range map[string]map[string]any{
		"again":          {"username": lp, "password": "x", "guest_access_token": guest.AccessToken},
		"wrong username": {"username": "other", "password": "x", "guest_access_token": guest.AccessToken},
		"not a guest":    {"username": "notguest", "password": "x", "guest_access_token": reg.AccessToken},
	} {
		status, _, resp := s.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, b))
		if status != 400 && status != 401 {
			t.Errorf("%s: %d %v", name, status, resp)
		}
		if status == 401 && resp["session"] != nil {
			b["auth"] = map[string]any{"type": "m.login.dummy", "session": resp["session"]}
			if status, _, resp := s.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, b)); status == 200 {
				t.Errorf("%s: upgraded: %v", name, resp)
			}
		}
	}
}

func TestRegistrationTerms(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t, func(c *config.Config) {
		c.Terms = config.Terms{Name: "Terms of Service", Version: "2026-11", URL: "https://spelt.test/terms"}
	}).start()
	status, _, body := s.raw("POST", "/_matrix/client/v3/register", "", []byte(`{"username":"terry","password":"pw"}`))
	session, _ := body["session"].(string)
	flows, _ := body["flows"].([]any)
	if status != 401 || len(flows) != 1 || fmt.Sprint(flows[0].(map[string]any)["stages"]) != "[m.login.terms m.login.dummy]" {
		t.Fatalf("flows: %d %v", status, body)
	}
	params, _ := body["params"].(map[string]any)
	policy := params["m.login.terms"].(map[string]any)["policies"].(map[string]any)["terms_of_service"].(map[string]any)
	if policy["version"] != "2026-11" || policy["en"].(map[string]any)["url"] != "https://spelt.test/terms" {
		t.Fatalf("params: %v", params)
	}
	// The policy must be accepted first.
	req := func(stage string) (int, map[string]any) {
		status, _, body := s.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, map[string]any{
			"username": "terry", "password": "pw", "auth": map[string]any{"type": stage, "session": session}}))
		return status, body
	}
	if status, body := req("m.login.dummy"); status != 401 || body["errcode"] == nil {
		t.Fatalf("dummy before terms: %d %v", status, body)
	}
	if status, body := req("m.login.terms"); status != 401 || fmt.Sprint(body["completed"]) != "[m.login.terms]" {
		t.Fatalf("terms: %d %v", status, body)
	}
	if status, body := req("m.login.dummy"); status != 200 || body["user_id"] != "@terry:spelt.test" {
		t.Fatalf("dummy after terms: %d %v", status, body)
	}
	// The log records which version was accepted.
	var accepted string
	if err := s.env.pool.QueryRow(context.Background(), `SELECT payload->>'terms_version' FROM eventlog.events
		WHERE type = 'uia.stage_completed.v1' AND payload->>'stage' = 'm.login.terms'`).Scan(&accepted); err != nil || accepted != "2026-11" {
		t.Errorf("accepted terms version in the log: %q %v", accepted, err)
	}
}
