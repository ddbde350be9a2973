package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/synapseadmin"

	"spelt.dev/spelt/internal/config"
)

// TestForwardedForIgnored: a client cannot escape rate limits by naming another
// address in X-Forwarded-For.
func TestForwardedForIgnored(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t, func(c *config.Config) {
		c.RateLimits.Enabled = true
		c.RateLimits.LoginBurst = 2
		c.RateLimits.LoginPerSecond = 0.01
	}).start()
	limited := 0
	for i := range 6 {
		req, _ := http.NewRequest("POST", s.baseURL+"/_matrix/client/v3/login", bytes.NewReader(
			[]byte(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"x"},"password":"y"}`)))
		req.Header.Set("X-Forwarded-For", "10.0.0."+string(rune('1'+i)))
		req.Header.Set("X-Real-IP", "10.0.1."+string(rune('1'+i)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 429 {
			limited++
		}
	}
	if limited != 4 {
		t.Errorf("%d of 6 logins limited with varying X-Forwarded-For, want 4", limited)
	}
}

// TestNULRefused: PostgreSQL text holds no NUL, so requests with one are refused up
// front instead of accepted and lost, or failing with a 500.
func TestNULRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	reg := s.register(ctx, "nul", "pw")
	status, _, body := s.raw("POST", "/_matrix/client/v3/login", "", []byte(
		`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"nul"},"password":"pw","initial_device_display_name":"a\u0000b"}`))
	wantError(t, "NUL in a display name", status, body, 400, "M_BAD_JSON")
	status, _, body = s.raw("PUT", "/_matrix/client/v3/devices/"+string(reg.DeviceID), reg.AccessToken, []byte(`{"display_name":"x\u0000"}`))
	wantError(t, "NUL in a device rename", status, body, 400, "M_BAD_JSON")
	status, _, body = s.raw("GET", "/_matrix/client/v3/devices/%00", reg.AccessToken, nil)
	wantError(t, "NUL in a path", status, body, 400, "M_INVALID_PARAM")
	status, _, body = s.raw("GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=a%00", "", nil)
	wantError(t, "NUL in a query", status, body, 400, "M_INVALID_PARAM")
}

// TestLoginToExistingDeviceRevokesItsTokens: spec, "Relationship between access tokens
// and devices": logging in with a device ID invalidates that device's earlier tokens.
func TestLoginToExistingDeviceRevokesItsTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	s.register(ctx, "dev", "pw")
	login := func() map[string]any {
		status, _, body := s.raw("POST", "/_matrix/client/v3/login", "", []byte(
			`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"dev"},"password":"pw","device_id":"SAME","refresh_token":true,"initial_device_display_name":"kept"}`))
		if status != 200 {
			t.Fatalf("login: %d %v", status, body)
		}
		return body
	}
	first := login()
	second := login()
	status, _, body := s.raw("GET", "/_matrix/client/v3/account/whoami", first["access_token"].(string), nil)
	wantError(t, "the device's earlier access token", status, body, 401, "M_UNKNOWN_TOKEN")
	status, _, body = s.raw("POST", "/_matrix/client/v3/refresh", "", mustJSON(t, map[string]any{"refresh_token": first["refresh_token"]}))
	wantError(t, "the device's earlier refresh token", status, body, 401, "M_UNKNOWN_TOKEN")
	c := s.client("", second["access_token"].(string))
	info, err := c.GetDeviceInfo(ctx, "SAME")
	if err != nil || info.DisplayName != "kept" {
		t.Fatalf("the device stays: %+v %v", info, err)
	}
}

func TestRegistrationTokenExpiryBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	sa := &synapseadmin.Client{Client: s.client("", "")}
	admin, err := sa.SharedSecretRegister(ctx, "s3cret", synapseadmin.ReqSharedSecretRegister{Username: "adm", Password: "pw", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"expiry_time":999999999999999999}`, `{"expiry_time":1}`} {
		status, _, resp := s.raw("POST", "/_synapse/admin/v1/registration_tokens/new", admin.AccessToken, []byte(body))
		wantError(t, body, status, resp, 400, "M_INVALID_PARAM")
	}
	ok := time.Now().Add(time.Hour).UnixMilli()
	status, _, resp := s.raw("POST", "/_synapse/admin/v1/registration_tokens/new", admin.AccessToken, mustJSON(t, map[string]any{"token": "t1", "expiry_time": ok}))
	if status != 200 {
		t.Fatalf("create: %d %v", status, resp)
	}
	status, _, resp = s.raw("PUT", "/_synapse/admin/v1/registration_tokens/t1", admin.AccessToken, []byte(`{"expiry_time":999999999999999999}`))
	wantError(t, "update far expiry", status, resp, 400, "M_INVALID_PARAM")
}

// TestRegistrationSessionsCostNothingUntilUsed: anyone may start registrations, so a
// session is written to the log only when its first stage completes; its ID proves
// itself meanwhile, to any process of the server.
func TestRegistrationSessionsCostNothingUntilUsed(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil)
	a, b := te.start(), te.start()
	before := a.eventCount()
	var session string
	for range 20 {
		status, _, body := a.raw("POST", "/_matrix/client/v3/register", "", []byte(`{"username":"lazy","password":"pw"}`))
		session, _ = body["session"].(string)
		if status != 401 || session == "" {
			t.Fatalf("first stage: %d %v", status, body)
		}
	}
	if after := a.eventCount(); after != before {
		t.Errorf("20 unanswered registration challenges appended %d events", after-before)
	}
	for name, forged := range map[string]string{
		"made up":       "abc.def.ghi",
		"tampered time": strings.Replace(session, ".", ".z", 1),
	} {
		status, _, body := a.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, map[string]any{
			"username": "lazy", "password": "pw", "auth": map[string]any{"type": "m.login.dummy", "session": forged}}))
		wantError(t, name, status, body, 400, "M_UNKNOWN")
	}
	// Another process accepts the session.
	status, _, body := b.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, map[string]any{
		"username": "lazy", "password": "pw", "auth": map[string]any{"type": "m.login.dummy", "session": session}}))
	if status != 200 || body["user_id"] != "@lazy:spelt.test" {
		t.Fatalf("completing on the other process: %d %v", status, body)
	}
	// And it is single use.
	status, _, body = a.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, map[string]any{
		"username": "lazy2", "password": "pw", "auth": map[string]any{"type": "m.login.dummy", "session": session}}))
	wantError(t, "reused session", status, body, 400, "M_UNKNOWN")
}
