package http

import (
	"context"
	"log/slog"
	nethttp "net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/queries"
)

func deviceJSON(d queries.Device) map[string]any {
	out := map[string]any{"device_id": d.DeviceID}
	if d.DisplayName != nil {
		out["display_name"] = *d.DisplayName
	}
	if d.LastSeenIp != nil {
		out["last_seen_ip"] = *d.LastSeenIp
	}
	if d.LastSeenTs != nil {
		out["last_seen_ts"] = d.LastSeenTs.UnixMilli()
	}
	return out
}

// listDevices: GET /_matrix/client/v3/devices.
func (s *Server) listDevices(c echo.Context) error {
	devices, err := s.q.Devices(c.Request().Context(), identity(c).UserID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, len(devices))
	for i, d := range devices {
		out[i] = deviceJSON(d)
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"devices": out})
}

// getDevice: GET /_matrix/client/v3/devices/{deviceId}.
func (s *Server) getDevice(c echo.Context) error {
	d, err := s.q.Device(c.Request().Context(), identity(c).UserID, c.Param("deviceId"))
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, deviceJSON(d))
}

// putDevice: PUT /_matrix/client/v3/devices/{deviceId}.
func (s *Server) putDevice(c echo.Context) error {
	var req struct {
		DisplayName *string `json:"display_name"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	id := identity(c)
	if req.DisplayName == nil {
		// Nothing to change, but the device must exist.
		if _, err := s.q.Device(c.Request().Context(), id.UserID, c.Param("deviceId")); err != nil {
			return err
		}
		return c.JSON(nethttp.StatusOK, map[string]any{})
	}
	pos, err := s.cmd.RenameDevice(c.Request().Context(), meta(c, eventlog.OriginClient), id.UserID, c.Param("deviceId"), *req.DisplayName)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

// deleteDevice: DELETE /_matrix/client/v3/devices/{deviceId}.
func (s *Server) deleteDevice(c echo.Context) error {
	var req struct {
		Auth *authDict `json:"auth"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	return s.removeDevices(c, []string{c.Param("deviceId")}, req.Auth)
}

// deleteDevices: POST /_matrix/client/v3/delete_devices.
func (s *Server) deleteDevices(c echo.Context) error {
	var req struct {
		Devices *[]string `json:"devices"`
		Auth    *authDict `json:"auth"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.Devices == nil {
		return errMissingParam("Missing devices")
	}
	return s.removeDevices(c, *req.Devices, req.Auth)
}

func (s *Server) removeDevices(c echo.Context, devices []string, a *authDict) error {
	auth, err := a.command()
	if err != nil {
		return err
	}
	pos, err := s.cmd.DeleteDevices(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, devices, auth)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

// seenTracker remembers when and from where each device was last used, and records it
// in the log in one event per flush (every flushEvery), only for devices whose address
// changed or that were not recorded for resample: the log does not grow with requests.
type seenTracker struct {
	mu       sync.Mutex
	pending  map[deviceKey]eventlog.DeviceSeen
	recorded map[deviceKey]eventlog.DeviceSeen
	// active is each user's last request here (presence's last_active_ago), kept
	// for seenResample.
	active map[string]time.Time
}

type deviceKey struct{ user, device string }

const (
	seenFlushEvery = time.Minute
	seenResample   = 10 * time.Minute
)

func newSeenTracker() *seenTracker {
	return &seenTracker{pending: map[deviceKey]eventlog.DeviceSeen{}, recorded: map[deviceKey]eventlog.DeviceSeen{},
		active: map[string]time.Time{}}
}

// lastActive returns the time of user's last request here (zero: none lately).
func (t *seenTracker) lastActive(user string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active[user]
}

// LastActive returns the time of a user's last authenticated request to this process
// in the last few minutes (zero when none).
func (s *Server) LastActive(user string) time.Time { return s.seen.lastActive(user) }

func (t *seenTracker) see(id queries.Identity, ip string, now time.Time) {
	k := deviceKey{id.UserID, id.DeviceID}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active[id.UserID] = now
	if r, ok := t.recorded[k]; ok && r.IP == ip && now.Sub(r.At) < seenResample {
		return
	}
	t.pending[k] = eventlog.DeviceSeen{UserID: id.UserID, DeviceID: id.DeviceID, IP: ip, At: now.UTC().Truncate(time.Millisecond)}
}

func (t *seenTracker) take() []eventlog.DeviceSeen {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]eventlog.DeviceSeen, 0, len(t.pending))
	now := time.Now()
	for k, r := range t.recorded {
		if now.Sub(r.At) > seenResample {
			delete(t.recorded, k)
		}
	}
	for u, at := range t.active {
		if now.Sub(at) > seenResample {
			delete(t.active, u)
		}
	}
	for k, v := range t.pending {
		out = append(out, v)
		t.recorded[k] = v
	}
	clear(t.pending)
	return out
}

// flushSeen records pending sightings every seenFlushEvery until ctx ends, then once more.
func (s *Server) flushSeen(ctx context.Context) {
	flush := func(ctx context.Context) {
		seen := s.seen.take()
		if len(seen) == 0 {
			return
		}
		if _, err := s.cmd.RecordDevicesSeen(ctx, eventlog.Metadata{Origin: eventlog.OriginSystem, Actor: "spelt"}, seen); err != nil {
			s.logger.WarnContext(ctx, "recording device sightings failed", slog.Any("err", err))
		}
	}
	every := s.cfg.SeenFlushInterval
	if every <= 0 {
		every = seenFlushEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			flush(ctx)
		}
	}
}
