package commands

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"maunium.net/go/mautrix/crypto/signatures"
	"maunium.net/go/mautrix/id"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/sql/gen/writedb"
)

// ErrInvalidSignature is a key whose signature does not verify (M_INVALID_SIGNATURE).
var ErrInvalidSignature = errors.New("invalid signature")

// UploadKeys is POST /keys/upload: a device publishes its keys.
type UploadKeys struct {
	UserID, DeviceID string
	DeviceKeys       json.RawMessage // nil: none
	// OneTimeKeys and FallbackKeys map "algorithm:id" to a key (a string, or an object
	// with key and signatures).
	OneTimeKeys, FallbackKeys map[string]json.RawMessage
}

// deviceKeys is the part of a device's keys the server checks.
type deviceKeys struct {
	UserID     string            `json:"user_id"`
	DeviceID   string            `json:"device_id"`
	Algorithms []string          `json:"algorithms"`
	Keys       map[string]string `json:"keys"`
}

// UploadKeys stores what a device publishes. Device keys must be the caller's device's
// and self-signed; re-uploading a key unchanged does nothing, and a one-time key ID
// that is already taken by another key is refused (as Synapse does).
func (c *Commands) UploadKeys(ctx context.Context, meta Meta, req UploadKeys) (eventlog.Position, error) {
	if req.DeviceKeys != nil {
		var dk deviceKeys
		if err := json.Unmarshal(req.DeviceKeys, &dk); err != nil {
			return eventlog.Position{}, &BadJSONError{Reason: "device_keys: " + err.Error()}
		}
		if dk.UserID != req.UserID || dk.DeviceID != req.DeviceID {
			return eventlog.Position{}, badRequest("device_keys must be those of the device making the request")
		}
		ed := dk.Keys["ed25519:"+req.DeviceID]
		if len(dk.Algorithms) == 0 || ed == "" {
			return eventlog.Position{}, badRequest("device_keys need algorithms and the device's ed25519 key")
		}
		if !signedBy(req.DeviceKeys, req.UserID, req.DeviceID, ed) {
			return eventlog.Position{}, ErrInvalidSignature
		}
	}
	for kind, keys := range map[string]map[string]json.RawMessage{"one_time_keys": req.OneTimeKeys, "fallback_keys": req.FallbackKeys} {
		algorithms := map[string]bool{}
		for keyID, key := range keys {
			algorithm, _, ok := strings.Cut(keyID, ":")
			if !ok || algorithm == "" || strings.HasSuffix(keyID, ":") {
				return eventlog.Position{}, badRequest("%s: key ID %q is not algorithm:id", kind, keyID)
			}
			if !validKey(key) {
				return eventlog.Position{}, badRequest("%s: key %q must be a string or an object with a key", kind, keyID)
			}
			if kind == "fallback_keys" && algorithms[algorithm] {
				return eventlog.Position{}, badRequest("fallback_keys: one key per algorithm")
			}
			algorithms[algorithm] = true
		}
	}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		var events []eventlog.NewEvent
		add := func(typ string, data any) {
			events = append(events, eventlog.NewEvent{Stream: eventlog.E2EStream(req.UserID), Type: typ, ExpectVersion: eventlog.AnyVersion, Data: data})
		}
		if req.DeviceKeys != nil {
			old, err := c.q.E2EDeviceKeysGet(ctx, tx, writedb.E2EDeviceKeysGetParams{UserID: req.UserID, DeviceID: req.DeviceID})
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return nil, err
			}
			if err != nil || !sameJSON(old, req.DeviceKeys) {
				add(eventlog.TypeDeviceKeysUploaded, eventlog.DeviceKeysUploaded{UserID: req.UserID, DeviceID: req.DeviceID, Keys: req.DeviceKeys})
			}
		}
		if len(req.OneTimeKeys) > 0 {
			existing, err := c.q.E2EOneTimeKeysExisting(ctx, tx, writedb.E2EOneTimeKeysExistingParams{UserID: req.UserID, DeviceID: req.DeviceID,
				KeyIds: slices.Collect(maps.Keys(req.OneTimeKeys))})
			if err != nil {
				return nil, err
			}
			fresh := maps.Clone(req.OneTimeKeys)
			for _, e := range existing {
				if !sameJSON(e.Key, req.OneTimeKeys[e.FullID]) {
					return nil, badRequest("one-time key %s already exists with another value", e.FullID)
				}
				delete(fresh, e.FullID)
			}
			if len(fresh) > 0 {
				add(eventlog.TypeOneTimeKeysUploaded, eventlog.OneTimeKeysUploaded{UserID: req.UserID, DeviceID: req.DeviceID, Keys: fresh})
			}
		}
		fallback := map[string]json.RawMessage{}
		for keyID, key := range req.FallbackKeys {
			algorithm, _, _ := strings.Cut(keyID, ":")
			old, err := c.q.E2EFallbackKeyGet(ctx, tx, writedb.E2EFallbackKeyGetParams{UserID: req.UserID, DeviceID: req.DeviceID, Algorithm: algorithm})
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return nil, err
			}
			if err != nil || old.KeyID != keyID || !sameJSON(old.Key, key) {
				fallback[keyID] = key
			}
		}
		if len(fallback) > 0 {
			add(eventlog.TypeFallbackKeysUploaded, eventlog.FallbackKeysUploaded{UserID: req.UserID, DeviceID: req.DeviceID, Keys: fallback})
		}
		return events, nil
	})
}

// ClaimKeys hands out one key of the asked algorithm (user → device → algorithm) for
// each device of this server's users: a one-time key while one is left, which is then
// gone, else the device's fallback key. The result maps user → device → "algorithm:id"
// → key; devices with no key of the algorithm are left out.
func (c *Commands) ClaimKeys(ctx context.Context, meta Meta, claimer string, want map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, eventlog.Position, error) {
	var out map[string]map[string]map[string]json.RawMessage
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		out = map[string]map[string]map[string]json.RawMessage{}
		var claimed []eventlog.ClaimedKey
		// In a fixed order, so claims running at once lock keys in the same order.
		for _, user := range slices.Sorted(maps.Keys(want)) {
			for _, device := range slices.Sorted(maps.Keys(want[user])) {
				algorithm := want[user][device]
				p := writedb.E2EOneTimeKeyClaimParams{UserID: user, DeviceID: device, Algorithm: algorithm}
				k := eventlog.ClaimedKey{UserID: user, DeviceID: device}
				var key []byte
				if r, err := c.q.E2EOneTimeKeyClaim(ctx, tx, p); err == nil {
					k.KeyID, key = algorithm+":"+r.KeyID, r.Key
				} else if !errors.Is(err, pgx.ErrNoRows) {
					return nil, err
				} else if r, err := c.q.E2EFallbackKeyGet(ctx, tx, writedb.E2EFallbackKeyGetParams(p)); err == nil {
					k.KeyID, key, k.Fallback = r.KeyID, r.Key, true
				} else if !errors.Is(err, pgx.ErrNoRows) {
					return nil, err
				} else {
					continue
				}
				claimed = append(claimed, k)
				if out[user] == nil {
					out[user] = map[string]map[string]json.RawMessage{}
				}
				out[user][device] = map[string]json.RawMessage{k.KeyID: key}
			}
		}
		if len(claimed) == 0 {
			return nil, nil
		}
		return []eventlog.NewEvent{{Stream: eventlog.E2EStream(claimer), Type: eventlog.TypeKeysClaimed, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.KeysClaimed{Claimer: claimer, Keys: claimed}}}, nil
	})
	return out, pos, err
}

// CrossSigningKeys is POST /keys/device_signing/upload.
type CrossSigningKeys struct {
	UserID                           string
	Master, SelfSigning, UserSigning json.RawMessage // nil: not uploaded
	Auth                             *AuthDict
}

// crossSigningKey is the part of a cross-signing key the server checks.
type crossSigningKey struct {
	UserID string            `json:"user_id"`
	Usage  []string          `json:"usage"`
	Keys   map[string]string `json:"keys"`
}

// publicKey checks a cross-signing key of a kind ("master", "self_signing",
// "user_signing") and returns its ed25519 public key.
func publicKey(raw json.RawMessage, userID, kind string) (string, error) {
	var k crossSigningKey
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", &BadJSONError{Reason: kind + " key: " + err.Error()}
	}
	if k.UserID != userID {
		return "", badRequest("%s key: user_id must be the user's own", kind)
	}
	if !slices.Contains(k.Usage, kind) {
		return "", badRequest("%s key: usage must include %q", kind, kind)
	}
	if len(k.Keys) != 1 {
		return "", badRequest("%s key: exactly one key is needed", kind)
	}
	for name, pub := range k.Keys {
		if name != "ed25519:"+pub || pub == "" {
			return "", badRequest("%s key: the key must be named ed25519:<public key>", kind)
		}
		return pub, nil
	}
	return "", nil // not reached
}

// UploadCrossSigningKeys publishes a user's cross-signing keys. The first upload needs
// no authentication, nor does uploading the same keys again (which changes nothing);
// replacing keys needs user-interactive authentication (spec v1.11 and later). The
// self-signing and user-signing keys must be signed by the master key.
func (c *Commands) UploadCrossSigningKeys(ctx context.Context, meta Meta, req CrossSigningKeys) (eventlog.Position, error) {
	given := map[string]json.RawMessage{}
	pubs := map[string]string{}
	for kind, raw := range map[string]json.RawMessage{"master": req.Master, "self_signing": req.SelfSigning, "user_signing": req.UserSigning} {
		if raw == nil {
			continue
		}
		pub, err := publicKey(raw, req.UserID, kind)
		if err != nil {
			return eventlog.Position{}, err
		}
		given[kind], pubs[kind] = raw, pub
	}
	if len(given) == 0 {
		return eventlog.Position{}, badRequest("no key to upload")
	}
	ok := c.checkUIAPassword(ctx, req.UserID, req.Auth)
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		rows, err := c.q.E2ECrossSigningKeys(ctx, tx, req.UserID)
		if err != nil {
			return nil, err
		}
		existing := map[string][]byte{}
		for _, r := range rows {
			existing[r.Kind] = r.Key
		}
		same := true
		for kind, raw := range given {
			same = same && existing[kind] != nil && sameJSON(existing[kind], raw)
		}
		if same {
			return nil, nil // a retry: nothing new
		}
		master, masterPub := given["master"], pubs["master"]
		if master == nil {
			if master = existing["master"]; master == nil {
				return nil, badRequest("a master key is needed first")
			}
			if masterPub, err = publicKey(master, req.UserID, "master"); err != nil {
				return nil, err
			}
		}
		for _, kind := range []string{"self_signing", "user_signing"} {
			if raw := given[kind]; raw != nil && !signedBy(raw, req.UserID, masterPub, masterPub) {
				return nil, ErrInvalidSignature
			}
		}
		var events []eventlog.NewEvent
		if existing["master"] != nil {
			flows, err := c.reauthFlows(ctx, tx, req.UserID)
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256([]byte(string(req.Master) + "\x00" + string(req.SelfSigning) + "\x00" + string(req.UserSigning)))
			events, _, err = c.uia(ctx, tx, uiaRequest{kind: "cross_signing", operation: base64.RawStdEncoding.EncodeToString(sum[:]),
				userID: req.UserID, flows: flows, auth: req.Auth, passwordOK: ok}, noOtherStages)
			if err != nil {
				return events, err
			}
		}
		return append(events, eventlog.NewEvent{Stream: eventlog.E2EStream(req.UserID), Type: eventlog.TypeCrossSigningKeysUploaded,
			ExpectVersion: eventlog.AnyVersion, Data: eventlog.CrossSigningKeysUploaded{UserID: req.UserID, Master: req.Master,
				SelfSigning: req.SelfSigning, UserSigning: req.UserSigning}}), nil
	})
}

// SignatureFailure is why a signature upload was refused.
type SignatureFailure struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
}

// UploadSignatures publishes signatures a user made (POST /keys/signatures/upload):
// of their own devices by their self-signing key, of their own master key by their
// devices, and of other users' master keys by their user-signing key. Each signed
// object must be the key as stored, with the signer's signature added; the ones that
// are not are returned as failures (user → key ID → failure), and the rest are kept.
func (c *Commands) UploadSignatures(ctx context.Context, meta Meta, signer string, signed map[string]map[string]json.RawMessage) (map[string]map[string]SignatureFailure, eventlog.Position, error) {
	var failures map[string]map[string]SignatureFailure
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		failures = map[string]map[string]SignatureFailure{}
		fail := func(user, keyID, code, msg string) {
			if failures[user] == nil {
				failures[user] = map[string]SignatureFailure{}
			}
			failures[user][keyID] = SignatureFailure{Errcode: code, Error: msg}
		}
		own, err := c.crossSigningPublicKeys(ctx, tx, signer)
		if err != nil {
			return nil, err
		}
		var sigs []eventlog.KeySignature
		for _, user := range slices.Sorted(maps.Keys(signed)) {
			var theirs map[string]string
			for _, keyID := range slices.Sorted(maps.Keys(signed[user])) {
				obj := signed[user][keyID]
				var stored []byte
				var signerKeys []string // the signer's key names that may sign this key
				switch {
				case user == signer && keyID == own["master"]:
					if stored, err = c.masterKey(ctx, tx, user); err != nil {
						return nil, err
					}
					signerKeys = deviceSigners(obj, signer)
				case user == signer:
					dk, err := c.q.E2EDeviceKeysGet(ctx, tx, writedb.E2EDeviceKeysGetParams{UserID: user, DeviceID: keyID})
					if err != nil && !errors.Is(err, pgx.ErrNoRows) {
						return nil, err
					}
					stored = dk
					if own["self_signing"] != "" {
						signerKeys = []string{own["self_signing"]}
					}
				default:
					if theirs == nil {
						if theirs, err = c.crossSigningPublicKeys(ctx, tx, user); err != nil {
							return nil, err
						}
					}
					if keyID == theirs["master"] {
						if stored, err = c.masterKey(ctx, tx, user); err != nil {
							return nil, err
						}
					}
					if own["user_signing"] != "" {
						signerKeys = []string{own["user_signing"]}
					}
				}
				if stored == nil {
					fail(user, keyID, "M_NOT_FOUND", "No such key")
					continue
				}
				if !sameKey(stored, obj) {
					fail(user, keyID, "M_INVALID_PARAM", "The signed object is not the key as stored")
					continue
				}
				found := false
				for _, name := range signerKeys {
					pub := name
					if user == signer && keyID == own["master"] {
						// A device signs its master key; its ed25519 key verifies.
						if pub, err = c.deviceSigningKey(ctx, tx, signer, name); err != nil || pub == "" {
							continue
						}
					}
					sig := signatureOf(obj, signer, name)
					if sig == "" {
						continue
					}
					if !signedBy(obj, signer, name, pub) {
						fail(user, keyID, "M_INVALID_SIGNATURE", "Invalid signature")
						found = false
						break
					}
					found = true
					sigs = append(sigs, eventlog.KeySignature{UserID: user, KeyID: keyID, SignerKeyID: "ed25519:" + name, Signature: sig})
				}
				if !found {
					if _, failed := failures[user][keyID]; !failed {
						fail(user, keyID, "M_INVALID_SIGNATURE", "No signature by a key that may sign this key")
					}
				}
			}
		}
		if len(sigs) == 0 {
			return nil, nil
		}
		return []eventlog.NewEvent{{Stream: eventlog.E2EStream(signer), Type: eventlog.TypeKeySignaturesUploaded, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.KeySignaturesUploaded{Signer: signer, Signatures: sigs}}}, nil
	})
	return failures, pos, err
}

// crossSigningPublicKeys returns a user's cross-signing public keys by kind.
func (c *Commands) crossSigningPublicKeys(ctx context.Context, tx pgx.Tx, userID string) (map[string]string, error) {
	rows, err := c.q.E2ECrossSigningKeys(ctx, tx, userID)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range rows {
		var k crossSigningKey
		if json.Unmarshal(r.Key, &k) == nil {
			for _, pub := range k.Keys {
				out[r.Kind] = pub
			}
		}
	}
	return out, nil
}

// deviceSigningKey returns a device's ed25519 key ("": the device has no keys).
func (c *Commands) deviceSigningKey(ctx context.Context, tx pgx.Tx, userID, deviceID string) (string, error) {
	raw, err := c.q.E2EDeviceKeysGet(ctx, tx, writedb.E2EDeviceKeysGetParams{UserID: userID, DeviceID: deviceID})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var dk deviceKeys
	if err := json.Unmarshal(raw, &dk); err != nil {
		return "", err
	}
	return dk.Keys["ed25519:"+deviceID], nil
}

// signaturesBy returns user's signatures in obj, by key name ("ed25519:<name>").
func signaturesBy(obj json.RawMessage, user string) map[string]string {
	var o struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	_ = json.Unmarshal(obj, &o)
	return o.Signatures[user]
}

// deviceSigners returns the names of the ed25519 keys user signed obj with.
func deviceSigners(obj json.RawMessage, user string) []string {
	var names []string
	for k := range signaturesBy(obj, user) {
		if name, ok := strings.CutPrefix(k, "ed25519:"); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// signatureOf returns user's signature in obj by their key ed25519:<name>.
func signatureOf(obj json.RawMessage, user, name string) string {
	return signaturesBy(obj, user)["ed25519:"+name]
}

// masterKey returns a user's master key as stored (nil: none).
func (c *Commands) masterKey(ctx context.Context, tx pgx.Tx, user string) ([]byte, error) {
	rows, err := c.q.E2ECrossSigningKeys(ctx, tx, user)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if r.Kind == "master" {
			return r.Key, nil
		}
	}
	return nil, nil
}

// signedBy reports whether obj carries a valid signature by user's ed25519 key named
// name, whose public key is pub (unpadded base64).
func signedBy(obj json.RawMessage, user, name, pub string) bool {
	ok, err := signatures.VerifySignatureJSON(obj, id.UserID(user), name, id.Ed25519(pub))
	return err == nil && ok
}

// validKey reports whether a one-time or fallback key is a string or an object with a
// string key.
func validKey(raw json.RawMessage) bool {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s != ""
	}
	var o struct {
		Key string `json:"key"`
	}
	return json.Unmarshal(raw, &o) == nil && o.Key != ""
}

// sameJSON reports whether two JSON values are equal as values.
func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// sameKey reports whether two keys are equal but for their signatures and unsigned.
func sameKey(a, b []byte) bool {
	var x, y map[string]any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	for _, m := range []map[string]any{x, y} {
		delete(m, "signatures")
		delete(m, "unsigned")
	}
	return reflect.DeepEqual(x, y)
}
