package http

import (
	"context"
	nethttp "net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/queries"
)

// DirectoryCommands are the writes of room aliases and the room directory.
type DirectoryCommands interface {
	CreateAlias(ctx context.Context, meta commands.Meta, user, alias, roomID string) (eventlog.Position, error)
	DeleteAlias(ctx context.Context, meta commands.Meta, user, alias string) (eventlog.Position, error)
	SetRoomVisibility(ctx context.Context, meta commands.Meta, user, roomID string, public bool) (eventlog.Position, error)
}

// DirectoryQueries are the reads of room aliases and the room directory.
type DirectoryQueries interface {
	ResolveAlias(ctx context.Context, alias string) (string, error)
	LocalAliases(ctx context.Context, user string, admin bool, roomID string) ([]string, error)
	RoomPublished(ctx context.Context, roomID string) (bool, error)
	PublicRooms(ctx context.Context, req queries.PublicRoomsRequest) (queries.PublicRooms, error)
}

// errNoFederation answers requests about other servers' aliases and directories,
// which need the federation API.
func errNoFederation(what string) error {
	return errNotFound("%s of other servers needs federation, which this server does not support yet", what)
}

// aliasParam is the {roomAlias} path parameter, checked against the grammar of room
// aliases (400 M_INVALID_PARAM otherwise), and its server.
func aliasParam(c echo.Context) (alias, server string, err error) {
	alias = pathParam(c, "roomAlias")
	_, server, err = commands.ParseAlias(alias)
	return alias, server, err
}

// putAlias: PUT /_matrix/client/v3/directory/room/{roomAlias}.
func (s *Server) putAlias(c echo.Context) error {
	alias, _, err := aliasParam(c)
	if err != nil {
		return err
	}
	var req struct {
		RoomID string `json:"room_id"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.RoomID == "" {
		return errMissingParam("room_id is required")
	}
	pos, err := s.cmd.CreateAlias(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, alias, req.RoomID)
	if err != nil {
		return err
	}
	if err := s.waitRooms(c, pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, struct{}{})
}

// getAlias: GET /_matrix/client/v3/directory/room/{roomAlias}. Every room of this
// server is only here until federation arrives, so servers is this one.
func (s *Server) getAlias(c echo.Context) error {
	alias, server, err := aliasParam(c)
	if err != nil {
		return err
	}
	if server != s.cfg.ServerName {
		return errNoFederation("Resolving the aliases")
	}
	roomID, err := s.q.ResolveAlias(c.Request().Context(), alias)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"room_id": roomID, "servers": []string{s.cfg.ServerName}})
}

// deleteAlias: DELETE /_matrix/client/v3/directory/room/{roomAlias}.
func (s *Server) deleteAlias(c echo.Context) error {
	alias, server, err := aliasParam(c)
	if err != nil {
		return err
	}
	if server != s.cfg.ServerName {
		return errNotFound("Room alias %s not found", alias)
	}
	pos, err := s.cmd.DeleteAlias(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, alias)
	if err != nil {
		return err
	}
	if err := s.waitRooms(c, pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, struct{}{})
}

// roomAliases: GET /_matrix/client/v3/rooms/{roomId}/aliases.
func (s *Server) roomAliases(c echo.Context) error {
	id := identity(c)
	aliases, err := s.q.LocalAliases(c.Request().Context(), id.UserID, id.IsAdmin, pathParam(c, "roomId"))
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"aliases": aliases})
}

// getRoomVisibility: GET /_matrix/client/v3/directory/list/room/{roomId}.
func (s *Server) getRoomVisibility(c echo.Context) error {
	public, err := s.q.RoomPublished(c.Request().Context(), pathParam(c, "roomId"))
	if err != nil {
		return err
	}
	visibility := "private"
	if public {
		visibility = "public"
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"visibility": visibility})
}

// putRoomVisibility: PUT /_matrix/client/v3/directory/list/room/{roomId}. The
// visibility defaults to public, as the spec says.
func (s *Server) putRoomVisibility(c echo.Context) error {
	var req struct {
		Visibility *string `json:"visibility"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	public := true
	if req.Visibility != nil {
		switch *req.Visibility {
		case "public":
		case "private":
			public = false
		default:
			return errInvalidParam("visibility must be public or private")
		}
	}
	pos, err := s.cmd.SetRoomVisibility(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, pathParam(c, "roomId"), public)
	if err != nil {
		return err
	}
	if err := s.waitRooms(c, pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, struct{}{})
}

// publicRoomsServer checks the server query parameter of /publicRooms: absent or this
// server.
func (s *Server) publicRoomsServer(c echo.Context) error {
	server := c.QueryParam("server")
	if server == "" || server == s.cfg.ServerName {
		return nil
	}
	if !commands.ValidServerName(server) {
		return errInvalidParam("server: %q is not a server name", server)
	}
	// The spec documents no error for this endpoint, and the standard 400 is the one
	// every endpoint may answer.
	return errInvalidParam("server: listing the public rooms of other servers needs federation, which this server does not support yet")
}

// networks checks include_all_networks and third_party_instance_id, which exclude
// each other (Synapse answers 400 too).
func networks(all bool, instance string) error {
	if all && instance != "" {
		return errInvalidParam("include_all_networks and third_party_instance_id cannot be used together")
	}
	return nil
}

// getPublicRooms: GET /_matrix/client/v3/publicRooms. The spec lets anyone call it.
func (s *Server) getPublicRooms(c echo.Context) error {
	if err := s.publicRoomsServer(c); err != nil {
		return err
	}
	limit, err := limitParam(c, 0)
	if err != nil {
		return err
	}
	all := false
	if v := c.QueryParam("include_all_networks"); v != "" {
		if all, err = strconv.ParseBool(v); err != nil {
			return errInvalidParam("include_all_networks must be true or false")
		}
	}
	instance := c.QueryParam("third_party_instance_id")
	if err := networks(all, instance); err != nil {
		return err
	}
	return s.publicRooms(c, queries.PublicRoomsRequest{Limit: limit, Since: c.QueryParam("since"), ThirdPartyInstanceID: instance})
}

// postPublicRooms: POST /_matrix/client/v3/publicRooms.
func (s *Server) postPublicRooms(c echo.Context) error {
	if err := s.publicRoomsServer(c); err != nil {
		return err
	}
	var req struct {
		Limit  *int   `json:"limit"`
		Since  string `json:"since"`
		Filter *struct {
			GenericSearchTerm string    `json:"generic_search_term"`
			RoomTypes         []*string `json:"room_types"`
		} `json:"filter"`
		IncludeAllNetworks   bool   `json:"include_all_networks"`
		ThirdPartyInstanceID string `json:"third_party_instance_id"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	q := queries.PublicRoomsRequest{Since: req.Since, ThirdPartyInstanceID: req.ThirdPartyInstanceID}
	if req.Limit != nil {
		if *req.Limit < 0 {
			return errInvalidParam("limit must be a non-negative integer")
		}
		q.Limit = *req.Limit
	}
	if err := networks(req.IncludeAllNetworks, req.ThirdPartyInstanceID); err != nil {
		return err
	}
	if req.Filter != nil {
		q.SearchTerm, q.RoomTypes = req.Filter.GenericSearchTerm, req.Filter.RoomTypes
	}
	return s.publicRooms(c, q)
}

func (s *Server) publicRooms(c echo.Context, req queries.PublicRoomsRequest) error {
	res, err := s.q.PublicRooms(c.Request().Context(), req)
	if err != nil {
		return err
	}
	body := map[string]any{"chunk": res.Chunk, "total_room_count_estimate": res.Total}
	if res.NextBatch != "" {
		body["next_batch"] = res.NextBatch
	}
	if res.PrevBatch != "" {
		body["prev_batch"] = res.PrevBatch
	}
	return c.JSON(nethttp.StatusOK, body)
}
