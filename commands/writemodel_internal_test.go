package commands

import (
	"encoding/json"
	"testing"

	"spelt.dev/spelt/eventlog"
)

// A room event's payload is the same whether a command appends it with its parsed
// event (acceptedEvent) or alone.
func TestAcceptedEventMarshalsAsItsPayload(t *testing.T) {
	d := eventlog.RoomEventAccepted{RoomID: "!r:x", EventID: "$e", RoomVersion: "10", PDU: json.RawMessage(`{"type":"m.room.message"}`),
		TxnID: "t1", DeviceID: "D", TxnScope: "send:!r:x"}
	want, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(acceptedEvent{RoomEventAccepted: d})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("acceptedEvent marshals as %s, want %s", got, want)
	}
}
