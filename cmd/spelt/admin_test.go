package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/synapseadmin"

	"spelt.dev/spelt/internal/config"
)

func TestRegistrationTokenAdminAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, func(c *config.Config) { c.Registration.RequireToken = true }).start()
	sa := &synapseadmin.Client{Client: s.client("", "")}
	admin, err := sa.SharedSecretRegister(ctx, "s3cret",
		synapseadmin.ReqSharedSecretRegister{Username: "boss", Password: "pw", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	user, err := sa.SharedSecretRegister(ctx, "s3cret",
		synapseadmin.ReqSharedSecretRegister{Username: "pleb", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	const base = "/_synapse/admin/v1/registration_tokens"
	status, _, body := s.raw("GET", base, user.AccessToken, nil)
	wantError(t, "non-admin", status, body, 403, "M_FORBIDDEN")
	status, _, body = s.raw("GET", base, "", nil)
	wantError(t, "no token", status, body, 401, "M_MISSING_TOKEN")

	status, _, body = s.raw("POST", base+"/new", admin.AccessToken, []byte(`{"token":"abc","uses_allowed":1}`))
	if status != 200 || body["token"] != "abc" || body["uses_allowed"] != float64(1) || body["pending"] != float64(0) || body["expiry_time"] != nil {
		t.Fatalf("create: %d %v", status, body)
	}
	status, _, body = s.raw("POST", base+"/new", admin.AccessToken, []byte(`{}`))
	generated, _ := body["token"].(string)
	if status != 200 || len(generated) < 8 {
		t.Fatalf("create generated: %d %v", status, body)
	}
	for name, req := range map[string]string{
		"duplicate":     `{"token":"abc"}`,
		"bad character": `{"token":"a b"}`,
		"negative uses": `{"uses_allowed":-1}`,
		"past expiry":   `{"expiry_time":1000}`,
		"wrong type":    `{"uses_allowed":"x"}`,
	} {
		status, _, body := s.raw("POST", base+"/new", admin.AccessToken, []byte(req))
		if status != 400 {
			t.Errorf("%s: %d %v", name, status, body)
		}
	}
	later := time.Now().Add(time.Hour).UnixMilli()
	status, _, body = s.raw("PUT", base+"/"+generated, admin.AccessToken, mustJSON(t, map[string]any{"expiry_time": later, "uses_allowed": 5}))
	if status != 200 || body["expiry_time"] != float64(later) || body["uses_allowed"] != float64(5) {
		t.Fatalf("update: %d %v", status, body)
	}
	status, _, body = s.raw("PUT", base+"/"+generated, admin.AccessToken, []byte(`{"uses_allowed":null}`))
	if status != 200 || body["uses_allowed"] != nil || body["expiry_time"] != float64(later) {
		t.Fatalf("clear uses_allowed: %d %v", status, body)
	}
	status, _, body = s.raw("GET", base+"/abc", admin.AccessToken, nil)
	if status != 200 || body["token"] != "abc" {
		t.Fatalf("get: %d %v", status, body)
	}
	status, _, body = s.raw("GET", base, admin.AccessToken, nil)
	if list, _ := body["registration_tokens"].([]any); status != 200 || len(list) != 2 {
		t.Fatalf("list: %d %v", status, body)
	}
	if status, _, _ := s.raw("DELETE", base+"/"+generated, admin.AccessToken, nil); status != 200 {
		t.Fatalf("delete: %d", status)
	}
	status, _, body = s.raw("GET", base+"/"+generated, admin.AccessToken, nil)
	wantError(t, "deleted token", status, body, 404, "M_NOT_FOUND")
	status, _, body = s.raw("DELETE", base+"/nosuch", admin.AccessToken, nil)
	wantError(t, "delete unknown", status, body, 404, "M_NOT_FOUND")
	status, _, body = s.raw("GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token="+generated, "", nil)
	if status != 200 || body["valid"] != false {
		t.Errorf("revoked token validity: %d %v", status, body)
	}
	status, _, body = s.raw("GET", base+"?valid=true", admin.AccessToken, nil)
	if list, _ := body["registration_tokens"].([]any); status != 200 || len(list) != 1 {
		t.Fatalf("list valid: %d %v", status, body)
	}
}

func TestRegistrationTokenCLI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, func(c *config.Config) { c.Registration.RequireToken = true })
	// Without a server running: the CLI brings the read model up to date itself.
	code, stdout, stderr := te.cli(ctx, "admin", "registration-token", "create", "--token", "cli-token", "--uses", "2")
	if code != 0 || strings.TrimSpace(stdout) != "cli-token" {
		t.Fatalf("create: %d %q %s", code, stdout, stderr)
	}
	code, stdout, stderr = te.cli(ctx, "admin", "registration-token", "list")
	if code != 0 || !strings.Contains(stdout, "cli-token") || !strings.Contains(stdout, "true") {
		t.Fatalf("list: %d %q %s", code, stdout, stderr)
	}
	// With a server running: it serves the token at once.
	s := te.start()
	status, _, body := s.raw("GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=cli-token", "", nil)
	if status != 200 || body["valid"] != true {
		t.Fatalf("validity: %d %v", status, body)
	}
	code, stdout, stderr = te.cli(ctx, "admin", "registration-token", "revoke", "cli-token")
	if code != 0 {
		t.Fatalf("revoke: %d %q %s", code, stdout, stderr)
	}
	code, stdout, _ = te.cli(ctx, "admin", "registration-token", "list")
	if code != 0 || strings.Contains(stdout, "cli-token") {
		t.Fatalf("list after revoke: %d %q", code, stdout)
	}
	if code, _, _ := te.cli(ctx, "admin", "registration-token", "revoke", "cli-token"); code == 0 {
		t.Error("revoking twice succeeded")
	}
	if code, _, _ := te.cli(ctx, "admin", "registration-token", "frob"); code != 2 {
		t.Errorf("unknown action: exit %d", code)
	}
}
