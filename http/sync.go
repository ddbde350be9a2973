package http

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/queries"
)

// SyncQueries answer /sync.
type SyncQueries interface {
	Sync(ctx context.Context, v queries.Viewer, req queries.SyncRequest) (*queries.Sync, error)
	AddUnreadCounts(ctx context.Context, v queries.Viewer, res *queries.Sync, byThread bool) error
}

// syncProjectors are the read models /sync reads; a long-poll wakes when one moves.
var syncProjectors = []string{"rooms", "account_data", "presence", "receipts", "to_device", "e2e_keys"}

// maxSyncTimeout bounds a long-poll.
const maxSyncTimeout = 5 * time.Minute

// sync: GET /_matrix/client/v3/sync.
func (s *Server) sync(c echo.Context) error {
	ctx := c.Request().Context()
	req := queries.SyncRequest{}
	if v := c.QueryParam("since"); v != "" {
		t, err := queries.ParseSyncToken(v)
		if err != nil {
			return err
		}
		req.Since = &t
	}
	var timeout time.Duration
	if v := c.QueryParam("timeout"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return errInvalidParam("timeout must be a non-negative number of milliseconds")
		}
		timeout = min(time.Duration(ms)*time.Millisecond, maxSyncTimeout)
	}
	switch c.QueryParam("full_state") {
	case "", "false":
	case "true":
		req.FullState = true
	default:
		return errInvalidParam("full_state must be true or false")
	}
	setPresence := c.QueryParam("set_presence")
	switch setPresence {
	case "":
		setPresence = "online" // a syncing client is online unless it says otherwise
	case "online", "offline", "unavailable":
	default:
		return errInvalidParam("set_presence must be online, offline or unavailable")
	}
	if err := s.syncPresence(c, setPresence); err != nil {
		return err
	}
	if f := c.QueryParam("filter"); f != "" {
		raw := json.RawMessage(f)
		if !strings.HasPrefix(strings.TrimSpace(f), "{") {
			var err error
			if raw, err = s.q.Filter(ctx, identity(c).UserID, f); err != nil {
				return errNotFound("Unknown filter %q", f)
			}
		}
		if err := json.Unmarshal(raw, &req.Filter); err != nil {
			return errInvalidParam("filter is not a valid filter: %v", err)
		}
	}
	req.Typing = s.cfg.Typing.Changes
	if id := identity(c); id.DeviceID != "" {
		req.Members = s.memberCaches.of(id.UserID, id.DeviceID)
	}
	deadline := time.Now().Add(timeout)
	var keys []string // what this user's long-poll waits on, once known
	for {
		// Once the keys are known, watch them before reading: a change after that
		// wakes the watch. Before, take the projectors' channels: a move between the
		// read and the first watch means reading again.
		var woke <-chan struct{}
		stop := func() {}
		var moved []<-chan struct{}
		if keys != nil {
			woke, stop = s.wait.Watch(keys...)
		} else {
			moved = make([]<-chan struct{}, 0, len(syncProjectors)+1)
			for _, p := range syncProjectors {
				moved = append(moved, s.wait.Moved(p))
			}
			moved = append(moved, s.cfg.Typing.Moved())
		}
		s.syncLooks.Add(1)
		res, err := s.q.Sync(ctx, viewer(c), req)
		if err != nil {
			stop()
			return err
		}
		if res.ToDeviceAck > 0 {
			// The client has the messages up to its token: they can go (spec: "the
			// server should delete them once the client has acknowledged them").
			id := identity(c)
			pos, err := s.cmd.AcknowledgeToDevice(ctx, meta(c, eventlog.OriginClient), id.UserID, id.DeviceID, res.ToDeviceAck)
			if err == nil {
				err = s.wait.WaitFor(ctx, pos, "to_device")
			}
			if err != nil {
				stop()
				return err
			}
			req.Since.Acked = req.Since.ToDevice // once, not on every look of a long-poll
		}
		if res.Joined != nil {
			s.wakeKeys.set(identity(c).UserID, res.Joined)
		}
		left := time.Until(deadline)
		if req.Since == nil || !res.Empty() || left <= 0 {
			stop()
			return s.syncAnswer(c, req, res)
		}
		if keys == nil {
			// Only changes that concern the user wake the long-poll: theirs (account
			// data, invites, to-device messages, their memberships) and their rooms'
			// (events, receipts, typing, members' presence and devices).
			if keys, err = s.syncWakeKeys(ctx, identity(c).UserID); err != nil {
				return err
			}
			woke, stop = s.wait.Watch(keys...)
			if anyClosed(moved) {
				stop()
				continue
			}
		}
		ok := waitAny(ctx, []<-chan struct{}{woke}, left)
		stop()
		if !ok {
			s.syncLooks.Add(1)
			res, err = s.q.Sync(ctx, viewer(c), req)
			if err != nil {
				return err
			}
			return s.syncAnswer(c, req, res)
		}
	}
}

// syncWakeKeys are the wake keys of a user's long-poll: the user's and their joined
// rooms'. The rooms come from the user's last sync that read them (any change of the
// user's memberships wakes them by their own key, and the sync that follows reads
// the rooms again), else from the read model.
func (s *Server) syncWakeKeys(ctx context.Context, user string) ([]string, error) {
	if keys := s.wakeKeys.get(user); keys != nil {
		return keys, nil
	}
	rooms, err := s.q.JoinedRooms(ctx, user)
	if err != nil {
		return nil, err
	}
	return s.wakeKeys.set(user, rooms), nil
}

// wakeKeyCache remembers users' wake keys between their syncs.
type wakeKeyCache struct {
	mu   sync.Mutex
	keys map[string][]string
}

// maxWakeKeyUsers bounds the cache; past it, it starts again empty.
const maxWakeKeyUsers = 100_000

func (w *wakeKeyCache) get(user string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.keys[user]
}

// set records a user's joined rooms and returns their wake keys.
func (w *wakeKeyCache) set(user string, rooms []string) []string {
	keys := make([]string, 0, len(rooms)+1)
	keys = append(keys, eventlog.UserWakeKey(user))
	for _, r := range rooms {
		keys = append(keys, eventlog.RoomWakeKey(r))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.keys == nil || len(w.keys) >= maxWakeKeyUsers {
		w.keys = map[string][]string{}
	}
	w.keys[user] = keys
	return keys
}

// anyClosed reports whether one of chans is closed.
func anyClosed(chans []<-chan struct{}) bool {
	for _, ch := range chans {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

// SyncLooks is how many times /sync requests have read the read models since the
// server started (a long-poll reads once, then again each time it wakes).
func (s *Server) SyncLooks() int64 { return s.syncLooks.Load() }

// syncAnswer sends a sync response with the device's key counts, which every response
// carries, and the unread counts of its rooms (read only now, so that a long-poll's
// empty looks cost nothing more; the rooms projector writes the counts' rows in the
// transactions of the events, so they match the timelines).
func (s *Server) syncAnswer(c echo.Context, req queries.SyncRequest, res *queries.Sync) error {
	ctx := c.Request().Context()
	id := identity(c)
	var err error
	if res.OTKCounts, res.FallbackKeys, err = s.q.KeyCounts(ctx, id.UserID, id.DeviceID); err != nil {
		return err
	}
	if len(res.Rooms.Join) > 0 {
		if err := s.q.AddUnreadCounts(ctx, viewer(c), res, req.Filter.Room.Timeline.UnreadThreadNotifications); err != nil {
			return err
		}
	}
	return c.JSON(nethttp.StatusOK, res)
}

// waitAny waits until one of chans is closed (true), d passes or ctx ends (false).
func waitAny(ctx context.Context, chans []<-chan struct{}, d time.Duration) bool {
	merged := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	for _, ch := range chans {
		if ch == nil {
			continue
		}
		go func() {
			select {
			case <-ch:
				select {
				case merged <- struct{}{}:
				default:
				}
			case <-stop:
			}
		}()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-merged:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// syncPresence marks the syncing user with presence (set_presence), writing to the log
// only when it changes their presence ("offline" leaves it alone, as Synapse does).
func (s *Server) syncPresence(c echo.Context, presence string) error {
	if !s.cfg.Presence || presence == "offline" {
		return nil
	}
	id := identity(c)
	if s.presence.is(id.UserID, presence) {
		return nil
	}
	cur, err := s.q.Presence(c.Request().Context(), id.UserID, id.UserID)
	if err != nil {
		return nil //nolint:nilerr // presence is best effort here; the sync goes on
	}
	if cur.Presence != presence {
		pos, err := s.cmd.SetPresence(c.Request().Context(), meta(c, eventlog.OriginClient), id.UserID, presence, cur.StatusMsg)
		if err != nil {
			return err
		}
		if err := s.wait.WaitFor(c.Request().Context(), pos, "presence"); err != nil {
			return err
		}
	}
	s.presence.set(id.UserID, presence)
	return nil
}
