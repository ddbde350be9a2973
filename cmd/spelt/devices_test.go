package main

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	spelthttp "spelt.dev/spelt/http"
)

func passwordAuth(session, user, password string) map[string]any {
	return map[string]any{"type": "m.login.password", "session": session, "password": password,
		"identifier": map[string]any{"type": "m.id.user", "user": user}}
}

func TestDevices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, nil)
	s := te.start()
	reg := s.register(ctx, "dora", "pw")
	login := func(device, name string) *mautrix.RespLogin {
		t.Helper()
		resp, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Password: "pw",
			Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "dora"},
			DeviceID:   id.DeviceID(device), InitialDeviceDisplayName: name})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	b := login("BBB", "laptop")
	cdev := login("CCC", "tablet")
	c := s.client(string(reg.UserID), reg.AccessToken)

	list, err := c.GetDevicesInfo(ctx)
	if err != nil || len(list.Devices) != 3 {
		t.Fatalf("devices: %+v %v", list, err)
	}
	info, err := c.GetDeviceInfo(ctx, "BBB")
	if err != nil || info.DisplayName != "laptop" {
		t.Fatalf("device BBB: %+v %v", info, err)
	}
	if err := c.SetDeviceInfo(ctx, "BBB", &mautrix.ReqDeviceInfo{DisplayName: "work laptop"}); err != nil {
		t.Fatal(err)
	}
	if info, err := c.GetDeviceInfo(ctx, "BBB"); err != nil || info.DisplayName != "work laptop" {
		t.Fatalf("renamed: %+v %v", info, err)
	}
	status, _, body := s.raw("GET", "/_matrix/client/v3/devices/NOPE", reg.AccessToken, nil)
	wantError(t, "unknown device", status, body, 404, "M_NOT_FOUND")
	status, _, body = s.raw("PUT", "/_matrix/client/v3/devices/NOPE", reg.AccessToken, []byte(`{"display_name":"x"}`))
	wantError(t, "rename unknown device", status, body, 404, "M_NOT_FOUND")
	status, _, body = s.raw("PUT", "/_matrix/client/v3/devices/BBB", reg.AccessToken, []byte(`{"display_name":5}`))
	wantError(t, "rename with a number", status, body, 400, "M_BAD_JSON")

	// Deleting a device needs the password again.
	status, _, body = s.raw("DELETE", "/_matrix/client/v3/devices/CCC", reg.AccessToken, []byte(`{}`))
	session, _ := body["session"].(string)
	if status != 401 || session == "" {
		t.Fatalf("delete without auth: %d %v", status, body)
	}
	status, _, body = s.raw("DELETE", "/_matrix/client/v3/devices/CCC", reg.AccessToken, mustJSON(t, map[string]any{"auth": passwordAuth(session, "dora", "wrong")}))
	if status != 401 || body["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("delete with a wrong password: %d %v", status, body)
	}
	// Another user cannot use dora's session.
	other := s.register(ctx, "olga", "pw2")
	status, _, body = s.raw("DELETE", "/_matrix/client/v3/devices/"+string(other.DeviceID), other.AccessToken,
		mustJSON(t, map[string]any{"auth": passwordAuth(session, "olga", "pw2")}))
	wantError(t, "someone else's session", status, body, 400, "M_UNKNOWN")
	if err := c.DeleteDevice(ctx, "CCC", &mautrix.ReqDeleteDevice[any]{Auth: passwordAuth(session, "dora", "pw")}); err != nil {
		t.Fatalf("delete with the password: %v", err)
	}
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami", cdev.AccessToken, nil)
	wantError(t, "deleted device's token", status, body, 401, "M_UNKNOWN_TOKEN")
	// Deleting again, and unknown devices, are not errors.
	status, _, body = s.raw("POST", "/_matrix/client/v3/delete_devices", reg.AccessToken, []byte(`{"devices":["CCC","NOPE","BBB"]}`))
	session, _ = body["session"].(string)
	if status != 401 {
		t.Fatalf("delete_devices without auth: %d %v", status, body)
	}
	// The session authorises these devices, not others.
	status, _, body = s.raw("POST", "/_matrix/client/v3/delete_devices", reg.AccessToken, mustJSON(t, map[string]any{
		"devices": []string{"CCC", string(reg.DeviceID)}, "auth": passwordAuth(session, "dora", "pw")}))
	wantError(t, "another device list in the same session", status, body, 401, "M_FORBIDDEN")
	if err := c.DeleteDevices(ctx, &mautrix.ReqDeleteDevices[any]{Devices: []id.DeviceID{"CCC", "NOPE", "BBB"},
		Auth: passwordAuth(session, "@dora:spelt.test", "pw")}); err != nil {
		t.Fatalf("delete_devices: %v", err)
	}
	list, err = c.GetDevicesInfo(ctx)
	if err != nil || len(list.Devices) != 1 || list.Devices[0].DeviceID != reg.DeviceID {
		t.Fatalf("devices after deletions: %+v %v", list, err)
	}
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami", b.AccessToken, nil)
	wantError(t, "deleted device BBB", status, body, 401, "M_UNKNOWN_TOKEN")
	status, _, body = s.raw("POST", "/_matrix/client/v3/delete_devices", reg.AccessToken, []byte(`{}`))
	wantError(t, "delete_devices without devices", status, body, 400, "M_MISSING_PARAM")
}

// TestDeviceLastSeen: requests update a device's last_seen_ip and last_seen_ts, recorded
// in the log in periodic batches.
func TestDeviceLastSeen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, nil)
	s := te.startWith(func(c *spelthttp.Config) { c.SeenFlushInterval = 20 * time.Millisecond })
	reg := s.register(ctx, "seen", "pw")
	c := s.client(string(reg.UserID), reg.AccessToken)
	before := time.Now().Add(-time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.GetDeviceInfo(ctx, reg.DeviceID)
		if err != nil {
			t.Fatal(err)
		}
		if info.LastSeenIP != "" {
			if info.LastSeenIP != "127.0.0.1" || time.UnixMilli(info.LastSeenTS).Before(before) {
				t.Fatalf("last seen %q at %d", info.LastSeenIP, info.LastSeenTS)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("last_seen never recorded")
		}
		// Wait for the next flush to be projected before asking again.
		s.waitProjected(ctx)
	}
}

func TestPasswordChangeAndDeactivation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	reg := s.register(ctx, "pat", "old")
	other, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Password: "old",
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "pat"}})
	if err != nil {
		t.Fatal(err)
	}
	caps, err := s.client("", reg.AccessToken).Capabilities(ctx)
	if err != nil || caps.ChangePassword == nil || !caps.ChangePassword.Enabled {
		t.Fatalf("capabilities: %+v %v", caps, err)
	}

	status, _, body := s.raw("POST", "/_matrix/client/v3/account/password", reg.AccessToken, []byte(`{"new_password":"new"}`))
	session, _ := body["session"].(string)
	if status != 401 || session == "" {
		t.Fatalf("password change without auth: %d %v", status, body)
	}
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/password", reg.AccessToken,
		mustJSON(t, map[string]any{"new_password": "new", "auth": passwordAuth(session, "pat", "bad")}))
	if status != 401 || body["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("password change with a wrong password: %d %v", status, body)
	}
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/password", reg.AccessToken,
		mustJSON(t, map[string]any{"new_password": "new", "auth": passwordAuth(session, "pat", "old")}))
	if status != 200 {
		t.Fatalf("password change: %d %v", status, body)
	}
	// The requesting device stays; the others are logged out.
	if status, _, body := s.raw("GET", "/_matrix/client/v3/account/whoami", reg.AccessToken, nil); status != 200 {
		t.Errorf("own token after password change: %d %v", status, body)
	}
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami", other.AccessToken, nil)
	wantError(t, "other device after password change", status, body, 401, "M_UNKNOWN_TOKEN")
	loginWith := func(pw string) (int, map[string]any) {
		status, _, body := s.raw("POST", "/_matrix/client/v3/login", "",
			mustJSON(t, map[string]any{"type": "m.login.password", "password": pw, "identifier": map[string]any{"type": "m.id.user", "user": "pat"}}))
		return status, body
	}
	if status, body := loginWith("old"); status != 403 {
		t.Errorf("old password: %d %v", status, body)
	}
	if status, body := loginWith("new"); status != 200 {
		t.Errorf("new password: %d %v", status, body)
	}

	// Deactivation.
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/deactivate", reg.AccessToken, []byte(`{}`))
	session, _ = body["session"].(string)
	if status != 401 || session == "" {
		t.Fatalf("deactivate without auth: %d %v", status, body)
	}
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/deactivate", reg.AccessToken,
		mustJSON(t, map[string]any{"erase": true, "auth": passwordAuth(session, "pat", "new")}))
	if status != 200 || body["id_server_unbind_result"] != "success" {
		t.Fatalf("deactivate: %d %v", status, body)
	}
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami", reg.AccessToken, nil)
	wantError(t, "token after deactivation", status, body, 401, "M_UNKNOWN_TOKEN")
	status, body = loginWith("new")
	wantError(t, "login after deactivation", status, body, 403, "M_USER_DEACTIVATED")
	if _, err := s.client("", "").RegisterAvailable(ctx, "pat"); err == nil {
		t.Error("a deactivated user's name became available")
	}
}
