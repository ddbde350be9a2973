package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation"

	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/signingkey"
)

// testIS is an identity server (identity service API v2: /3pid/bind and /3pid/unbind)
// on loopback. It knows one validated session and the token of its user, and checks
// unbind requests' X-Matrix signature with the homeserver's key.
type testIS struct {
	srv    *httptest.Server
	name   string // host:port, the server name Spelt is configured with
	hsKey  func() ed25519.PublicKey
	mu     sync.Mutex
	bound  map[string]string // address → mxid
	unbind []string          // "mxid address" of each accepted unbind
}

const (
	isToken   = "is-access-token"
	isSID     = "is-session"
	isSecret  = "is-client-secret"
	isAddress = "kay@example.org"
)

func startIS(t *testing.T) *testIS {
	t.Helper()
	is := &testIS{bound: map[string]string{}}
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, status int, code string) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"errcode": code, "error": code})
	}
	mux.HandleFunc("POST /_matrix/identity/v2/3pid/bind", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+isToken {
			fail(w, 401, "M_UNAUTHORIZED")
			return
		}
		var req struct{ SID, ClientSecret, MXID string }
		var raw map[string]string
		_ = json.NewDecoder(r.Body).Decode(&raw)
		req.SID, req.ClientSecret, req.MXID = raw["sid"], raw["client_secret"], raw["mxid"]
		if req.SID != isSID || req.ClientSecret != isSecret {
			fail(w, 404, "M_NO_VALID_SESSION")
			return
		}
		is.mu.Lock()
		is.bound[isAddress] = req.MXID
		is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"address": isAddress, "medium": "email", "mxid": req.MXID,
			"not_before": 0, "not_after": 1 << 40, "ts": 0, "signatures": map[string]any{}})
	})
	mux.HandleFunc("POST /_matrix/identity/v2/3pid/unbind", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth := federation.ParseXMatrixAuth(r.Header.Get("Authorization"))
		signed, _ := canonicaljson.Marshal(map[string]any{"method": r.Method, "uri": r.URL.RequestURI(), "origin": auth.Origin,
			"destination": auth.Destination, "content": json.RawMessage(body)})
		sig, err := base64.RawStdEncoding.DecodeString(auth.Signature)
		if auth.Origin != "spelt.test" || auth.Destination != is.name || err != nil || !ed25519.Verify(is.hsKey(), signed, sig) {
			fail(w, 403, "M_FORBIDDEN")
			return
		}
		var req struct {
			MXID     string `json:"mxid"`
			Threepid struct{ Medium, Address string }
		}
		_ = json.Unmarshal(body, &req)
		is.mu.Lock()
		defer is.mu.Unlock()
		if is.bound[req.Threepid.Address] != req.MXID {
			fail(w, 404, "M_NOT_FOUND")
			return
		}
		delete(is.bound, req.Threepid.Address)
		is.unbind = append(is.unbind, req.MXID+" "+req.Threepid.Address)
		_, _ = w.Write([]byte(`{}`))
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.name = strings.TrimPrefix(is.srv.URL, "http://")
	return is
}

func (is *testIS) unbinds() []string {
	is.mu.Lock()
	defer is.mu.Unlock()
	return append([]string(nil), is.unbind...)
}

func TestIdentityServerBinding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	is := startIS(t)
	te := newTestEnv(t, func(c *config.Config) {
		c.Identity = config.Identity{TrustedServers: []string{is.name}, AllowPrivateAddresses: true, AllowHTTP: true}
	})
	is.hsKey = func() ed25519.PublicKey {
		k, err := signingkey.Load(te.cfg.SigningKeyPath())
		if err != nil {
			t.Error(err)
		}
		return k.Public()
	}
	s := te.start()
	kay := s.user(ctx, "kay")
	tok := kay.AccessToken
	bind := func(server, token, sid string) (int, map[string]any) {
		status, _, body := s.raw("POST", "/_matrix/client/v3/account/3pid/bind", tok, mustJSON(t, map[string]string{
			"id_server": server, "id_access_token": token, "sid": sid, "client_secret": isSecret}))
		return status, body
	}
	unbind := func(body string) (int, map[string]any) {
		status, _, resp := s.raw("POST", "/_matrix/client/v3/account/3pid/unbind", tok, []byte(body))
		return status, resp
	}

	// Refusals: an untrusted server, a session the identity server does not know, and
	// its token refused (not passed on as a token error, which would log the client out).
	status, body := bind("untrusted.example", isToken, isSID)
	wantError(t, "untrusted identity server", status, body, 400, "M_SERVER_NOT_TRUSTED")
	status, body = bind(is.name, isToken, "no-such-session")
	wantError(t, "unknown session", status, body, 400, "M_NO_VALID_SESSION")
	status, body = bind(is.name, "wrong-token", isSID)
	wantError(t, "refused token", status, body, 400, "M_FORBIDDEN")
	// Nothing bound yet: nothing to unbind.
	if status, body = unbind(`{"medium":"email","address":"` + isAddress + `"}`); status != 200 || body["id_server_unbind_result"] != "no-support" {
		t.Fatalf("unbind before binding: %d %v", status, body)
	}

	// A bind, then an unbind that finds the server the bind went to.
	if status, body = bind(is.name, isToken, isSID); status != 200 {
		t.Fatalf("bind: %d %v", status, body)
	}
	if status, body = unbind(`{"medium":"email","address":"` + isAddress + `"}`); status != 200 || body["id_server_unbind_result"] != "success" {
		t.Fatalf("unbind: %d %v", status, body)
	}
	if got := is.unbinds(); len(got) != 1 || got[0] != string(kay.ID)+" "+isAddress {
		t.Fatalf("identity server unbinds: %v", got)
	}
	if status, body = unbind(`{"medium":"email","address":"` + isAddress + `"}`); status != 200 || body["id_server_unbind_result"] != "no-support" {
		t.Fatalf("second unbind: %d %v", status, body)
	}

	// The deprecated POST /account/3pid binds the same way; deactivation unbinds.
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/3pid", tok, mustJSON(t, map[string]any{"three_pid_creds": map[string]string{
		"id_server": is.name, "id_access_token": isToken, "sid": isSID, "client_secret": isSecret}}))
	if status != 200 {
		t.Fatalf("deprecated bind: %d %v", status, body)
	}
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/deactivate", tok, []byte(`{}`))
	session, _ := body["session"].(string)
	if status, _, body = s.raw("POST", "/_matrix/client/v3/account/deactivate", tok,
		mustJSON(t, map[string]any{"auth": passwordAuth(session, "kay", "correct horse battery staple")})); status != 200 ||
		body["id_server_unbind_result"] != "success" {
		t.Fatalf("deactivate: %d %v", status, body)
	}
	if got := is.unbinds(); len(got) != 2 {
		t.Fatalf("identity server unbinds after deactivation: %v", got)
	}
}
