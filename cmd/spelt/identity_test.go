package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/signingkey"
)

// testIS is an identity server (identity service API v2: /3pid/bind and /3pid/unbind)
// on loopback. It knows one validated session and the token of its user, and checks
// unbind requests' X-Matrix signature with the homeserver's key.
type testIS struct {
	srv     *httptest.Server
	name    string // host:port, the server name Spelt is configured with
	hsKey   func() ed25519.PublicKey
	mu      sync.Mutex
	bound   map[string]string // address → mxid
	unbind  []string          // "mxid address" of each accepted unbind
	invites []map[string]any  // the stored invites' requests
}

// isPepper is the test identity server's lookup pepper.
const isPepper = "matrixrocks"

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
	mux.HandleFunc("GET /_matrix/identity/v2/hash_details", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+isToken {
			fail(w, 401, "M_UNAUTHORIZED")
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"algorithms": []string{"none", "sha256"}, "lookup_pepper": isPepper})
	})
	mux.HandleFunc("POST /_matrix/identity/v2/lookup", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Addresses []string `json:"addresses"`
			Algorithm string   `json:"algorithm"`
			Pepper    string   `json:"pepper"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if r.Header.Get("Authorization") != "Bearer "+isToken || req.Algorithm != "sha256" || req.Pepper != isPepper {
			fail(w, 400, "M_INVALID_PEPPER")
			return
		}
		mappings := map[string]string{}
		is.mu.Lock()
		for address, mxid := range is.bound {
			sum := sha256.Sum256([]byte(address + " email " + isPepper))
			hash := base64.RawURLEncoding.EncodeToString(sum[:])
			if slices.Contains(req.Addresses, hash) {
				mappings[hash] = mxid
			}
		}
		is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"mappings": mappings})
	})
	mux.HandleFunc("POST /_matrix/identity/v2/store-invite", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+isToken {
			fail(w, 401, "M_UNAUTHORIZED")
			return
		}
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		is.mu.Lock()
		is.invites = append(is.invites, req)
		token := fmt.Sprintf("invite-token-%d", len(is.invites))
		is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"token": token, "display_name": "k...@e...",
			"public_keys": []map[string]string{{"public_key": "c2VydmVyIGtleQ", "key_validity_url": "https://" + is.name + "/_matrix/identity/v2/pubkey/isvalid"}}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.name = strings.TrimPrefix(is.srv.URL, "http://")
	return is
}

func (is *testIS) storedInvites() []map[string]any {
	is.mu.Lock()
	defer is.mu.Unlock()
	return append([]map[string]any(nil), is.invites...)
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

// withIS configures the identity server as the only trusted one.
func withIS(t *testing.T, is *testIS) func(*config.Config) {
	return func(c *config.Config) {
		c.Identity = config.Identity{TrustedServers: []string{is.name}, AllowPrivateAddresses: true, AllowHTTP: true}
	}
}

func TestThirdPartyInvites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	is := startIS(t)
	s := newTestEnv(t, withIS(t, is)).start()
	alice, bound, eve := s.user(ctx, "alice"), s.user(ctx, "bound"), s.user(ctx, "eve")
	is.mu.Lock()
	is.bound["known@example.org"] = string(bound.ID)
	is.mu.Unlock()

	// createRoom's invite_3pid: the identity server knows the address's user, who is
	// invited as such.
	status, _, body := s.raw("POST", "/_matrix/client/v3/createRoom", alice.AccessToken, mustJSON(t, map[string]any{
		"name": "Book club", "invite_3pid": []map[string]string{{"id_server": is.name, "id_access_token": isToken,
			"medium": "email", "address": "known@example.org"}}}))
	if status != 200 {
		t.Fatalf("createRoom with invite_3pid: %d %v", status, body)
	}
	room := id.RoomID(body["room_id"].(string))
	var m event.MemberEventContent
	if err := alice.StateEvent(ctx, room, event.StateMember, string(bound.ID), &m); err != nil || m.Membership != event.MembershipInvite {
		t.Fatalf("bound user's membership: %+v %v", m, err)
	}

	// An address nobody bound: the identity server stores the invite and the room
	// gets an m.room.third_party_invite keyed by its token.
	invite := func(token, user string, addr string) (int, map[string]any) {
		status, _, body := s.raw("POST", "/_matrix/client/v3/rooms/"+string(room)+"/invite", token, mustJSON(t, map[string]string{
			"id_server": is.name, "id_access_token": isToken, "medium": "email", "address": addr}))
		return status, body
	}
	if status, body := invite(alice.AccessToken, "alice", "stranger@example.org"); status != 200 {
		t.Fatalf("3PID invite: %d %v", status, body)
	}
	var tpi struct {
		DisplayName    string `json:"display_name"`
		PublicKey      string `json:"public_key"`
		KeyValidityURL string `json:"key_validity_url"`
		PublicKeys     []any  `json:"public_keys"`
	}
	if err := alice.StateEvent(ctx, room, event.StateThirdPartyInvite, "invite-token-1", &tpi); err != nil ||
		tpi.DisplayName != "k...@e..." || tpi.PublicKey != "c2VydmVyIGtleQ" || len(tpi.PublicKeys) != 1 || tpi.KeyValidityURL == "" {
		t.Fatalf("third-party invite event: %+v %v", tpi, err)
	}
	stored := is.storedInvites()
	if len(stored) != 1 || stored[0]["room_name"] != "Book club" || stored[0]["sender_display_name"] != "alice" ||
		stored[0]["address"] != "stranger@example.org" || stored[0]["sender"] != string(alice.ID) {
		t.Fatalf("invite the identity server stored: %v", stored)
	}

	// Someone outside the room cannot invite, and nothing is stored for them.
	status, body = invite(eve.AccessToken, "eve", "other@example.org")
	wantError(t, "3PID invite from outside the room", status, body, 403, "M_FORBIDDEN")
	if len(is.storedInvites()) != 1 {
		t.Fatal("an invite that failed was stored at the identity server")
	}
	// Bad input.
	status, _, body = s.raw("POST", "/_matrix/client/v3/rooms/"+string(room)+"/invite", alice.AccessToken,
		[]byte(`{"id_server":"`+is.name+`","medium":"email","address":"x@example.org"}`))
	wantError(t, "3PID invite without id_access_token", status, body, 400, "M_MISSING_PARAM")
	status, _, body = s.raw("POST", "/_matrix/client/v3/rooms/"+string(room)+"/invite", alice.AccessToken,
		[]byte(`{"id_server":"elsewhere.example","id_access_token":"t","medium":"email","address":"x@example.org"}`))
	wantError(t, "3PID invite at an untrusted server", status, body, 400, "M_SERVER_NOT_TRUSTED")
	status, _, body = s.raw("POST", "/_matrix/client/v3/rooms/"+string(room)+"/invite", alice.AccessToken,
		[]byte(`{"id_server":"`+is.name+`","id_access_token":"wrong","medium":"email","address":"x@example.org"}`))
	wantError(t, "3PID invite with a token the identity server refuses", status, body, 400, "M_FORBIDDEN")
}
