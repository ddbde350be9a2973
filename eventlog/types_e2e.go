package eventlog

import "encoding/json"

// End-to-end encryption keys (spec: client-server API, "End-to-End Encryption").
const (
	// TypeDeviceKeysUploaded: a device published (or replaced) its identity keys.
	TypeDeviceKeysUploaded = "e2e.device_keys_uploaded.v1"
	// TypeOneTimeKeysUploaded: a device published one-time keys.
	TypeOneTimeKeysUploaded = "e2e.one_time_keys_uploaded.v1"
	// TypeFallbackKeysUploaded: a device published fallback keys, replacing earlier ones
	// of the same algorithms.
	TypeFallbackKeysUploaded = "e2e.fallback_keys_uploaded.v1"
	// TypeKeysClaimed: a user claimed one key of each of some devices.
	TypeKeysClaimed = "e2e.keys_claimed.v1"
	// TypeCrossSigningKeysUploaded: a user published cross-signing keys.
	TypeCrossSigningKeysUploaded = "e2e.cross_signing_keys_uploaded.v1"
	// TypeKeySignaturesUploaded: a user published signatures of keys.
	TypeKeySignaturesUploaded = "e2e.key_signatures_uploaded.v1"
)

func init() {
	Types = append(Types, TypeDeviceKeysUploaded, TypeOneTimeKeysUploaded, TypeFallbackKeysUploaded, TypeKeysClaimed,
		TypeCrossSigningKeysUploaded, TypeKeySignaturesUploaded)
}

// E2EStream is the stream of a user's end-to-end encryption keys.
func E2EStream(userID string) string { return "e2e:" + userID }

// DeviceKeysUploaded carries a device's signed device keys, as uploaded.
type DeviceKeysUploaded struct {
	UserID   string          `json:"user_id"`
	DeviceID string          `json:"device_id"`
	Keys     json.RawMessage `json:"keys"`
}

// OneTimeKeysUploaded carries a device's new one-time keys ("algorithm:id" → key);
// keys it had already are not repeated.
type OneTimeKeysUploaded struct {
	UserID   string                     `json:"user_id"`
	DeviceID string                     `json:"device_id"`
	Keys     map[string]json.RawMessage `json:"keys"`
}

// FallbackKeysUploaded carries a device's fallback keys ("algorithm:id" → key), at most
// one per algorithm.
type FallbackKeysUploaded struct {
	UserID   string                     `json:"user_id"`
	DeviceID string                     `json:"device_id"`
	Keys     map[string]json.RawMessage `json:"keys"`
}

// ClaimedKey is a key handed out by a claim. A one-time key is gone once claimed; a
// fallback key stays, marked used.
type ClaimedKey struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
	KeyID    string `json:"key_id"` // "algorithm:id"
	Fallback bool   `json:"fallback,omitempty"`
}

// KeysClaimed lists the keys one claim (POST /keys/claim) took.
type KeysClaimed struct {
	Claimer string       `json:"claimer"`
	Keys    []ClaimedKey `json:"keys"`
}

// CrossSigningKeysUploaded carries the cross-signing keys a user uploaded; absent ones
// stay as they were.
type CrossSigningKeysUploaded struct {
	UserID      string          `json:"user_id"`
	Master      json.RawMessage `json:"master,omitempty"`
	SelfSigning json.RawMessage `json:"self_signing,omitempty"`
	UserSigning json.RawMessage `json:"user_signing,omitempty"`
}

// ByKind returns the uploaded keys by kind ("master", "self_signing", "user_signing").
func (d CrossSigningKeysUploaded) ByKind() map[string][]byte {
	out := map[string][]byte{}
	for kind, key := range map[string]json.RawMessage{"master": d.Master, "self_signing": d.SelfSigning, "user_signing": d.UserSigning} {
		if key != nil {
			out[kind] = key
		}
	}
	return out
}

// KeySignature is one signature of a key: a device (KeyID is its device ID) or a
// cross-signing key (KeyID is its public key), by the signer's key SignerKeyID
// ("ed25519:<id>").
type KeySignature struct {
	UserID      string `json:"user_id"`
	KeyID       string `json:"key_id"`
	SignerKeyID string `json:"signer_key_id"`
	Signature   string `json:"signature"`
}

// KeySignaturesUploaded carries signatures a user made, each verified.
type KeySignaturesUploaded struct {
	Signer     string         `json:"signer"`
	Signatures []KeySignature `json:"signatures"`
}
