package main

import (
	"context"
	"testing"
	"time"

	"spelt.dev/spelt/internal/config"
)

func TestRefreshTokensAndSoftLogout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, func(c *config.Config) {
		c.Auth.RefreshableAccessTokenLifetime = config.Duration{Duration: 2 * time.Second}
	}).start()
	status, _, body := s.raw("POST", "/_matrix/client/v3/register", "", []byte(`{"username":"rita","password":"pw"}`))
	session, _ := body["session"].(string)
	status, _, body = s.raw("POST", "/_matrix/client/v3/register", "", mustJSON(t, map[string]any{
		"username": "rita", "password": "pw", "refresh_token": true, "auth": map[string]any{"type": "m.login.dummy", "session": session}}))
	if status != 200 || body["refresh_token"] == nil || body["expires_in_ms"] != float64(2000) {
		t.Fatalf("register with refresh_token: %d %v", status, body)
	}
	_ = ctx

	status, _, body = s.raw("POST", "/_matrix/client/v3/login", "", []byte(
		`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"rita"},"password":"pw","refresh_token":true}`))
	at1, _ := body["access_token"].(string)
	rt1, _ := body["refresh_token"].(string)
	if status != 200 || at1 == "" || rt1 == "" || body["expires_in_ms"] != float64(2000) {
		t.Fatalf("login with refresh_token: %d %v", status, body)
	}
	// Without refresh_token, no refresh token and no expiry (access_token_lifetime is 0).
	status, _, body = s.raw("POST", "/_matrix/client/v3/login", "", []byte(
		`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"rita"},"password":"pw"}`))
	if status != 200 || body["refresh_token"] != nil || body["expires_in_ms"] != nil {
		t.Fatalf("login without refresh_token: %d %v", status, body)
	}

	refresh := func(rt string) (int, map[string]any) {
		status, _, body := s.raw("POST", "/_matrix/client/v3/refresh", "", mustJSON(t, map[string]string{"refresh_token": rt}))
		return status, body
	}
	status, body = refresh(rt1)
	at2, _ := body["access_token"].(string)
	rt2, _ := body["refresh_token"].(string)
	if status != 200 || at2 == "" || rt2 == "" || rt2 == rt1 {
		t.Fatalf("refresh: %d %v", status, body)
	}
	// The access token that came with the used refresh token is spent.
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami", at1, nil)
	wantError(t, "access token of a used refresh token", status, body, 401, "M_UNKNOWN_TOKEN")
	// A client that lost the answer refreshes again with the same token (spec: the old
	// refresh token stays valid until the new one is used); the pair it got first is
	// replaced.
	status, body = refresh(rt1)
	at2b, _ := body["access_token"].(string)
	rt2b, _ := body["refresh_token"].(string)
	if status != 200 || at2b == "" || rt2b == rt2 {
		t.Fatalf("refresh again with the same token: %d %v", status, body)
	}
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami", at2, nil)
	wantError(t, "the replaced access token", status, body, 401, "M_UNKNOWN_TOKEN")
	status, body = refresh(rt2)
	wantError(t, "the replaced refresh token", status, body, 401, "M_UNKNOWN_TOKEN")
	// Using the new refresh token retires the old one.
	status, body = refresh(rt2b)
	at2, _ = body["access_token"].(string)
	rt2, _ = body["refresh_token"].(string)
	if status != 200 || at2 == "" {
		t.Fatalf("refresh with the successor: %d %v", status, body)
	}
	status, body = refresh(rt1)
	wantError(t, "refresh token whose successor was used", status, body, 401, "M_UNKNOWN_TOKEN")
	// Using the new access token retires the refresh token it came from, too.
	status, body = refresh(rt2)
	at3, _ := body["access_token"].(string)
	rt3, _ := body["refresh_token"].(string)
	if status != 200 || at3 == "" || rt3 == "" {
		t.Fatalf("refresh: %d %v", status, body)
	}
	if status, _, body := s.raw("GET", "/_matrix/client/v3/account/whoami", at3, nil); status != 200 {
		t.Fatalf("new access token: %d %v", status, body)
	}
	status, body = refresh(rt2)
	wantError(t, "refresh token whose new access token was used", status, body, 401, "M_UNKNOWN_TOKEN")
	at2, rt2 = at3, rt3
	status, body = refresh("spr_bogus")
	wantError(t, "unknown refresh token", status, body, 401, "M_UNKNOWN_TOKEN")
	status, _, body = s.raw("POST", "/_matrix/client/v3/refresh", "", []byte(`{}`))
	wantError(t, "refresh without a token", status, body, 400, "M_MISSING_PARAM")
	if status, _, body := s.raw("GET", "/_matrix/client/v3/account/whoami", at2, nil); status != 200 || body["user_id"] != "@rita:spelt.test" {
		t.Fatalf("new access token: %d %v", status, body)
	}

	// When the access token expires the client is soft-logged-out: it may refresh.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami", at2, nil)
		if status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("access token never expired")
		}
		time.Sleep(100 * time.Millisecond) // real time must pass for the token to expire
	}
	if body["errcode"] != "M_UNKNOWN_TOKEN" || body["soft_logout"] != true {
		t.Fatalf("expired token: %v", body)
	}
	status, body = refresh(rt2)
	at3, _ = body["access_token"].(string)
	if status != 200 {
		t.Fatalf("refresh after expiry: %d %v", status, body)
	}
	if status, _, body := s.raw("GET", "/_matrix/client/v3/account/whoami", at3, nil); status != 200 {
		t.Fatalf("token after refresh: %d %v", status, body)
	}
}
