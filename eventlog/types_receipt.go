package eventlog

// TypeReceiptSent: a user read a room up to an event (spec: client-server API,
// "Receipts").
const TypeReceiptSent = "receipt.sent.v1"

func init() { Types = append(Types, TypeReceiptSent) }

// ReceiptStream is the stream of a user's receipts.
func ReceiptStream(userID string) string { return "receipts:" + userID }

// ReceiptSent is a receipt: Type is m.read or m.read.private; ThreadID is "" (an
// unthreaded receipt), "main" or a thread root; TS is when, in milliseconds.
type ReceiptSent struct {
	RoomID   string `json:"room_id"`
	UserID   string `json:"user_id"`
	Type     string `json:"type"`
	EventID  string `json:"event_id"`
	ThreadID string `json:"thread_id,omitempty"`
	TS       int64  `json:"ts"`
}
