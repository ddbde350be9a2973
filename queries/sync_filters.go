package queries

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"spelt.dev/spelt/internal/pdus"
)

// filterEvents keeps the events of list that f lets through (types, senders; rooms for
// room), at most f.Limit of them (spec: client-server API, "Filtering"). It serves the
// sections whose events are not room events: account data, presence, ephemeral.
func filterEvents(list []json.RawMessage, f RoomEventFilter, room string) []json.RawMessage {
	if room != "" && (f.Rooms != nil && !slices.Contains(*f.Rooms, room) || slices.Contains(f.NotRooms, room)) {
		return []json.RawMessage{}
	}
	out := list[:0:0]
	for _, e := range list {
		r := eventRow{Type: gjson.GetBytes(e, "type").Str, Sender: gjson.GetBytes(e, "sender").Str, Event: string(e)}
		if f.matches(&r) {
			out = append(out, e)
		}
	}
	if f.Limit != nil && *f.Limit >= 0 && len(out) > *f.Limit {
		out = out[:*f.Limit]
	}
	return out
}

// applyFilters applies the filter's non-timeline parts to a sync response: the account
// data, presence and ephemeral filters, and event_fields on room events.
func applyFilters(out *Sync, f SyncFilter) {
	out.AccountData.Events = filterEvents(out.AccountData.Events, f.AccountData, "")
	out.Presence.Events = filterEvents(out.Presence.Events, f.Presence, "")
	for room, jr := range out.Rooms.Join {
		jr.AccountData.Events = filterEvents(jr.AccountData.Events, f.Room.AccountData, room)
		jr.Ephemeral.Events = filterEvents(jr.Ephemeral.Events, f.Room.Ephemeral, room)
		jr.State.Events = onlyFields(jr.State.Events, f.EventFields)
		jr.Timeline.Events = onlyFields(jr.Timeline.Events, f.EventFields)
	}
	for room, lr := range out.Rooms.Leave {
		lr.AccountData.Events = filterEvents(lr.AccountData.Events, f.Room.AccountData, room)
		lr.State.Events = onlyFields(lr.State.Events, f.EventFields)
		lr.Timeline.Events = onlyFields(lr.Timeline.Events, f.EventFields)
	}
}

// onlyFields keeps of each event only the fields named (event_fields: dot-separated
// paths, "\." for a dot within a name); none named keeps everything. The fields every
// client event must have (the spec's schema requires them, and lets a server include
// more than was asked) stay, content reduced to the named fields.
func onlyFields(list []json.RawMessage, fields []string) []json.RawMessage {
	if len(fields) == 0 {
		return list
	}
	paths := make([][]string, len(fields))
	for i, f := range fields {
		paths[i] = splitEscaped(f)
	}
	out := make([]json.RawMessage, 0, len(list))
	for _, e := range list {
		var obj map[string]any
		if json.Unmarshal(e, &obj) != nil {
			out = append(out, e)
			continue
		}
		kept := map[string]any{"content": map[string]any{}}
		for _, k := range []string{"type", "event_id", "sender", "origin_server_ts", "state_key"} {
			if v, ok := obj[k]; ok {
				kept[k] = v
			}
		}
		for _, p := range paths {
			copyPath(obj, kept, p)
		}
		b, err := json.Marshal(kept)
		if err != nil {
			b = e
		}
		out = append(out, b)
	}
	return out
}

// copyPath copies the value at path in from into to, creating the objects on the way.
func copyPath(from, to map[string]any, path []string) {
	v, ok := from[path[0]]
	if !ok {
		return
	}
	if len(path) == 1 {
		to[path[0]] = v
		return
	}
	sub, ok := v.(map[string]any)
	if !ok {
		return
	}
	next, ok := to[path[0]].(map[string]any)
	if !ok {
		next = map[string]any{}
		to[path[0]] = next
	}
	copyPath(sub, next, path[1:])
}

// splitEscaped splits a field path on dots not escaped with a backslash.
func splitEscaped(s string) []string {
	var parts []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '.':
			b.WriteByte('.')
			i++
		case s[i] == '.':
			parts = append(parts, b.String())
			b.Reset()
		default:
			b.WriteByte(s[i])
		}
	}
	return append(parts, b.String())
}

// federationFormat replaces the room events of a sync response (timelines and state)
// by their PDUs (event_format "federation"), with their event ID and unsigned data. A
// PDU whose content the client format hides (an erased user's event) is redacted.
func (q *Queries) federationFormat(ctx context.Context, out *Sync) error {
	var lists []*[]json.RawMessage
	for _, jr := range out.Rooms.Join {
		lists = append(lists, &jr.State.Events, &jr.Timeline.Events)
	}
	for _, lr := range out.Rooms.Leave {
		lists = append(lists, &lr.State.Events, &lr.Timeline.Events)
	}
	var ids []string
	for _, l := range lists {
		for _, e := range *l {
			ids = append(ids, gjson.GetBytes(e, "event_id").Str)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := q.q.RoomEventPDUs(ctx, q.pool, ids)
	if err != nil {
		return fmt.Errorf("federation format: %w", err)
	}
	byID := make(map[string]string, len(rows))
	for _, r := range rows {
		byID[r.EventID] = r.Pdu
	}
	for _, l := range lists {
		for i, e := range *l {
			r := gjson.GetManyBytes(e, "event_id", "content", "unsigned", "room_id")
			p, ok := byID[r[0].Str]
			if !ok {
				continue
			}
			pdu := []byte(p)
			var client, full any
			_ = json.Unmarshal([]byte(r[1].Raw), &client)
			_ = json.Unmarshal([]byte(gjson.Get(p, "content").Raw), &full)
			if !reflect.DeepEqual(client, full) {
				info, err := q.q.RoomInfo(ctx, q.pool, gjson.Get(p, "room_id").Str)
				if err != nil {
					return fmt.Errorf("federation format: %w", err)
				}
				if pdu, err = pdus.RedactPDU(info.RoomVersion, pdu); err != nil {
					return err
				}
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(pdu, &obj); err != nil {
				return err
			}
			obj["event_id"], _ = json.Marshal(r[0].Str)
			if r[2].Exists() {
				obj["unsigned"] = json.RawMessage(r[2].Raw)
			}
			if (*l)[i], err = json.Marshal(obj); err != nil {
				return err
			}
		}
	}
	return nil
}
