package eventlog

import "encoding/json"

// Room event types.
const (
	// TypeRoomEventAccepted: a room event (PDU) passed the auth rules and is part of its
	// room's history. Its stream is the room's.
	TypeRoomEventAccepted = "room.event_accepted.v1"
	// TypeAliasCreated and TypeAliasDeleted: a room alias of this server now points at
	// a room, or no longer does. Their stream is the alias's.
	TypeAliasCreated = "directory.alias_created.v1"
	TypeAliasDeleted = "directory.alias_deleted.v1"
	// TypeRoomPublished: a room was added to or removed from the server's room directory.
	TypeRoomPublished = "directory.room_published.v1"
	// TypeRoomForgotten: a user forgot a room they left.
	TypeRoomForgotten = "room.forgotten.v1"
	// TypeEventReported: a user reported an event or a room to the server's operators.
	TypeEventReported = "report.filed.v1"
)

func init() {
	Types = append(Types, TypeRoomEventAccepted, TypeAliasCreated, TypeAliasDeleted, TypeRoomPublished,
		TypeRoomForgotten, TypeEventReported)
}

// RoomStream is the stream of a room's events.
func RoomStream(roomID string) string { return "room:" + roomID }

// AliasStream is the stream of a room alias.
func AliasStream(alias string) string { return "alias:" + alias }

// RoomEventAccepted carries a room event in its federation form, exactly as signed.
type RoomEventAccepted struct {
	RoomID      string          `json:"room_id"`
	EventID     string          `json:"event_id"`
	RoomVersion string          `json:"room_version"`
	PDU         json.RawMessage `json:"pdu"`
	// TxnID and DeviceID are the client transaction of a local send, so that the
	// sender's device sees unsigned.transaction_id and a retried request gets the same
	// event.
	TxnID    string `json:"txn_id,omitempty"`
	DeviceID string `json:"device_id,omitempty"`
	// TxnScope is the endpoint of the transaction ("send", "redact", "state"...).
	TxnScope string `json:"txn_scope,omitempty"`
}

// AliasCreated: Alias points at RoomID; Creator may delete it.
type AliasCreated struct {
	Alias   string `json:"alias"`
	RoomID  string `json:"room_id"`
	Creator string `json:"creator"`
}

// AliasDeleted: Alias no longer points anywhere.
type AliasDeleted struct {
	Alias  string `json:"alias"`
	RoomID string `json:"room_id"`
}

// RoomPublished: the room is (Public) or is not in the server's room directory.
type RoomPublished struct {
	RoomID string `json:"room_id"`
	Public bool   `json:"public"`
}

// RoomForgotten: UserID forgot RoomID.
type RoomForgotten struct {
	RoomID string `json:"room_id"`
	UserID string `json:"user_id"`
}

// EventReported: Reporter reported EventID (empty: the whole room) in RoomID.
type EventReported struct {
	RoomID   string `json:"room_id"`
	EventID  string `json:"event_id,omitempty"`
	Reporter string `json:"reporter"`
	Reason   string `json:"reason,omitempty"`
	Score    *int   `json:"score,omitempty"`
}
