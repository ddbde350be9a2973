package eventlog

import "encoding/json"

// To-device messages (spec: client-server API, "Send-to-Device messaging").
const (
	// TypeToDeviceSent: a device sent messages to devices of local users.
	TypeToDeviceSent = "to_device.sent.v1"
	// TypeToDeviceAcknowledged: a device synced past messages, which can go.
	TypeToDeviceAcknowledged = "to_device.acknowledged.v1"
)

func init() { Types = append(Types, TypeToDeviceSent, TypeToDeviceAcknowledged) }

// ToDeviceStream is the stream of the to-device messages a device sends or acknowledges.
func ToDeviceStream(userID, deviceID string) string { return "to_device:" + userID + "/" + deviceID }

// ToDeviceMessage is one message for one device.
type ToDeviceMessage struct {
	UserID   string          `json:"user_id"`
	DeviceID string          `json:"device_id"`
	Content  json.RawMessage `json:"content"`
}

// ToDeviceSent carries the messages of one request.
type ToDeviceSent struct {
	Sender       string            `json:"sender"`
	SenderDevice string            `json:"sender_device"`
	Type         string            `json:"type"`
	TxnID        string            `json:"txn_id"`
	Messages     []ToDeviceMessage `json:"messages"`
}

// ToDeviceAcknowledged: UserID's DeviceID has received its messages up to UpTo (the
// to-device position of a sync token).
type ToDeviceAcknowledged struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
	UpTo     int64  `json:"up_to"`
}
