package queries

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"spelt.dev/spelt/sql/gen/readdb"
)

// KeysQuery is the answer of POST /keys/query for this server's users.
type KeysQuery struct {
	DeviceKeys      map[string]map[string]json.RawMessage `json:"device_keys"`
	MasterKeys      map[string]json.RawMessage            `json:"master_keys"`
	SelfSigningKeys map[string]json.RawMessage            `json:"self_signing_keys"`
	UserSigningKeys map[string]json.RawMessage            `json:"user_signing_keys"`
}

// QueryKeys returns the keys of want's users (user → device IDs, empty: all devices)
// as viewer sees them: device keys with the device's display name, and cross-signing
// keys. Signatures uploaded apart are merged in, except that another user's signature
// of a master key is shown only to that user (spec: "Cross-signing"); a user-signing
// key is shown only to its owner.
func (q *Queries) QueryKeys(ctx context.Context, viewer string, want map[string][]string) (*KeysQuery, error) {
	out := &KeysQuery{DeviceKeys: map[string]map[string]json.RawMessage{}, MasterKeys: map[string]json.RawMessage{},
		SelfSigningKeys: map[string]json.RawMessage{}, UserSigningKeys: map[string]json.RawMessage{}}
	users := make([]string, 0, len(want))
	for u := range want {
		users = append(users, u)
		out.DeviceKeys[u] = map[string]json.RawMessage{}
	}
	rows, err := q.q.E2EDeviceKeysOf(ctx, q.pool, users)
	if err != nil {
		return nil, fmt.Errorf("query keys: %w", err)
	}
	for _, r := range rows {
		if devices := want[r.UserID]; len(devices) > 0 && !slices.Contains(devices, r.DeviceID) {
			continue
		}
		keys, err := withSignatures(r.Keys, r.Signatures, func(string) bool { return true })
		if err != nil {
			return nil, err
		}
		if r.DisplayName != nil {
			keys["unsigned"], _ = json.Marshal(map[string]string{"device_display_name": *r.DisplayName})
		}
		if out.DeviceKeys[r.UserID][r.DeviceID], err = json.Marshal(keys); err != nil {
			return nil, err
		}
	}
	cross, err := q.q.E2ECrossSigningKeysOf(ctx, q.pool, users)
	if err != nil {
		return nil, fmt.Errorf("query keys: %w", err)
	}
	for _, r := range cross {
		if r.Kind == "user_signing" && r.UserID != viewer {
			continue
		}
		owner := r.UserID
		key, err := withSignatures(r.Key, r.Signatures, func(signer string) bool { return signer == owner || signer == viewer })
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(key)
		if err != nil {
			return nil, err
		}
		map[string]map[string]json.RawMessage{"master": out.MasterKeys, "self_signing": out.SelfSigningKeys,
			"user_signing": out.UserSigningKeys}[r.Kind][r.UserID] = b
	}
	return out, nil
}

// withSignatures returns a key object with the signatures uploaded apart (a JSON list
// of [signer, key ID, signature]) of the signers show allows added to its own.
func withSignatures(key, extra string, show func(signer string) bool) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(key), &obj); err != nil {
		return nil, fmt.Errorf("stored key: %w", err)
	}
	var added [][3]string
	if err := json.Unmarshal([]byte(extra), &added); err != nil {
		return nil, fmt.Errorf("stored signatures: %w", err)
	}
	if len(added) == 0 {
		return obj, nil
	}
	sigs := map[string]map[string]string{}
	if raw, ok := obj["signatures"]; ok {
		_ = json.Unmarshal(raw, &sigs)
	}
	for _, s := range added {
		if !show(s[0]) {
			continue
		}
		if sigs[s[0]] == nil {
			sigs[s[0]] = map[string]string{}
		}
		sigs[s[0]][s[1]] = s[2]
	}
	var err error
	obj["signatures"], err = json.Marshal(sigs)
	return obj, err
}

type keyCounts struct {
	oneTime  map[string]int
	fallback []string
}

// ForgetKeyCounts empties the cache of devices' key counts (every /sync response
// carries them, so that most syncs read none); call it whenever the e2e_keys read model
// moves.
func (q *Queries) ForgetKeyCounts() { q.keyCounts.forget() }

// KeyCounts returns a device's unclaimed one-time keys by algorithm (signed_curve25519
// always present, as clients expect) and its unused fallback key algorithms. The
// result is shared: callers must not change it.
func (q *Queries) KeyCounts(ctx context.Context, userID, deviceID string) (map[string]int, []string, error) {
	k := [2]string{userID, deviceID}
	e, gen, ok := q.keyCounts.get(k)
	if ok {
		return e.oneTime, e.fallback, nil
	}
	counts, fallback, err := q.readKeyCounts(ctx, userID, deviceID)
	if err != nil {
		return nil, nil, err
	}
	q.keyCounts.put(k, keyCounts{counts, fallback}, gen)
	return counts, fallback, nil
}

func (q *Queries) readKeyCounts(ctx context.Context, userID, deviceID string) (map[string]int, []string, error) {
	r, err := q.q.E2EKeyCounts(ctx, q.pool, readdb.E2EKeyCountsParams{UserID: userID, DeviceID: deviceID})
	if err != nil {
		return nil, nil, fmt.Errorf("key counts: %w", err)
	}
	counts := map[string]int{"signed_curve25519": 0}
	var fallback []string
	if err := json.Unmarshal([]byte(r.OneTime), &counts); err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal([]byte(r.Fallback), &fallback); err != nil {
		return nil, nil, err
	}
	return counts, fallback, nil
}

// KeyChanges answers GET /keys/changes: the users whose device lists changed between
// two sync tokens, that the viewer shares a room with now (changed), and the users the
// viewer stopped sharing any room with (left).
func (q *Queries) KeyChanges(ctx context.Context, viewer string, from, to SyncToken) (changed, left []string, err error) {
	now, err := q.SyncPositions(ctx)
	if err != nil {
		return nil, nil, err
	}
	to.Rooms, to.DeviceLists = min(to.Rooms, now.Rooms), min(to.DeviceLists, now.DeviceLists)
	ms, err := q.q.SyncMemberships(ctx, q.pool, readdb.SyncMembershipsParams{UserID: viewer, At: to.Rooms})
	if err != nil {
		return nil, nil, fmt.Errorf("key changes: %w", err)
	}
	return q.deviceListChanges(ctx, viewer, from, to, ms, true)
}

// deviceListChanges returns whose device lists the viewer should refetch after since
// up to at (spec: "Tracking the device list for a user"): users sharing a room with the
// viewer whose devices or keys changed, users who joined one of the viewer's rooms and
// every member of rooms the viewer joined (changed), and users the viewer no longer
// shares any room with (left). memberships are the viewer's at at.Rooms; memberMoves
// says whether membership may have changed in the viewer's rooms (else their member
// events are not read).
func (q *Queries) deviceListChanges(ctx context.Context, viewer string, since, at SyncToken, memberships []readdb.SyncMembershipsRow, memberMoves bool) (changed, left []string, err error) {
	var joined, newlyJoined, gone []string
	for _, m := range memberships {
		switch {
		case m.Membership == "join":
			joined = append(joined, m.RoomID)
			if m.FromOrdering > since.Rooms {
				newlyJoined = append(newlyJoined, m.RoomID)
			}
		case m.FromOrdering > since.Rooms:
			gone = append(gone, m.RoomID)
		}
	}
	set := map[string]bool{}
	if since.DeviceLists < at.DeviceLists {
		users, err := q.q.DeviceListChangedUsers(ctx, q.pool, readdb.DeviceListChangedUsersParams{Since: since.DeviceLists, At: at.DeviceLists,
			Viewer: viewer, RoomIds: joined})
		if err != nil {
			return nil, nil, fmt.Errorf("device list changes: %w", err)
		}
		for _, u := range users {
			set[u] = true
		}
	}
	maybeLeft := map[string]bool{}
	if memberMoves && since.Rooms < at.Rooms && len(joined)+len(gone) > 0 {
		if len(newlyJoined) > 0 {
			members, err := q.q.CoMembersAt(ctx, q.pool, readdb.CoMembersAtParams{RoomIds: newlyJoined, At: at.Rooms})
			if err != nil {
				return nil, nil, fmt.Errorf("device list changes: %w", err)
			}
			for _, u := range members {
				set[u] = true
			}
		}
		if len(gone) > 0 {
			members, err := q.q.CoMembersAt(ctx, q.pool, readdb.CoMembersAtParams{RoomIds: gone, At: at.Rooms})
			if err != nil {
				return nil, nil, fmt.Errorf("device list changes: %w", err)
			}
			for _, u := range members {
				maybeLeft[u] = true
			}
		}
		moves, err := q.q.MembershipChangesIn(ctx, q.pool, readdb.MembershipChangesInParams{RoomIds: joined, Since: since.Rooms, At: at.Rooms})
		if err != nil {
			return nil, nil, fmt.Errorf("device list changes: %w", err)
		}
		for _, m := range moves {
			if m.Membership == "join" {
				set[m.StateKey] = true
			} else if m.Membership == "leave" || m.Membership == "ban" {
				maybeLeft[m.StateKey] = true
			}
		}
	}
	if len(maybeLeft) > 0 {
		still := map[string]bool{}
		if len(joined) > 0 {
			members, err := q.q.CoMembersAt(ctx, q.pool, readdb.CoMembersAtParams{RoomIds: joined, At: at.Rooms})
			if err != nil {
				return nil, nil, fmt.Errorf("device list changes: %w", err)
			}
			for _, u := range members {
				still[u] = true
			}
		}
		for u := range maybeLeft {
			if !still[u] && u != viewer {
				left = append(left, u)
				delete(set, u)
			}
		}
	}
	for u := range set {
		changed = append(changed, u)
	}
	slices.Sort(changed)
	slices.Sort(left)
	return orEmptyStrings(changed), orEmptyStrings(left), nil
}

func orEmptyStrings(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
