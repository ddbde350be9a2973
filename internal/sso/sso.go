// Package sso is Spelt's OpenID Connect relying party: provider discovery, the
// authorization code flow with PKCE (S256), state and nonce, the code exchange and the
// ID token's verification (signature, issuer, audience, expiry, nonce), with
// github.com/coreos/go-oidc and golang.org/x/oauth2. It imports nothing of the project;
// package commands uses it through an interface of its own.
//
// It keeps no per-login state: the PKCE code verifier and the nonce of a login are
// derived from its state with a server secret (HMAC-SHA256), so any process with the
// secret can finish a login that another started, and nothing stored lets anyone else
// finish it.
package sso

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Errors wrapped by the relying party's methods.
var (
	// ErrRefused: the provider refused the code, or its answer failed verification.
	ErrRefused = errors.New("refused")
	// ErrUnavailable: the provider could not be reached or answered nonsense.
	ErrUnavailable = errors.New("unavailable")
)

// Provider is one configured OpenID provider.
type Provider struct {
	// ID is the identity provider's ID in the m.login.sso flow (idpId).
	ID   string
	Name string
	// Issuer is the provider's issuer URL; discovery reads
	// <Issuer>/.well-known/openid-configuration.
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// LocalpartClaim and DisplayNameClaim name the claims a new account's localpart
	// and display name come from.
	LocalpartClaim   string
	DisplayNameClaim string
}

// Identity is who the provider says the user is.
type Identity struct {
	Subject     string
	Username    string // the localpart claim, "" when absent
	DisplayName string // the display-name claim, "" when absent
}

// RelyingParty talks to the configured providers.
type RelyingParty struct {
	callbackURL string
	secret      []byte
	client      *http.Client
	providers   map[string]*provider
	now         func() time.Time
}

// provider is a configured provider and, once discovered, its metadata and keys.
type provider struct {
	cfg Provider

	mu       sync.Mutex
	oidc     *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

// New returns a relying party for the providers. callbackURL is the redirect_uri
// registered at every provider; secret (at least 32 bytes) derives each login's PKCE
// verifier and nonce and must be the same in every process; client makes every
// request to the providers (discovery, keys, token, userinfo), so it is where
// private addresses are refused.
func New(providers []Provider, callbackURL string, secret []byte, client *http.Client) *RelyingParty {
	rp := &RelyingParty{callbackURL: callbackURL, secret: secret, client: client,
		providers: make(map[string]*provider, len(providers)), now: time.Now}
	for _, p := range providers {
		rp.providers[p.ID] = &provider{cfg: p}
	}
	return rp
}

// Has reports whether a provider has this ID.
func (rp *RelyingParty) Has(id string) bool {
	_, ok := rp.providers[id]
	return ok
}

// discover returns the provider's metadata, fetching it on first use. A failed
// discovery is not remembered: the next login tries again.
func (rp *RelyingParty) discover(ctx context.Context, id string) (*provider, error) {
	p, ok := rp.providers[id]
	if !ok {
		return nil, fmt.Errorf("unknown identity provider %q: %w", id, ErrRefused)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.oidc != nil {
		return p, nil
	}
	// The client's requests end with ctx; the provider keeps the client (not ctx) for
	// fetching its keys later.
	o, err := oidc.NewProvider(oidc.ClientContext(ctx, rp.client), strings.TrimSuffix(p.cfg.Issuer, "/"))
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w: %w", p.cfg.Issuer, ErrUnavailable, err)
	}
	p.oidc = o
	// The verifier checks the signature against the provider's keys, the issuer, the
	// audience (our client ID) and the expiry.
	p.verifier = o.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, Now: rp.now})
	return p, nil
}

func (p *provider) oauth2(callbackURL string) *oauth2.Config {
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Endpoint: p.oidc.Endpoint(),
		RedirectURL: callbackURL, Scopes: p.cfg.Scopes}
}

// derive is the login's value for purpose: HMAC-SHA256 of the provider and the state
// under the secret, in unpadded base64url (43 characters: a valid PKCE verifier, RFC
// 7636 section 4.1).
func (rp *RelyingParty) derive(purpose, idp, state string) string {
	m := hmac.New(sha256.New, rp.secret)
	m.Write([]byte("spelt-sso\x00" + purpose + "\x00" + idp + "\x00" + state))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// AuthCodeURL returns the provider's authorization URL for the login with this state:
// response_type=code, the state, a nonce and an S256 PKCE code challenge.
func (rp *RelyingParty) AuthCodeURL(ctx context.Context, id, state string) (string, error) {
	p, err := rp.discover(ctx, id)
	if err != nil {
		return "", err
	}
	return p.oauth2(rp.callbackURL).AuthCodeURL(state,
		oauth2.S256ChallengeOption(rp.derive("pkce", id, state)), oidc.Nonce(rp.derive("nonce", id, state))), nil
}

// Exchange redeems the code of the login with this state at the provider's token
// endpoint (with the login's PKCE verifier), verifies the ID token it returns and
// checks its nonce, and reads the claims, from the userinfo endpoint when the ID token
// lacks them.
func (rp *RelyingParty) Exchange(ctx context.Context, id, state, code string) (Identity, error) {
	p, err := rp.discover(ctx, id)
	if err != nil {
		return Identity{}, err
	}
	ctx = oidc.ClientContext(ctx, rp.client)
	tok, err := p.oauth2(rp.callbackURL).Exchange(ctx, code, oauth2.VerifierOption(rp.derive("pkce", id, state)))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return Identity{}, fmt.Errorf("code exchange: %w: %s", ErrRefused, oauthError(re))
		}
		return Identity{}, fmt.Errorf("code exchange: %w: %w", ErrUnavailable, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("token response without an id_token: %w", ErrRefused)
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("id token: %w: %w", ErrRefused, err)
	}
	// The nonce binds the ID token to this login (OpenID Connect Core 1.0, 3.1.3.7).
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(rp.derive("nonce", id, state))) != 1 {
		return Identity{}, fmt.Errorf("id token: %w: nonce does not match the login's", ErrRefused)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return Identity{}, fmt.Errorf("id token: %w: %w", ErrRefused, err)
		}
	}
	if idt.Subject == "" {
		return Identity{}, fmt.Errorf("id token without a subject: %w", ErrRefused)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("id token claims: %w: %w", ErrRefused, err)
	}
	if rp.missing(p, claims) && p.oidc.UserInfoEndpoint() != "" {
		ui, err := p.oidc.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fmt.Errorf("userinfo: %w: %w", ErrUnavailable, err)
		}
		// The userinfo response must be about the ID token's subject (OpenID Connect
		// Core 1.0, 5.3.2).
		if ui.Subject != idt.Subject {
			return Identity{}, fmt.Errorf("userinfo: %w: subject differs from the id token's", ErrRefused)
		}
		more := map[string]any{}
		if err := ui.Claims(&more); err != nil {
			return Identity{}, fmt.Errorf("userinfo claims: %w: %w", ErrRefused, err)
		}
		for k, v := range more {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	return Identity{Subject: idt.Subject, Username: stringClaim(claims, p.cfg.LocalpartClaim),
		DisplayName: stringClaim(claims, p.cfg.DisplayNameClaim)}, nil
}

// missing reports whether a configured claim is absent.
func (rp *RelyingParty) missing(p *provider, claims map[string]any) bool {
	for _, c := range []string{p.cfg.LocalpartClaim, p.cfg.DisplayNameClaim} {
		if c == "" {
			continue
		}
		if _, ok := claims[c]; !ok {
			return true
		}
	}
	return false
}

func stringClaim(claims map[string]any, name string) string {
	if name == "" {
		return ""
	}
	s, _ := claims[name].(string)
	return s
}

// oauthError is the provider's error code (RFC 6749, 5.2), never its whole body.
func oauthError(re *oauth2.RetrieveError) string {
	if re.ErrorCode != "" {
		return re.ErrorCode
	}
	return fmt.Sprintf("status %d", re.Response.StatusCode)
}

// CallbackURL is the redirect_uri to register at the providers: Synapse's path, so an
// identity provider's client configuration carries over.
func CallbackURL(publicBaseURL string) string {
	u, err := url.Parse(publicBaseURL)
	if err != nil {
		return strings.TrimSuffix(publicBaseURL, "/") + CallbackPath
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + CallbackPath
	return u.String()
}

// CallbackPath is the path of the providers' callback.
const CallbackPath = "/_synapse/client/oidc/callback"
