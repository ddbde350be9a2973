package main

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"
)

func TestLoginToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	reg := s.register(ctx, "tess", "pw")

	flows, err := s.client("", "").GetLoginFlows(ctx)
	if err != nil || !flows.HasFlow(mautrix.AuthTypeToken) {
		t.Fatalf("flows: %+v %v", flows, err)
	}
	caps, err := s.client("", reg.AccessToken).Capabilities(ctx)
	if err != nil || caps.GetLoginToken == nil || !caps.GetLoginToken.Enabled {
		t.Fatalf("capabilities: %+v %v", caps, err)
	}

	// get_token needs the password again.
	status, _, body := s.raw("POST", "/_matrix/client/v1/login/get_token", reg.AccessToken, []byte(`{}`))
	session, _ := body["session"].(string)
	if status != 401 || session == "" {
		t.Fatalf("get_token without auth: %d %v", status, body)
	}
	status, _, body = s.raw("POST", "/_matrix/client/v1/login/get_token", "", []byte(`{}`))
	wantError(t, "get_token without an access token", status, body, 401, "M_MISSING_TOKEN")
	status, _, body = s.raw("POST", "/_matrix/client/v1/login/get_token", reg.AccessToken,
		mustJSON(t, map[string]any{"auth": passwordAuth(session, "tess", "pw")}))
	token, _ := body["login_token"].(string)
	if status != 200 || token == "" || body["expires_in_ms"] != float64(120000) {
		t.Fatalf("get_token: %d %v", status, body)
	}

	// The token logs in a new device once.
	login, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypeToken, Token: token,
		InitialDeviceDisplayName: "second screen"})
	if err != nil || login.UserID != reg.UserID || login.DeviceID == reg.DeviceID {
		t.Fatalf("m.login.token: %+v %v", login, err)
	}
	if who, err := s.client("", login.AccessToken).Whoami(ctx); err != nil || who.UserID != reg.UserID {
		t.Fatalf("whoami with the new device: %+v %v", who, err)
	}
	for name, tok := range map[string]string{"reused token": token, "unknown token": "spl_nope"} {
		status, _, body := s.raw("POST", "/_matrix/client/v3/login", "", mustJSON(t, map[string]string{"type": "m.login.token", "token": tok}))
		wantError(t, name, status, body, 403, "M_FORBIDDEN")
	}
	status, _, body = s.raw("POST", "/_matrix/client/v3/login", "", []byte(`{"type":"m.login.token"}`))
	wantError(t, "token login without a token", status, body, 400, "M_MISSING_PARAM")
}
