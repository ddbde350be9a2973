package eventlog

// TypePresenceSet: a user set their presence (PUT /presence/{userId}/status).
const TypePresenceSet = "presence.set.v1"

func init() { Types = append(Types, TypePresenceSet) }

// PresenceStream is the stream of a user's presence.
func PresenceStream(userID string) string { return "presence:" + userID }

// PresenceSet is a user's presence state and status message (nil: none).
type PresenceSet struct {
	UserID    string  `json:"user_id"`
	Presence  string  `json:"presence"`
	StatusMsg *string `json:"status_msg,omitempty"`
}
