package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"spelt.dev/spelt/commands"
	spelthttp "spelt.dev/spelt/http"
	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/safedial"
	"spelt.dev/spelt/internal/signingkey"
	"spelt.dev/spelt/internal/sso"
)

// ssoRequestTimeout bounds each request to an identity provider.
const ssoRequestTimeout = 15 * time.Second

// identityProviders builds the OpenID Connect relying party of the [[sso.providers]],
// or nil when there are none.
//
// Its secret, which derives each login's PKCE verifier and nonce, is derived from the
// server's signing key (HKDF-SHA256, its own label): every process serving this
// server already shares that key, so any of them can finish a login another started,
// and there is no second secret file to copy between them.
func identityProviders(cfg config.Config, key signingkey.Key) (commands.IdentityProviders, []spelthttp.IdentityProvider, error) {
	if len(cfg.SSO.Providers) == 0 {
		return nil, nil, nil
	}
	secret, err := hkdf.Key(sha256.New, key.Private.Seed(), nil, "spelt sso login secret v1", 32)
	if err != nil {
		return nil, nil, fmt.Errorf("sso secret: %w", err)
	}
	var providers []sso.Provider
	var listed []spelthttp.IdentityProvider
	for _, p := range cfg.SSO.Providers {
		p = p.WithDefaults()
		providers = append(providers, sso.Provider{ID: p.ID, Name: p.Name, Issuer: p.Issuer, ClientID: p.ClientID,
			ClientSecret: p.ClientSecret, Scopes: p.Scopes, LocalpartClaim: p.LocalpartClaim, DisplayNameClaim: p.DisplayNameClaim})
		listed = append(listed, spelthttp.IdentityProvider{ID: p.ID, Name: p.Name})
	}
	client := safedial.Client(cfg.SSO.AllowPrivateAddresses, ssoRequestTimeout)
	rp := sso.New(providers, sso.CallbackURL(cfg.PublicBaseURL), secret, client)
	existing := map[string]bool{}
	for _, p := range cfg.SSO.Providers {
		existing[p.ID] = p.AllowExistingUsers
	}
	return ssoAdapter{rp, existing}, listed, nil
}

// ssoAdapter gives the relying party the shape commands want, its errors included.
type ssoAdapter struct {
	rp       *sso.RelyingParty
	existing map[string]bool // providers whose identities may log in to existing accounts
}

func (a ssoAdapter) Has(idp string) bool { return a.rp.Has(idp) }

func (a ssoAdapter) AllowsExistingUsers(idp string) bool { return a.existing[idp] }

func (a ssoAdapter) AuthCodeURL(ctx context.Context, idp, state string) (string, error) {
	u, err := a.rp.AuthCodeURL(ctx, idp, state)
	return u, ssoError(err)
}

func (a ssoAdapter) Exchange(ctx context.Context, idp, state, code string) (commands.SSOIdentity, error) {
	id, err := a.rp.Exchange(ctx, idp, state, code)
	if err != nil {
		return commands.SSOIdentity{}, ssoError(err)
	}
	return commands.SSOIdentity{Subject: id.Subject, Username: id.Username, DisplayName: id.DisplayName}, nil
}

func ssoError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sso.ErrRefused):
		return fmt.Errorf("%w: %w", commands.ErrSSORefused, err)
	default:
		return fmt.Errorf("%w: %w", commands.ErrSSOUnavailable, err)
	}
}
