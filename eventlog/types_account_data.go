package eventlog

import "encoding/json"

// Account data and room tags (spec: client-server API, "Client Config", "Room Tagging").
const (
	TypeAccountDataSet = "account_data.set.v1"
	TypeRoomTagSet     = "account_data.tag_set.v1"
	TypeRoomTagRemoved = "account_data.tag_removed.v1"
)

func init() { Types = append(Types, TypeAccountDataSet, TypeRoomTagSet, TypeRoomTagRemoved) }

// AccountDataStream is the stream of a user's account data and tags.
func AccountDataStream(userID string) string { return "account_data:" + userID }

// AccountDataSet: the user's account data of Type (in RoomID, or global when empty)
// is now Content.
type AccountDataSet struct {
	UserID  string          `json:"user_id"`
	RoomID  string          `json:"room_id,omitempty"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

// RoomTagSet: the user tagged RoomID with Tag (Content: the tag's object, e.g. order).
type RoomTagSet struct {
	UserID  string          `json:"user_id"`
	RoomID  string          `json:"room_id"`
	Tag     string          `json:"tag"`
	Content json.RawMessage `json:"content"`
}

// RoomTagRemoved: the user removed Tag from RoomID.
type RoomTagRemoved struct {
	UserID string `json:"user_id"`
	RoomID string `json:"room_id"`
	Tag    string `json:"tag"`
}
