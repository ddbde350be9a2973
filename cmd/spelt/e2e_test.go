package main

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// e2eUser is a user whose client does end-to-end encryption with mautrix's Olm machine
// (goolm), fed by its syncs the way a real client feeds it.
type e2eUser struct {
	user
	t         *testing.T
	mach      *crypto.OlmMachine
	since     string
	encrypted []*event.Event // m.room.encrypted events seen in timelines
	last      *mautrix.RespSync
}

func newE2EUser(ctx context.Context, t *testing.T, s *testServer, name string) *e2eUser {
	t.Helper()
	u := &e2eUser{user: s.user(ctx, name), t: t}
	u.StateStore = mautrix.NewMemoryStateStore()
	log := zerolog.Nop()
	u.Log = log
	u.mach = crypto.NewOlmMachine(u.Client, &log, crypto.NewMemoryStore(nil), u.StateStore.(crypto.StateStore))
	if err := u.mach.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// The first upload: device keys and one-time keys (POST /keys/upload).
	if err := u.mach.ShareKeys(ctx, -1); err != nil {
		t.Fatalf("%s: share keys: %v", name, err)
	}
	syncer := u.Syncer.(*mautrix.DefaultSyncer)
	syncer.OnSync(u.mach.ProcessSyncResponse)
	syncer.OnEventType(event.StateMember, u.mach.HandleMemberEvent)
	syncer.OnEvent(u.StateStoreSyncHandler)
	syncer.OnEventType(event.EventEncrypted, func(_ context.Context, evt *event.Event) { u.encrypted = append(u.encrypted, evt) })
	return u
}

// sync runs one incremental sync (an initial one the first time) and processes it.
func (u *e2eUser) sync(ctx context.Context) *mautrix.RespSync {
	u.t.Helper()
	resp, err := u.SyncRequest(ctx, 0, u.since, "", false, "")
	if err != nil {
		u.t.Fatal(err)
	}
	if err := u.Syncer.(*mautrix.DefaultSyncer).ProcessResponse(ctx, resp, u.since); err != nil {
		u.t.Fatal(err)
	}
	u.since, u.last = resp.NextBatch, resp
	return resp
}

// sendEncrypted shares the room's Megolm session with its members' devices (keys
// query, one-time key claims, Olm-encrypted to-device messages) and sends text in it.
func (u *e2eUser) sendEncrypted(ctx context.Context, room id.RoomID, text string) {
	u.t.Helper()
	members, err := u.StateStore.GetRoomJoinedOrInvitedMembers(ctx, room)
	if err != nil {
		u.t.Fatal(err)
	}
	if err := u.mach.ShareGroupSession(ctx, room, members); err != nil {
		u.t.Fatalf("share group session: %v", err)
	}
	enc, err := u.mach.EncryptMegolmEvent(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.SendMessageEvent(ctx, room, event.EventEncrypted, enc); err != nil {
		u.t.Fatal(err)
	}
}

// decryptAll returns the text of every encrypted message seen so far.
func (u *e2eUser) decryptAll(ctx context.Context) []string {
	u.t.Helper()
	var out []string
	for _, evt := range u.encrypted {
		dec, err := u.mach.DecryptMegolmEvent(ctx, evt)
		if err != nil {
			u.t.Fatalf("decrypt %s: %v", evt.ID, err)
		}
		out = append(out, dec.Content.AsMessage().Body)
	}
	return out
}

func TestEndToEndEncryption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := newE2EUser(ctx, t, s, "alice"), newE2EUser(ctx, t, s, "bob")
	alice.sync(ctx)
	bob.sync(ctx)
	// mautrix uploads 51 one-time keys when it starts (half its maximum, minus a count
	// of -1 for "unknown").
	uploaded := bob.last.DeviceOTKCount.SignedCurve25519
	if uploaded != 51 {
		t.Fatalf("bob's one-time keys after upload: %d, want 51", uploaded)
	}

	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.ID},
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	alice.sync(ctx)
	bob.sync(ctx)
	// Alice learns of Bob's devices from device_lists.changed when he joins.
	if !slices.Contains(alice.last.DeviceLists.Changed, bob.ID) {
		t.Fatalf("alice's device_lists.changed = %v, want bob", alice.last.DeviceLists.Changed)
	}

	alice.sendEncrypted(ctx, room, "the eagle lands at dawn")
	bob.sync(ctx)
	if got := bob.decryptAll(ctx); !slices.Equal(got, []string{"the eagle lands at dawn"}) {
		t.Fatalf("bob decrypted %q", got)
	}
	// Alice's session claimed one of Bob's one-time keys; mautrix tops them up again
	// when its sync says so, so look at the count the server reported first.
	if n := bob.last.DeviceOTKCount.SignedCurve25519; n != uploaded-1 {
		t.Fatalf("bob's one-time keys after a claim: %d, want %d", n, uploaded-1)
	}
	// And back: Bob to Alice.
	bob.sendEncrypted(ctx, room, "copy that")
	alice.sync(ctx)
	// Alice's timeline has her own message too, which her outbound session decrypts.
	if got := alice.decryptAll(ctx); !slices.Equal(got, []string{"the eagle lands at dawn", "copy that"}) {
		t.Fatalf("alice decrypted %q", got)
	}
	// The server stores only ciphertext.
	msgs, err := bob.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range msgs.Chunk {
		if e.Type == event.EventMessage {
			t.Fatalf("a plaintext message reached the server: %+v", e)
		}
	}

	// Cross-signing: the first upload needs no authentication.
	aliceKeys, err := alice.mach.GenerateCrossSigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	noUIA := func(*mautrix.RespUserInteractive) any {
		t.Error("the first cross-signing upload asked for authentication")
		return nil
	}
	if err := alice.mach.PublishCrossSigningKeys(ctx, aliceKeys, noUIA); err != nil {
		t.Fatal(err)
	}
	if err := alice.mach.SignOwnMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.mach.SignOwnDevice(ctx, alice.mach.OwnIdentity()); err != nil {
		t.Fatal(err)
	}
	bobKeys, err := bob.mach.GenerateCrossSigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.mach.PublishCrossSigningKeys(ctx, bobKeys, noUIA); err != nil {
		t.Fatal(err)
	}
	// Bob hears that Alice's keys changed, fetches them and signs her master key.
	bob.sync(ctx)
	if !slices.Contains(bob.last.DeviceLists.Changed, alice.ID) {
		t.Fatalf("bob's device_lists.changed = %v, want alice", bob.last.DeviceLists.Changed)
	}
	if _, err := bob.mach.FetchKeys(ctx, []id.UserID{alice.ID}, true); err != nil {
		t.Fatal(err)
	}
	if err := bob.mach.SignUser(ctx, alice.ID, aliceKeys.MasterKey.PublicKey()); err != nil {
		t.Fatalf("sign alice's master key: %v", err)
	}
	// Alice's device is cross-signed: her self-signing key's signature came back from
	// the server in /keys/query, and Bob's user-signing key vouches for her.
	dev, err := bob.mach.GetOrFetchDevice(ctx, alice.ID, alice.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if trust, err := bob.mach.ResolveTrustContext(ctx, dev); err != nil || trust != id.TrustStateCrossSignedVerified {
		t.Fatalf("bob's trust in alice's device: %v %v", trust, err)
	}
	// Bob's signature of Alice's master key is shown to Bob, not to Alice or others.
	q := map[id.UserID]mautrix.DeviceIDList{alice.ID: {}}
	asBob, err := bob.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: q})
	if err != nil {
		t.Fatal(err)
	}
	asAlice, err := alice.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: q})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := asBob.MasterKeys[alice.ID].Signatures[bob.ID]; !ok {
		t.Fatalf("bob does not see his signature of alice's master key: %+v", asBob.MasterKeys[alice.ID].Signatures)
	}
	if _, ok := asAlice.MasterKeys[alice.ID].Signatures[bob.ID]; ok {
		t.Fatal("alice sees bob's signature of her master key")
	}
	if _, ok := asAlice.UserSigningKeys[alice.ID]; !ok {
		t.Fatal("alice does not see her own user-signing key")
	}
	if _, ok := asBob.UserSigningKeys[alice.ID]; ok {
		t.Fatal("bob sees alice's user-signing key")
	}
	if _, ok := asBob.SelfSigningKeys[alice.ID]; !ok {
		t.Fatal("bob does not see alice's self-signing key")
	}

	// Replacing cross-signing keys needs the password (user-interactive auth).
	newKeys, err := alice.mach.GenerateCrossSigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	asked := false
	err = alice.mach.PublishCrossSigningKeys(ctx, newKeys, func(r *mautrix.RespUserInteractive) any {
		asked = true
		return passwordAuth(r.Session, "alice", "correct horse battery staple")
	})
	if err != nil || !asked {
		t.Fatalf("replace cross-signing keys: asked=%v err=%v", asked, err)
	}

	// Bob leaves: Alice's next sync says she no longer shares a room with him.
	if _, err := bob.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	alice.sync(ctx)
	if !slices.Contains(alice.last.DeviceLists.Left, bob.ID) {
		t.Fatalf("alice's device_lists.left = %v, want bob", alice.last.DeviceLists.Left)
	}
}

// TestKeysEndpoints covers the key endpoints' rules and bad input with raw requests.
func TestKeysEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	carol := newE2EUser(ctx, t, s, "carol")
	dave := s.user(ctx, "dave")
	token := dave.AccessToken
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		status, _, resp := s.raw("POST", "/_matrix/client/v3/keys/"+path, token, []byte(body))
		return status, resp
	}

	// Device keys must be the caller's device's, and self-signed.
	status, body := post("upload", `{"device_keys":{"user_id":"`+string(carol.ID)+`","device_id":"X","algorithms":["m.olm.v1.curve25519-aes-sha2"],"keys":{"ed25519:X":"abc"}}}`)
	wantError(t, "someone else's device keys", status, body, 400, "M_INVALID_PARAM")
	status, body = post("upload", `{"device_keys":{"user_id":"`+string(dave.ID)+`","device_id":"`+string(dave.DeviceID)+
		`","algorithms":["m.olm.v1.curve25519-aes-sha2"],"keys":{"ed25519:`+string(dave.DeviceID)+`":"bm90IGEga2V5"},"signatures":{}}}`)
	wantError(t, "unsigned device keys", status, body, 400, "M_INVALID_SIGNATURE")
	status, body = post("upload", `{"device_keys":"nope"}`)
	wantError(t, "device keys as a string", status, body, 400, "M_BAD_JSON")
	status, body = post("upload", `{"one_time_keys":{"no-algorithm":"abc"}}`)
	wantError(t, "key ID without algorithm", status, body, 400, "M_INVALID_PARAM")
	status, body = post("upload", `{"one_time_keys":{"curve25519:A":5}}`)
	wantError(t, "key as a number", status, body, 400, "M_INVALID_PARAM")

	// One-time keys: counted, idempotent, and an ID cannot change its key.
	status, body = post("upload", `{"one_time_keys":{"curve25519:A":"a1","curve25519:B":"b1"}}`)
	if status != 200 || body["one_time_key_counts"].(map[string]any)["curve25519"] != 2.0 {
		t.Fatalf("upload: %d %v", status, body)
	}
	status, body = post("upload", `{"one_time_keys":{"curve25519:A":"a1"}}`)
	if status != 200 || body["one_time_key_counts"].(map[string]any)["curve25519"] != 2.0 {
		t.Fatalf("upload again: %d %v", status, body)
	}
	status, body = post("upload", `{"one_time_keys":{"curve25519:A":"other"}}`)
	wantError(t, "key ID reused", status, body, 400, "M_INVALID_PARAM")
	status, body = post("upload", `{"fallback_keys":{"curve25519:F":"f1"}}`)
	if status != 200 {
		t.Fatalf("fallback upload: %d %v", status, body)
	}

	// Claims hand out each one-time key once, then the fallback key.
	claim := func() string {
		t.Helper()
		resp, err := carol.ClaimKeys(ctx, &mautrix.ReqClaimKeys{OneTimeKeys: mautrix.OneTimeKeysRequest{dave.ID: {dave.DeviceID: "curve25519"}}})
		if err != nil {
			t.Fatal(err)
		}
		for keyID := range resp.OneTimeKeys[dave.ID][dave.DeviceID] {
			return string(keyID)
		}
		return ""
	}
	if got := []string{claim(), claim(), claim(), claim()}; !slices.Equal(got, []string{"curve25519:A", "curve25519:B", "curve25519:F", "curve25519:F"}) {
		t.Fatalf("claims: %v", got)
	}
	sync, err := dave.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	status, _, rawSync := s.raw("GET", "/_matrix/client/v3/sync", token, nil)
	b, _ := json.Marshal(rawSync)
	_ = json.Unmarshal(b, &raw)
	if status != 200 || string(raw["device_unused_fallback_key_types"]) != "[]" || sync.DeviceOTKCount.Curve25519 != 0 {
		t.Fatalf("after claims: fallback %s, counts %+v", raw["device_unused_fallback_key_types"], sync.DeviceOTKCount)
	}
	// Claims for other servers' users fail per server until federation.
	status, body = post("claim", `{"one_time_keys":{"@x:elsewhere.example":{"D":"curve25519"}}}`)
	if status != 200 || body["failures"].(map[string]any)["elsewhere.example"] == nil {
		t.Fatalf("remote claim: %d %v", status, body)
	}
	status, body = post("claim", `{}`)
	wantError(t, "claim without one_time_keys", status, body, 400, "M_MISSING_PARAM")
	status, body = post("query", `{"device_keys":{"@x:spelt.test":"nope"}}`)
	wantError(t, "query with a string", status, body, 400, "M_BAD_JSON")

	// A signature that does not verify is a failure, and nothing is stored.
	status, body = post("signatures/upload", `{"`+string(carol.ID)+`":{"`+string(carol.DeviceID)+`":{"user_id":"`+string(carol.ID)+`"}}}`)
	if status != 200 || body["failures"].(map[string]any)[string(carol.ID)] == nil {
		t.Fatalf("signature of another user's device: %d %v", status, body)
	}
	// Cross-signing keys must be signed by the master key.
	status, body = post("device_signing/upload", `{"self_signing_key":{"user_id":"`+string(dave.ID)+`","usage":["self_signing"],"keys":{"ed25519:abc":"abc"}}}`)
	wantError(t, "self-signing key without a master key", status, body, 400, "M_INVALID_PARAM")

	// Deleting a device takes its keys away, and tells those who share a room.
	status, body = post("query", `{"device_keys":{"`+string(carol.ID)+`":[]}}`)
	if status != 200 || len(body["device_keys"].(map[string]any)[string(carol.ID)].(map[string]any)) != 1 {
		t.Fatalf("carol's devices: %d %v", status, body)
	}
	created, err := carol.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dave.JoinRoomByID(ctx, created.RoomID); err != nil {
		t.Fatal(err)
	}
	before, err := dave.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	err = carol.DeleteDevice(ctx, carol.DeviceID, &mautrix.ReqDeleteDevice[any]{})
	he := httpError(t, err)
	var uia mautrix.RespUserInteractive
	_ = json.Unmarshal([]byte(he.ResponseBody), &uia)
	if err := carol.DeleteDevice(ctx, carol.DeviceID, &mautrix.ReqDeleteDevice[any]{Auth: passwordAuth(uia.Session, "carol", "correct horse battery staple")}); err != nil {
		t.Fatal(err)
	}
	after, err := dave.SyncRequest(ctx, 0, before.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(after.DeviceLists.Changed, carol.ID) {
		t.Fatalf("dave's device_lists.changed after carol's device went: %v", after.DeviceLists.Changed)
	}
	status, _, changes := s.raw("GET", "/_matrix/client/v3/keys/changes?from="+before.NextBatch+"&to="+after.NextBatch, token, nil)
	if status != 200 || !slices.Contains(anyStrings(changes["changed"]), string(carol.ID)) {
		t.Fatalf("keys/changes: %d %v", status, changes)
	}
	status, body = post("query", `{"device_keys":{"`+string(carol.ID)+`":[]}}`)
	if status != 200 || len(body["device_keys"].(map[string]any)[string(carol.ID)].(map[string]any)) != 0 {
		t.Fatalf("carol's devices after deletion: %d %v", status, body)
	}
	status, _, body = s.raw("GET", "/_matrix/client/v3/keys/changes?from=nope&to="+after.NextBatch, token, nil)
	wantError(t, "keys/changes with a bad token", status, body, 400, "M_INVALID_PARAM")
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// e2eActivity puts every kind of key event in the log, for the replay tests: uploads,
// claims, a fallback key, cross-signing keys, signatures of one's own keys and of
// another user's, and a device deleted with its keys.
func e2eActivity(ctx context.Context, t *testing.T, s *testServer) {
	t.Helper()
	kim, lee := newE2EUser(ctx, t, s, "kim"), newE2EUser(ctx, t, s, "lee")
	kim.sync(ctx)
	lee.sync(ctx)
	created, err := kim.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{lee.ID},
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lee.JoinRoomByID(ctx, created.RoomID); err != nil {
		t.Fatal(err)
	}
	kim.sync(ctx)
	// A profile change, carried into the room.
	if err := lee.SetDisplayName(ctx, "Lee"); err != nil {
		t.Fatal(err)
	}
	if err := lee.SetAvatarURL(ctx, id.MustParseContentURI("mxc://spelt.test/lee")); err != nil {
		t.Fatal(err)
	}
	kim.sendEncrypted(ctx, created.RoomID, "for the log")
	lee.sync(ctx)
	for _, u := range []*e2eUser{kim, lee} {
		keys, err := u.mach.GenerateCrossSigningKeys()
		if err != nil {
			t.Fatal(err)
		}
		if err := u.mach.PublishCrossSigningKeys(ctx, keys, nil); err != nil {
			t.Fatal(err)
		}
		if err := u.mach.SignOwnMasterKey(ctx); err != nil {
			t.Fatal(err)
		}
		if err := u.mach.SignOwnDevice(ctx, u.mach.OwnIdentity()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lee.mach.FetchKeys(ctx, []id.UserID{kim.ID}, true); err != nil {
		t.Fatal(err)
	}
	if err := lee.mach.SignUser(ctx, kim.ID, kim.mach.CrossSigningKeys.MasterKey.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if status, _, body := s.raw("POST", "/_matrix/client/v3/keys/upload", kim.AccessToken, []byte(`{"fallback_keys":{"curve25519:F":"f1"}}`)); status != 200 {
		t.Fatalf("fallback key: %d %v", status, body)
	}
	if _, err := lee.ClaimKeys(ctx, &mautrix.ReqClaimKeys{OneTimeKeys: mautrix.OneTimeKeysRequest{kim.ID: {kim.DeviceID: "curve25519"}}}); err != nil {
		t.Fatal(err)
	}
	login, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Password: "correct horse battery staple",
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "lee"}})
	if err != nil {
		t.Fatal(err)
	}
	second := s.client(string(lee.ID), login.AccessToken)
	if status, _, body := s.raw("POST", "/_matrix/client/v3/keys/upload", login.AccessToken, []byte(`{"one_time_keys":{"curve25519:Z":"z"}}`)); status != 200 {
		t.Fatalf("second device's keys: %d %v", status, body)
	}
	if _, err := second.Logout(ctx); err != nil {
		t.Fatal(err)
	}
}
