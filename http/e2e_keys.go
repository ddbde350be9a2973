package http

import (
	"context"
	"encoding/json"
	nethttp "net/http"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/mxid"
	"spelt.dev/spelt/queries"
)

// E2ECommands publish and claim end-to-end encryption keys.
type E2ECommands interface {
	UploadKeys(ctx context.Context, meta commands.Meta, req commands.UploadKeys) (eventlog.Position, error)
	ClaimKeys(ctx context.Context, meta commands.Meta, claimer string, want map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, eventlog.Position, error)
	UploadCrossSigningKeys(ctx context.Context, meta commands.Meta, req commands.CrossSigningKeys) (eventlog.Position, error)
	UploadSignatures(ctx context.Context, meta commands.Meta, signer string, signed map[string]map[string]json.RawMessage) (map[string]map[string]commands.SignatureFailure, eventlog.Position, error)
}

// E2EQueries read end-to-end encryption keys.
type E2EQueries interface {
	QueryKeys(ctx context.Context, viewer string, want map[string][]string) (*queries.KeysQuery, error)
	KeyCounts(ctx context.Context, userID, deviceID string) (map[string]int, []string, error)
	KeyChanges(ctx context.Context, viewer string, from, to queries.SyncToken) (changed, left []string, err error)
}

// federationUnavailable is the failure reported for users of other servers until
// federation is served.
var federationUnavailable = map[string]any{"status": 503, "message": "Federation is not available"}

// uploadKeys: POST /_matrix/client/v3/keys/upload.
func (s *Server) uploadKeys(c echo.Context) error {
	var req struct {
		DeviceKeys   json.RawMessage            `json:"device_keys"`
		OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
		FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if len(req.DeviceKeys) > 0 && req.DeviceKeys[0] != '{' {
		if string(req.DeviceKeys) == "null" {
			req.DeviceKeys = nil
		} else {
			return errBadJSON("device_keys must be an object")
		}
	}
	id := identity(c)
	ctx := c.Request().Context()
	pos, err := s.cmd.UploadKeys(ctx, meta(c, eventlog.OriginClient), commands.UploadKeys{UserID: id.UserID, DeviceID: id.DeviceID,
		DeviceKeys: req.DeviceKeys, OneTimeKeys: req.OneTimeKeys, FallbackKeys: req.FallbackKeys})
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(ctx, pos, "e2e_keys"); err != nil {
		return err
	}
	counts, _, err := s.q.KeyCounts(ctx, id.UserID, id.DeviceID)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"one_time_key_counts": counts})
}

// queryKeys: POST /_matrix/client/v3/keys/query.
func (s *Server) queryKeys(c echo.Context) error {
	var req struct {
		DeviceKeys *map[string][]string `json:"device_keys"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.DeviceKeys == nil {
		return errMissingParam("Missing device_keys")
	}
	local, failures := splitLocal(*req.DeviceKeys, s.cfg.ServerName)
	keys, err := s.q.QueryKeys(c.Request().Context(), identity(c).UserID, local)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"device_keys": keys.DeviceKeys, "master_keys": keys.MasterKeys,
		"self_signing_keys": keys.SelfSigningKeys, "user_signing_keys": keys.UserSigningKeys, "failures": failures})
}

// claimKeys: POST /_matrix/client/v3/keys/claim.
func (s *Server) claimKeys(c echo.Context) error {
	var req struct {
		OneTimeKeys *map[string]map[string]string `json:"one_time_keys"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.OneTimeKeys == nil {
		return errMissingParam("Missing one_time_keys")
	}
	local, failures := splitLocal(*req.OneTimeKeys, s.cfg.ServerName)
	keys, pos, err := s.cmd.ClaimKeys(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, local)
	if err != nil {
		return err
	}
	// The claimed devices' next syncs must count the keys as gone.
	if !pos.IsZero() {
		if err := s.wait.WaitFor(c.Request().Context(), pos, "e2e_keys"); err != nil {
			return err
		}
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"one_time_keys": keys, "failures": failures})
}

// keyChanges: GET /_matrix/client/v3/keys/changes.
func (s *Server) keyChanges(c echo.Context) error {
	from, err := queries.ParseSyncToken(c.QueryParam("from"))
	if err != nil {
		return errInvalidParam("from must be a sync token")
	}
	to, err := queries.ParseSyncToken(c.QueryParam("to"))
	if err != nil {
		return errInvalidParam("to must be a sync token")
	}
	changed, left, err := s.q.KeyChanges(c.Request().Context(), identity(c).UserID, from, to)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"changed": changed, "left": left})
}

// uploadCrossSigningKeys: POST /_matrix/client/v3/keys/device_signing/upload.
func (s *Server) uploadCrossSigningKeys(c echo.Context) error {
	var req struct {
		Master      json.RawMessage `json:"master_key"`
		SelfSigning json.RawMessage `json:"self_signing_key"`
		UserSigning json.RawMessage `json:"user_signing_key"`
		Auth        *authDict       `json:"auth"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	for _, k := range []*json.RawMessage{&req.Master, &req.SelfSigning, &req.UserSigning} {
		if string(*k) == "null" {
			*k = nil
		} else if len(*k) > 0 && (*k)[0] != '{' {
			return errBadJSON("cross-signing keys must be objects")
		}
	}
	auth, err := req.Auth.command()
	if err != nil {
		return err
	}
	pos, err := s.cmd.UploadCrossSigningKeys(c.Request().Context(), meta(c, eventlog.OriginClient), commands.CrossSigningKeys{
		UserID: identity(c).UserID, Master: req.Master, SelfSigning: req.SelfSigning, UserSigning: req.UserSigning, Auth: auth})
	if err != nil {
		return err
	}
	return s.emptyWhenVisible(c, pos, "e2e_keys")
}

// uploadSignatures: POST /_matrix/client/v3/keys/signatures/upload.
func (s *Server) uploadSignatures(c echo.Context) error {
	var req map[string]map[string]json.RawMessage
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	for _, keys := range req {
		for _, k := range keys {
			if len(k) == 0 || k[0] != '{' {
				return errBadJSON("each signed key must be an object")
			}
		}
	}
	failures, pos, err := s.cmd.UploadSignatures(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, req)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos, "e2e_keys"); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"failures": failures})
}

// splitLocal keeps the entries of this server's users, and reports each other server
// as a failure until federation (invalid user IDs are left out).
func splitLocal[V any](byUser map[string]V, serverName string) (map[string]V, map[string]any) {
	local, failures := map[string]V{}, map[string]any{}
	for user, v := range byUser {
		if _, server, ok := mxid.SplitUserID(user); !ok || server != serverName {
			if ok {
				failures[server] = federationUnavailable
			}
			continue
		}
		local[user] = v
	}
	return local, failures
}
