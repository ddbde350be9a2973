package http

import (
	"context"
	nethttp "net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/queries"
)

// RelationQueries are the reads of relations and threads.
type RelationQueries interface {
	Relations(ctx context.Context, v queries.Viewer, req queries.RelationsRequest) (queries.Relations, error)
	Threads(ctx context.Context, v queries.Viewer, req queries.ThreadsRequest) (queries.Threads, error)
}

// tokenParam reads an optional pagination token.
func tokenParam(c echo.Context, name string) (*queries.Token, error) {
	v := c.QueryParam(name)
	if v == "" {
		return nil, nil
	}
	t, err := queries.ParseToken(v)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// positiveLimit reads an optional limit that must be a positive integer.
func positiveLimit(c echo.Context) (int, error) {
	l := c.QueryParam("limit")
	if l == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 {
		return 0, errInvalidParam("limit must be a positive integer")
	}
	return n, nil
}

// relations: GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]].
func (s *Server) relations(c echo.Context) error {
	req := queries.RelationsRequest{RoomID: pathParam(c, "roomId"), EventID: pathParam(c, "eventId"),
		RelType: pathParam(c, "relType"), EventType: pathParam(c, "eventType")}
	switch c.QueryParam("dir") {
	case "", "b":
	case "f":
		req.Forward = true
	default:
		return errInvalidParam("dir must be b or f")
	}
	var err error
	if req.From, err = tokenParam(c, "from"); err != nil {
		return err
	}
	if req.To, err = tokenParam(c, "to"); err != nil {
		return err
	}
	if req.Limit, err = positiveLimit(c); err != nil {
		return err
	}
	switch r := c.QueryParam("recurse"); r {
	case "":
	case "true", "false":
		b := r == "true"
		req.Recurse = &b
	default:
		return errInvalidParam("recurse must be true or false")
	}
	res, err := s.q.Relations(c.Request().Context(), viewer(c), req)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, res)
}

// threads: GET /_matrix/client/v1/rooms/{roomId}/threads.
func (s *Server) threads(c echo.Context) error {
	req := queries.ThreadsRequest{RoomID: pathParam(c, "roomId")}
	switch c.QueryParam("include") {
	case "", "all":
	case "participated":
		req.Participated = true
	default:
		return errInvalidParam("include must be all or participated")
	}
	var err error
	if req.From, err = tokenParam(c, "from"); err != nil {
		return err
	}
	if req.Limit, err = positiveLimit(c); err != nil {
		return err
	}
	res, err := s.q.Threads(c.Request().Context(), viewer(c), req)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, res)
}
