package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/identity"
	"spelt.dev/spelt/internal/safedial"
	"spelt.dev/spelt/internal/signingkey"
)

// identityRequestTimeout bounds each request to an identity server.
const identityRequestTimeout = 15 * time.Second

// identityServers builds the client of the [identity] trusted servers, or nil when
// there are none.
func identityServers(cfg config.Config, key signingkey.Key) commands.IdentityServers {
	if len(cfg.Identity.TrustedServers) == 0 {
		return nil
	}
	client := safedial.Client(cfg.Identity.AllowPrivateAddresses, identityRequestTimeout)
	return identityAdapter{identity.New(cfg.Identity.TrustedServers, client, cfg.Identity.AllowHTTP, cfg.ServerName, key.ID, key.Private)}
}

// identityAdapter gives the identity server client the errors commands want.
type identityAdapter struct{ c *identity.Client }

func (a identityAdapter) Trusted(server string) bool { return a.c.Trusted(server) }

func (a identityAdapter) Bind(ctx context.Context, server, accessToken, sid, clientSecret, mxid string) (string, string, error) {
	medium, address, err := a.c.Bind(ctx, server, accessToken, sid, clientSecret, mxid)
	return medium, address, identityError(err)
}

func (a identityAdapter) Unbind(ctx context.Context, server, mxid, medium, address string) error {
	return identityError(a.c.Unbind(ctx, server, mxid, medium, address))
}

func (a identityAdapter) Lookup(ctx context.Context, server, accessToken, medium, address string) (string, error) {
	mxid, err := a.c.Lookup(ctx, server, accessToken, medium, address)
	return mxid, identityError(err)
}

func (a identityAdapter) StoreInvite(ctx context.Context, server, accessToken string, inv identity.Invite) (identity.StoredInvite, error) {
	stored, err := a.c.StoreInvite(ctx, server, accessToken, inv)
	return stored, identityError(err)
}

func identityError(err error) error {
	var e *identity.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return &commands.IdentityServerError{Errcode: e.Errcode, Message: e.Message}
	case errors.Is(err, context.Canceled):
		return err
	default:
		return fmt.Errorf("%w: %w", commands.ErrIdentityServerUnavailable, err)
	}
}
