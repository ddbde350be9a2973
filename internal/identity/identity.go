// Package identity is Spelt's client of identity servers (spec: identity service API
// v2): binding a 3PID a user validated at an identity server to their Matrix ID, and
// unbinding it, signed as the homeserver. It belongs to neither side of the log: commands
// call it outside their transactions.
package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"
)

// Error is an identity server's refusal: its status and Matrix error.
type Error struct {
	Status  int
	Errcode string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("identity server answered %d %s: %s", e.Status, e.Errcode, e.Message)
}

// ErrUnavailable wraps failures to reach an identity server or to understand it.
var ErrUnavailable = errors.New("identity server unavailable")

// Client talks to the trusted identity servers.
type Client struct {
	trusted []string
	http    *http.Client
	scheme  string
	origin  string
	key     *federation.SigningKey
}

// New returns a client of the trusted identity servers (host or host:port). client
// makes every request (it is where private addresses are refused); insecureHTTP uses
// http:// instead of https://, for tests. origin, keyID and key sign unbind requests as
// the homeserver.
func New(trusted []string, client *http.Client, insecureHTTP bool, origin, keyID string, key ed25519.PrivateKey) *Client {
	scheme := "https"
	if insecureHTTP {
		scheme = "http"
	}
	return &Client{trusted: trusted, http: client, scheme: scheme, origin: origin,
		key: &federation.SigningKey{ID: id.KeyID(keyID), Priv: key}}
}

// Trusted reports whether server is one of the trusted identity servers.
func (c *Client) Trusted(server string) bool { return slices.Contains(c.trusted, server) }

// Bind asks server to bind the 3PID of the validation session (sid, clientSecret) to
// mxid, authenticated by the user's access token at the identity server
// (POST /_matrix/identity/v2/3pid/bind). It returns the bound medium and address.
func (c *Client) Bind(ctx context.Context, server, accessToken, sid, clientSecret, mxid string) (medium, address string, err error) {
	body, _ := json.Marshal(map[string]string{"sid": sid, "client_secret": clientSecret, "mxid": mxid})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.scheme+"://"+server+"/_matrix/identity/v2/3pid/bind", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	var out struct {
		Medium  string `json:"medium"`
		Address string `json:"address"`
		MXID    string `json:"mxid"`
	}
	if err := c.do(req, &out); err != nil {
		return "", "", err
	}
	if out.MXID != mxid || out.Medium == "" || out.Address == "" {
		return "", "", fmt.Errorf("%w: the bind answer is not for %s", ErrUnavailable, mxid)
	}
	return out.Medium, out.Address, nil
}

// Unbind asks server to remove the binding of a 3PID to mxid
// (POST /_matrix/identity/v2/3pid/unbind), signed as the homeserver with X-Matrix.
func (c *Client) Unbind(ctx context.Context, server, mxid, medium, address string) error {
	const path = "/_matrix/identity/v2/3pid/unbind"
	body, _ := json.Marshal(map[string]any{"mxid": mxid, "threepid": map[string]string{"medium": medium, "address": address}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.scheme+"://"+server+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	sig, err := c.key.SignJSON(signedRequest{Method: http.MethodPost, URI: path, Origin: c.origin, Destination: server, Content: body})
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", federation.XMatrixAuth{Origin: c.origin, Destination: server, KeyID: c.key.ID, Signature: sig}.String())
	return c.do(req, nil)
}

// signedRequest is what an X-Matrix signature covers (spec: server-server API,
// "Request Authentication").
type signedRequest struct {
	Method      string          `json:"method"`
	URI         string          `json:"uri"`
	Origin      string          `json:"origin"`
	Destination string          `json:"destination"`
	Content     json.RawMessage `json:"content,omitempty"`
}

// maxAnswer bounds an identity server's answer.
const maxAnswer = 64 << 10

func (c *Client) do(req *http.Request, out any) error {
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Errcode string `json:"errcode"`
			Error   string `json:"error"`
		}
		if resp.StatusCode >= 500 || json.Unmarshal(body, &e) != nil || e.Errcode == "" {
			return fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
		}
		return &Error{Status: resp.StatusCode, Errcode: e.Errcode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// Lookup returns the Matrix ID a 3PID is bound to at server ("" when none), asking
// with the user's access token there (GET /hash_details, then POST /lookup with the
// sha256 algorithm when offered, as the spec recommends, else none).
func (c *Client) Lookup(ctx context.Context, server, accessToken, medium, address string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme+"://"+server+"/_matrix/identity/v2/hash_details", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	var details struct {
		Algorithms []string `json:"algorithms"`
		Pepper     string   `json:"lookup_pepper"`
	}
	if err := c.do(req, &details); err != nil {
		return "", err
	}
	query := address + " " + medium
	algorithm := "none"
	if slices.Contains(details.Algorithms, "sha256") {
		algorithm = "sha256"
		sum := sha256.Sum256([]byte(query + " " + details.Pepper))
		query = base64.RawURLEncoding.EncodeToString(sum[:])
	} else if !slices.Contains(details.Algorithms, "none") {
		return "", fmt.Errorf("%w: no lookup algorithm in common", ErrUnavailable)
	}
	body, _ := json.Marshal(map[string]any{"addresses": []string{query}, "algorithm": algorithm, "pepper": details.Pepper})
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.scheme+"://"+server+"/_matrix/identity/v2/lookup", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	var out struct {
		Mappings map[string]string `json:"mappings"`
	}
	if err := c.do(req, &out); err != nil {
		return "", err
	}
	return out.Mappings[query], nil
}

// Invite is what an identity server is told of a third-party invite it stores.
type Invite struct {
	Medium            string `json:"medium"`
	Address           string `json:"address"`
	RoomID            string `json:"room_id"`
	Sender            string `json:"sender"`
	RoomAlias         string `json:"room_alias,omitempty"`
	RoomAvatarURL     string `json:"room_avatar_url,omitempty"`
	RoomJoinRules     string `json:"room_join_rules,omitempty"`
	RoomName          string `json:"room_name,omitempty"`
	RoomType          string `json:"room_type,omitempty"`
	SenderDisplayName string `json:"sender_display_name,omitempty"`
	SenderAvatarURL   string `json:"sender_avatar_url,omitempty"`
}

// StoredInvite is an identity server's answer to a stored invite: the token the
// m.room.third_party_invite event is keyed by, the keys that will sign the invitee's
// membership, and a display name for the invitee that does not give the address away.
type StoredInvite struct {
	Token       string            `json:"token"`
	DisplayName string            `json:"display_name"`
	PublicKeys  []json.RawMessage `json:"public_keys"`
}

// StoreInvite asks server to store a third-party invite and to tell the invitee
// (POST /_matrix/identity/v2/store-invite), with the inviter's access token there.
func (c *Client) StoreInvite(ctx context.Context, server, accessToken string, inv Invite) (StoredInvite, error) {
	body, _ := json.Marshal(inv)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.scheme+"://"+server+"/_matrix/identity/v2/store-invite", bytes.NewReader(body))
	if err != nil {
		return StoredInvite{}, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	var out StoredInvite
	if err := c.do(req, &out); err != nil {
		return StoredInvite{}, err
	}
	if out.Token == "" || len(out.PublicKeys) == 0 {
		return StoredInvite{}, fmt.Errorf("%w: the stored invite has no token or keys", ErrUnavailable)
	}
	return out, nil
}
