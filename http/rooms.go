package http

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/mxid"
	"spelt.dev/spelt/queries"
)

// RoomCommands are the room writes.
type RoomCommands interface {
	CreateRoom(ctx context.Context, meta commands.Meta, req commands.CreateRoom) (commands.RoomCreated, error)
	Send(ctx context.Context, meta commands.Meta, req commands.SendEvent) (commands.Sent, error)
	Redact(ctx context.Context, meta commands.Meta, roomID, sender, deviceID, eventID, txnID, reason string) (commands.Sent, error)
	ChangeMembership(ctx context.Context, meta commands.Meta, m commands.Membership) (commands.Sent, error)
	InviteThirdParty(ctx context.Context, meta commands.Meta, inv commands.ThirdPartyInvite) (commands.Sent, error)
	TrustsIdentityServer(server string) bool
	JoinRoom(ctx context.Context, meta commands.Meta, j commands.Join) (commands.Sent, string, error)
	Knock(ctx context.Context, meta commands.Meta, user, roomIDOrAlias, reason string) (commands.Sent, string, error)
	Forget(ctx context.Context, meta commands.Meta, user, roomID string) (eventlog.Position, error)
}

// RoomQueries are the room reads.
type RoomQueries interface {
	Event(ctx context.Context, v queries.Viewer, roomID, eventID string) (json.RawMessage, error)
	Messages(ctx context.Context, v queries.Viewer, req queries.MessagesRequest) (queries.Messages, error)
	State(ctx context.Context, v queries.Viewer, roomID string) ([]json.RawMessage, error)
	StateEvent(ctx context.Context, v queries.Viewer, roomID, typ, key string) (json.RawMessage, error)
	Members(ctx context.Context, v queries.Viewer, req queries.MembersRequest) ([]json.RawMessage, error)
	JoinedMembers(ctx context.Context, v queries.Viewer, roomID string) (map[string]queries.JoinedMember, error)
	JoinedRooms(ctx context.Context, user string) ([]string, error)
	Context(ctx context.Context, v queries.Viewer, roomID, eventID string, limit int, f queries.RoomEventFilter) (queries.EventContext, error)
	TimestampToEvent(ctx context.Context, v queries.Viewer, roomID string, ts int64, forward bool) (string, int64, error)
}

// roomsProjector is the projector room reads depend on.
const roomsProjector = "rooms"

// pathParam is a path parameter, percent-decoded (Echo leaves escaped segments such as
// %40user%3Aserver as they came).
func pathParam(c echo.Context, name string) string {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

func viewer(c echo.Context) queries.Viewer {
	id := identity(c)
	return queries.Viewer{UserID: id.UserID, DeviceID: id.DeviceID}
}

// waitRooms waits until the rooms read model has pos.
func (s *Server) waitRooms(c echo.Context, pos eventlog.Position) error {
	if pos.IsZero() {
		return nil
	}
	return s.wait.WaitFor(c.Request().Context(), pos, roomsProjector)
}

// createRoom: POST /_matrix/client/v3/createRoom.
func (s *Server) createRoom(c echo.Context) error {
	var req struct {
		Visibility      string                `json:"visibility"`
		RoomAliasName   string                `json:"room_alias_name"`
		Name            *string               `json:"name"`
		Topic           *string               `json:"topic"`
		Invite          []string              `json:"invite"`
		Invite3PID      []invite3PID          `json:"invite_3pid"`
		RoomVersion     string                `json:"room_version"`
		CreationContent json.RawMessage       `json:"creation_content"`
		InitialState    []commands.StateEvent `json:"initial_state"`
		Preset          string                `json:"preset"`
		IsDirect        bool                  `json:"is_direct"`
		PowerLevels     json.RawMessage       `json:"power_level_content_override"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	switch req.Visibility {
	case "", "private", "public":
	default:
		return errInvalidParam("visibility must be public or private")
	}
	for _, inv := range req.Invite3PID {
		if err := inv.check(); err != nil {
			return err
		}
		if !s.cmd.TrustsIdentityServer(inv.IDServer) {
			return commands.ErrIdentityServerNotTrusted // before the room exists
		}
	}
	for _, u := range req.Invite {
		if !validUserID(u) {
			return errInvalidParam("invite: %q is not a user ID", u)
		}
	}
	id := identity(c)
	res, err := s.cmd.CreateRoom(c.Request().Context(), meta(c, eventlog.OriginClient), commands.CreateRoom{
		Creator: id.UserID, DeviceID: id.DeviceID, Public: req.Visibility == "public", AliasLocalpart: req.RoomAliasName,
		Name: req.Name, Topic: req.Topic, Invite: req.Invite, RoomVersion: req.RoomVersion, CreationContent: req.CreationContent,
		InitialState: req.InitialState, Preset: req.Preset, PowerLevelOverride: req.PowerLevels, IsDirect: req.IsDirect,
	})
	if err != nil {
		return err
	}
	pos := res.Position
	// Third-party invites go through identity servers, once the room exists (as in
	// Synapse).
	for _, inv := range req.Invite3PID {
		sent, err := s.cmd.InviteThirdParty(c.Request().Context(), meta(c, eventlog.OriginClient), commands.ThirdPartyInvite{
			RoomID: res.RoomID, Sender: id.UserID, IDServer: inv.IDServer, IDAccessToken: inv.IDAccessToken, Medium: inv.Medium, Address: inv.Address})
		if err != nil {
			return err
		}
		if pos.Less(sent.Position) {
			pos = sent.Position
		}
	}
	if err := s.waitRooms(c, pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"room_id": res.RoomID})
}

// invite3PID is a third-party invite (createRoom's invite_3pid, or POST
// /rooms/{roomId}/invite with a 3PID).
type invite3PID struct {
	IDServer      string `json:"id_server"`
	IDAccessToken string `json:"id_access_token"`
	Medium        string `json:"medium"`
	Address       string `json:"address"`
}

func (i invite3PID) check() error {
	switch {
	case i.IDServer == "":
		return errMissingParam("Missing id_server")
	case i.IDAccessToken == "":
		return errMissingParam("Missing id_access_token")
	}
	return threepidRequest{Medium: i.Medium, Address: i.Address}.check()
}

// validUserID: u is a syntactically valid user ID within the spec's 255-byte limit.
func validUserID(u string) bool {
	_, _, ok := mxid.SplitUserID(u)
	return ok && len(u) <= 255
}

// readContent reads a request body that is event content: any JSON object.
func readContent(c echo.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := bindJSON(c, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// sendEvent: PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}.
func (s *Server) sendEvent(c echo.Context) error {
	body, err := readContent(c)
	if err != nil {
		return err
	}
	id := identity(c)
	res, err := s.cmd.Send(c.Request().Context(), meta(c, eventlog.OriginClient), commands.SendEvent{
		RoomID: pathParam(c, "roomId"), Sender: id.UserID, DeviceID: id.DeviceID, Type: pathParam(c, "eventType"),
		Content: body, TxnID: pathParam(c, "txnId"),
	})
	if err != nil {
		return err
	}
	if err := s.waitRooms(c, res.Position); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"event_id": res.EventID})
}

// stateKeyParam is the state key of a state path: empty when the path ends at the type.
func stateKeyParam(c echo.Context) string {
	return pathParam(c, "*")
}

// putState: PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}.
func (s *Server) putState(c echo.Context) error {
	body, err := readContent(c)
	if err != nil {
		return err
	}
	id := identity(c)
	roomID, typ, key := pathParam(c, "roomId"), pathParam(c, "eventType"), stateKeyParam(c)
	var res commands.Sent
	if typ == "m.room.member" {
		// Membership through the state API goes the way of the membership endpoints.
		var m struct {
			Membership string `json:"membership"`
			Reason     string `json:"reason"`
		}
		_ = json.Unmarshal(body, &m)
		action := map[string]string{"invite": commands.ActionInvite, "join": commands.ActionJoin, "leave": commands.ActionLeave,
			"ban": commands.ActionBan, "knock": commands.ActionKnock}[m.Membership]
		if action == "" {
			return errBadJSON("content.membership must be invite, join, leave, ban or knock")
		}
		if action == commands.ActionLeave && key != id.UserID {
			action = commands.ActionKick
		}
		res, err = s.cmd.ChangeMembership(c.Request().Context(), meta(c, eventlog.OriginClient), commands.Membership{
			RoomID: roomID, Sender: id.UserID, Target: key, Action: action, Reason: m.Reason, Extra: body,
		})
	} else {
		res, err = s.cmd.Send(c.Request().Context(), meta(c, eventlog.OriginClient), commands.SendEvent{
			RoomID: roomID, Sender: id.UserID, DeviceID: id.DeviceID, Type: typ, StateKey: &key, Content: body,
		})
	}
	if err != nil {
		return err
	}
	if err := s.waitRooms(c, res.Position); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"event_id": res.EventID})
}

// getState: GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}.
func (s *Server) getState(c echo.Context) error {
	content, err := s.q.StateEvent(c.Request().Context(), viewer(c), pathParam(c, "roomId"), pathParam(c, "eventType"), stateKeyParam(c))
	if err != nil {
		return err
	}
	return c.JSONBlob(nethttp.StatusOK, content)
}

// getAllState: GET /_matrix/client/v3/rooms/{roomId}/state.
func (s *Server) getAllState(c echo.Context) error {
	events, err := s.q.State(c.Request().Context(), viewer(c), pathParam(c, "roomId"))
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, events)
}

// getEvent: GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}.
func (s *Server) getEvent(c echo.Context) error {
	ev, err := s.q.Event(c.Request().Context(), viewer(c), pathParam(c, "roomId"), pathParam(c, "eventId"))
	if err != nil {
		return err
	}
	return c.JSONBlob(nethttp.StatusOK, ev)
}

// getEventDeprecated: GET /_matrix/client/v3/events/{eventId}.
func (s *Server) getEventDeprecated(c echo.Context) error {
	ev, err := s.q.Event(c.Request().Context(), viewer(c), "", pathParam(c, "eventId"))
	if err != nil {
		return err
	}
	return c.JSONBlob(nethttp.StatusOK, ev)
}

// redact: PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}.
func (s *Server) redact(c echo.Context) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	id := identity(c)
	res, err := s.cmd.Redact(c.Request().Context(), meta(c, eventlog.OriginClient), pathParam(c, "roomId"), id.UserID, id.DeviceID,
		pathParam(c, "eventId"), pathParam(c, "txnId"), req.Reason)
	if err != nil {
		return err
	}
	if err := s.waitRooms(c, res.Position); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"event_id": res.EventID})
}

// membership handles POST /rooms/{roomId}/{invite,leave,kick,ban,unban}.
func (s *Server) membership(action string) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req struct {
			UserID   *string `json:"user_id"`
			Reason   string  `json:"reason"`
			IsDirect bool    `json:"is_direct"`
			invite3PID
		}
		if err := bindJSON(c, &req); err != nil {
			return err
		}
		id := identity(c)
		if action == commands.ActionInvite && req.UserID == nil && (req.Medium != "" || req.Address != "" || req.IDServer != "") {
			if err := req.check(); err != nil {
				return err
			}
			res, err := s.cmd.InviteThirdParty(c.Request().Context(), meta(c, eventlog.OriginClient), commands.ThirdPartyInvite{
				RoomID: pathParam(c, "roomId"), Sender: id.UserID, IDServer: req.IDServer, IDAccessToken: req.IDAccessToken,
				Medium: req.Medium, Address: req.Address})
			if err != nil {
				return err
			}
			if err := s.waitRooms(c, res.Position); err != nil {
				return err
			}
			return c.JSON(nethttp.StatusOK, map[string]any{})
		}
		target := id.UserID
		if action != commands.ActionLeave {
			if req.UserID == nil {
				return errMissingParam("Missing user_id")
			}
			if !validUserID(*req.UserID) {
				return errInvalidParam("user_id is not a user ID")
			}
			target = *req.UserID
		}
		res, err := s.cmd.ChangeMembership(c.Request().Context(), meta(c, eventlog.OriginClient), commands.Membership{
			RoomID: pathParam(c, "roomId"), Sender: id.UserID, Target: target, Action: action, Reason: req.Reason, IsDirect: req.IsDirect,
		})
		if err != nil {
			return err
		}
		if err := s.waitRooms(c, res.Position); err != nil {
			return err
		}
		return c.JSON(nethttp.StatusOK, map[string]any{})
	}
}

// joinRoomID: POST /_matrix/client/v3/rooms/{roomId}/join.
func (s *Server) joinRoomID(c echo.Context) error { return s.join(c, pathParam(c, "roomId")) }

// joinRoom: POST /_matrix/client/v3/join/{roomIdOrAlias}.
func (s *Server) joinRoom(c echo.Context) error { return s.join(c, pathParam(c, "roomIdOrAlias")) }

func (s *Server) join(c echo.Context, target string) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if !strings.HasPrefix(target, "!") && !strings.HasPrefix(target, "#") {
		return errInvalidParam("%q is neither a room ID nor a room alias", target)
	}
	id := identity(c)
	res, roomID, err := s.cmd.JoinRoom(c.Request().Context(), meta(c, eventlog.OriginClient), commands.Join{
		User: id.UserID, Guest: id.IsGuest, RoomIDOrAlias: target, Reason: req.Reason})
	if err != nil {
		return err
	}
	if err := s.waitRooms(c, res.Position); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"room_id": roomID})
}

// knock: POST /_matrix/client/v3/knock/{roomIdOrAlias}.
func (s *Server) knock(c echo.Context) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	target := pathParam(c, "roomIdOrAlias")
	if !strings.HasPrefix(target, "!") && !strings.HasPrefix(target, "#") {
		return errInvalidParam("%q is neither a room ID nor a room alias", target)
	}
	res, roomID, err := s.cmd.Knock(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, target, req.Reason)
	if err != nil {
		return err
	}
	if err := s.waitRooms(c, res.Position); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"room_id": roomID})
}

// forget: POST /_matrix/client/v3/rooms/{roomId}/forget.
func (s *Server) forget(c echo.Context) error {
	pos, err := s.cmd.Forget(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, pathParam(c, "roomId"))
	if err != nil {
		return err
	}
	if err := s.waitRooms(c, pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

// members: GET /_matrix/client/v3/rooms/{roomId}/members.
func (s *Server) members(c echo.Context) error {
	req := queries.MembersRequest{RoomID: pathParam(c, "roomId"), Membership: c.QueryParam("membership"), NotMembership: c.QueryParam("not_membership")}
	for _, m := range []string{req.Membership, req.NotMembership} {
		switch m {
		case "", "join", "invite", "knock", "leave", "ban":
		default:
			return errInvalidParam("unknown membership %q", m)
		}
	}
	if at := c.QueryParam("at"); at != "" {
		t, err := queries.ParseToken(at)
		if err != nil {
			return err
		}
		req.At = &t
	}
	events, err := s.q.Members(c.Request().Context(), viewer(c), req)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"chunk": queries.FilterMembership(events, req.Membership, req.NotMembership)})
}

// joinedMembers: GET /_matrix/client/v3/rooms/{roomId}/joined_members.
func (s *Server) joinedMembers(c echo.Context) error {
	m, err := s.q.JoinedMembers(c.Request().Context(), viewer(c), pathParam(c, "roomId"))
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"joined": m})
}

// joinedRooms: GET /_matrix/client/v3/joined_rooms.
func (s *Server) joinedRooms(c echo.Context) error {
	rooms, err := s.q.JoinedRooms(c.Request().Context(), identity(c).UserID)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"joined_rooms": rooms})
}

// eventFilter reads the filter query parameter (a RoomEventFilter as JSON).
func eventFilter(c echo.Context) (queries.RoomEventFilter, error) {
	var f queries.RoomEventFilter
	raw := c.QueryParam("filter")
	if raw == "" {
		return f, nil
	}
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		return f, errInvalidParam("filter must be a RoomEventFilter in JSON: %v", err)
	}
	return f, nil
}

func limitParam(c echo.Context, def int) (int, error) {
	l := c.QueryParam("limit")
	if l == "" {
		return def, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 0 {
		return 0, errInvalidParam("limit must be a non-negative integer")
	}
	return n, nil
}

// messages: GET /_matrix/client/v3/rooms/{roomId}/messages.
func (s *Server) messages(c echo.Context) error {
	req := queries.MessagesRequest{RoomID: pathParam(c, "roomId")}
	switch c.QueryParam("dir") {
	case "b":
		req.Backward = true
	case "f":
	case "":
		return errMissingParam("Missing dir")
	default:
		return errInvalidParam("dir must be b or f")
	}
	for name, dst := range map[string]**queries.Token{"from": &req.From, "to": &req.To} {
		if v := c.QueryParam(name); v != "" {
			t, err := queries.ParseToken(v)
			if err != nil {
				return err
			}
			*dst = &t
		}
	}
	var err error
	if req.Limit, err = limitParam(c, 10); err != nil {
		return err
	}
	if req.Filter, err = eventFilter(c); err != nil {
		return err
	}
	if req.Filter.Limit != nil && c.QueryParam("limit") == "" {
		req.Limit = *req.Filter.Limit
	}
	res, err := s.q.Messages(c.Request().Context(), viewer(c), req)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, res)
}

// eventContext: GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}.
func (s *Server) eventContext(c echo.Context) error {
	limit, err := limitParam(c, 10)
	if err != nil {
		return err
	}
	f, err := eventFilter(c)
	if err != nil {
		return err
	}
	res, err := s.q.Context(c.Request().Context(), viewer(c), pathParam(c, "roomId"), pathParam(c, "eventId"), min(limit, 100), f)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, res)
}

// timestampToEvent: GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event.
func (s *Server) timestampToEvent(c echo.Context) error {
	ts, err := strconv.ParseInt(c.QueryParam("ts"), 10, 64)
	if err != nil {
		return errInvalidParam("ts must be a timestamp in milliseconds")
	}
	var forward bool
	switch c.QueryParam("dir") {
	case "f":
		forward = true
	case "b":
	default:
		return errInvalidParam("dir must be f or b")
	}
	eventID, at, err := s.q.TimestampToEvent(c.Request().Context(), viewer(c), pathParam(c, "roomId"), ts, forward)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"event_id": eventID, "origin_server_ts": at})
}
