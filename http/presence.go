package http

import (
	"context"
	nethttp "net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/queries"
)

// PresenceCommands set presence.
type PresenceCommands interface {
	SetPresence(ctx context.Context, meta commands.Meta, userID, presence string, statusMsg *string) (eventlog.Position, error)
}

// PresenceQueries read it.
type PresenceQueries interface {
	Presence(ctx context.Context, viewer, user string) (queries.UserPresence, error)
}

// presenceCache remembers the presence each user last set through this server, so
// that /sync?set_presence=... reads the presence read model only when the presence
// may change. Its writers are putPresence and syncPresence, the log's only writers
// of presence.
type presenceCache struct {
	mu   sync.Mutex
	last map[string]string
}

func newPresenceCache() *presenceCache { return &presenceCache{last: map[string]string{}} }

func (p *presenceCache) is(user, presence string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[user] == presence
}

func (p *presenceCache) set(user, presence string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[user] = presence
}

// putPresence: PUT /_matrix/client/v3/presence/{userId}/status.
func (s *Server) putPresence(c echo.Context) error {
	if err := ownUser(c); err != nil {
		return err
	}
	var req struct {
		Presence  *string `json:"presence"`
		StatusMsg *string `json:"status_msg"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.Presence == nil {
		return errMissingParam("Missing presence")
	}
	if !s.cfg.Presence {
		// Presence is off: accepted and forgotten, as Synapse does.
		return c.JSON(nethttp.StatusOK, map[string]any{})
	}
	pos, err := s.cmd.SetPresence(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, *req.Presence, req.StatusMsg)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos, "presence"); err != nil {
		return err
	}
	s.presence.set(identity(c).UserID, *req.Presence)
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

// getPresence: GET /_matrix/client/v3/presence/{userId}/status.
func (s *Server) getPresence(c echo.Context) error {
	user := pathParam(c, "userId")
	if !validUserID(user) {
		return errInvalidParam("%q is not a user ID", user)
	}
	p, err := s.q.Presence(c.Request().Context(), identity(c).UserID, user)
	if err != nil {
		return err
	}
	if !s.cfg.Presence {
		p = queries.UserPresence{Presence: "offline"}
	}
	return c.JSON(nethttp.StatusOK, p)
}
