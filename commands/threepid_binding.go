package commands

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/identity"
	"spelt.dev/spelt/sql/gen/writedb"
)

// IdentityServers are the identity servers the homeserver trusts, as commands use them.
// Their calls go over the network: commands make them outside any transaction. A
// server's refusal is an *IdentityServerError; a server that cannot be reached,
// ErrIdentityServerUnavailable.
type IdentityServers interface {
	Trusted(server string) bool
	Bind(ctx context.Context, server, accessToken, sid, clientSecret, mxid string) (medium, address string, err error)
	Unbind(ctx context.Context, server, mxid, medium, address string) error
	Lookup(ctx context.Context, server, accessToken, medium, address string) (mxid string, err error)
	StoreInvite(ctx context.Context, server, accessToken string, inv identity.Invite) (identity.StoredInvite, error)
}

// UseIdentityServers enables binding 3PIDs at the trusted identity servers. It is called
// once, before the server serves.
func (c *Commands) UseIdentityServers(s IdentityServers) { c.ids = s }

// TrustsIdentityServer reports whether server is one of the trusted identity servers.
func (c *Commands) TrustsIdentityServer(server string) bool {
	return c.ids != nil && c.ids.Trusted(server)
}

// Unbind results (spec: POST /account/3pid/unbind, id_server_unbind_result).
const (
	UnbindSuccess   = "success"
	UnbindNoSupport = "no-support"
)

// BindThreepid asks a trusted identity server to bind the 3PID the user validated there
// (session sid, clientSecret) to the user, authenticated with the user's access token
// at that server, and records the binding so that it can be undone.
func (c *Commands) BindThreepid(ctx context.Context, meta Meta, userID, server, accessToken, sid, clientSecret string) (eventlog.Position, error) {
	if c.ids == nil || !c.ids.Trusted(server) {
		return eventlog.Position{}, ErrIdentityServerNotTrusted
	}
	if accessToken == "" {
		return eventlog.Position{}, badRequest("id_access_token is needed to bind at an identity server")
	}
	medium, address, err := c.ids.Bind(ctx, server, accessToken, sid, clientSecret, userID)
	if err != nil {
		return eventlog.Position{}, err
	}
	return c.run(ctx, meta, func(context.Context, pgx.Tx) ([]eventlog.NewEvent, error) {
		return []eventlog.NewEvent{{Stream: eventlog.UserStream(userID), Type: eventlog.TypeThreepidBound, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.ThreepidBinding{UserID: userID, Medium: medium, Address: address, IDServer: server}}}, nil
	})
}

// UnbindThreepid asks identity servers to unbind a 3PID from the user: server when it
// is given, else every server the homeserver bound it at. The result is "no-support"
// when there is no such server (spec: "If the homeserver does not know the original
// id_server, it MUST return an id_server_unbind_result of no-support").
func (c *Commands) UnbindThreepid(ctx context.Context, meta Meta, userID, server, medium, address string) (string, eventlog.Position, error) {
	var servers []string
	if server != "" {
		if c.ids == nil || !c.ids.Trusted(server) {
			return UnbindNoSupport, eventlog.Position{}, nil
		}
		servers = []string{server}
	} else {
		rows, err := c.q.ThreepidBindingsOf(ctx, c.pool, writedb.ThreepidBindingsOfParams{UserID: userID, Medium: medium, Address: address})
		if err != nil {
			return "", eventlog.Position{}, err
		}
		for _, r := range rows {
			if c.ids != nil && c.ids.Trusted(r.IDServer) {
				servers = append(servers, r.IDServer)
			}
		}
	}
	if len(servers) == 0 {
		return UnbindNoSupport, eventlog.Position{}, nil
	}
	var pos eventlog.Position
	for _, s := range servers {
		if err := c.ids.Unbind(ctx, s, userID, medium, address); err != nil {
			return "", pos, err
		}
		p, err := c.run(ctx, meta, func(context.Context, pgx.Tx) ([]eventlog.NewEvent, error) {
			return []eventlog.NewEvent{{Stream: eventlog.UserStream(userID), Type: eventlog.TypeThreepidUnbound, ExpectVersion: eventlog.AnyVersion,
				Data: eventlog.ThreepidBinding{UserID: userID, Medium: medium, Address: address, IDServer: s}}}, nil
		})
		if err != nil {
			return "", pos, err
		}
		pos = p
	}
	return UnbindSuccess, pos, nil
}

// unbindAll unbinds every 3PID a user bound from idServer, or from the identity server
// each was bound at, as far as they answer (deactivation, as Synapse does). The result
// is "success" when every unbind worked (or there was none), else "no-support".
func (c *Commands) unbindAll(ctx context.Context, meta Meta, userID, idServer string) (eventlog.Position, string) {
	var pos eventlog.Position
	rows, err := c.q.ThreepidBindingsOf(ctx, c.pool, writedb.ThreepidBindingsOfParams{UserID: userID})
	if err != nil {
		c.logger.WarnContext(ctx, "bindings of a deactivated user unknown", slog.Any("err", err))
		return pos, UnbindNoSupport
	}
	result := UnbindSuccess
	for _, r := range rows {
		server := r.IDServer
		if idServer != "" {
			server = idServer
		}
		res, p, err := c.UnbindThreepid(ctx, meta, userID, server, r.Medium, r.Address)
		if err != nil || res != UnbindSuccess {
			c.logger.WarnContext(ctx, "a deactivated user's 3PID stays bound", slog.String("id_server", server), slog.Any("err", err))
			result = UnbindNoSupport
			continue
		}
		if pos.Less(p) {
			pos = p
		}
	}
	return pos, result
}
