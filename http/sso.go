package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	nethttp "net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
)

// IdentityProvider is an SSO identity provider as GET /login lists it.
type IdentityProvider struct {
	ID   string
	Name string
}

// ssoCookiePath scopes the cookie that binds a login to its browser to the callback.
const ssoCookiePath = "/_synapse/client/oidc"

// ssoCookieName is the name of the cookie of the login with this state: one per login,
// so that two logins in flight in one browser do not overwrite each other's.
func ssoCookieName(state string) string {
	h := sha256.Sum256([]byte(state))
	return "spelt_sso_" + hex.EncodeToString(h[:8])
}

// ssoRedirect: GET /_matrix/client/v3/login/sso/redirect and
// /login/sso/redirect/{idpId} (spec: client-server API, "Client login via SSO").
// Without an idpId, a server with one provider redirects to it; with several, it
// shows a page to choose one, as the spec allows.
func (s *Server) ssoRedirect(c echo.Context) error {
	if len(s.cfg.SSOProviders) == 0 {
		return commands.ErrSSODisabled
	}
	redirectURL := c.QueryParam("redirectUrl")
	if redirectURL == "" {
		return errMissingParam("Missing redirectUrl")
	}
	idp := c.Param("idpId")
	if idp == "" {
		if len(s.cfg.SSOProviders) > 1 {
			return s.ssoChooser(c, redirectURL)
		}
		idp = s.cfg.SSOProviders[0].ID
	}
	res, err := s.cmd.StartSSO(c.Request().Context(), meta(c, eventlog.OriginClient),
		commands.StartSSO{IdP: idp, RedirectURL: redirectURL})
	if err != nil {
		return err
	}
	return s.toIdP(c, res)
}

// toIdP sets the cookie that binds the login to this browser and sends it to the
// identity provider.
func (s *Server) toIdP(c echo.Context, res commands.SSOStarted) error {
	c.SetCookie(&nethttp.Cookie{
		Name: ssoCookieName(res.State), Value: res.BrowserKey, Path: ssoCookiePath,
		MaxAge: int(res.ExpiresIn.Seconds()), HttpOnly: true, SameSite: nethttp.SameSiteLaxMode,
		Secure: strings.HasPrefix(s.cfg.PublicBaseURL, "https:"),
	})
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(nethttp.StatusFound, res.AuthURL)
}

var ssoChooserPage = template.Must(template.New("choose").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Log in</title></head>
<body>
<h1>Log in to {{.Server}}</h1>
<p>Continue with:</p>
<ul>{{range .Providers}}<li><a href="{{.URL}}">{{.Name}}</a></li>{{end}}</ul>
</body></html>
`))

type ssoChoice struct {
	Name string
	URL  string
}

// ssoChooser is the page that lets the user choose an identity provider.
func (s *Server) ssoChooser(c echo.Context, redirectURL string) error {
	var choices []ssoChoice
	for _, p := range s.cfg.SSOProviders {
		choices = append(choices, ssoChoice{Name: p.Name,
			URL: "redirect/" + url.PathEscape(p.ID) + "?redirectUrl=" + url.QueryEscape(redirectURL)})
	}
	return render(c, nethttp.StatusOK, ssoChooserPage, map[string]any{"Server": s.cfg.ServerName, "Providers": choices})
}

// ssoCallback: GET /_synapse/client/oidc/callback, where identity providers send the
// browser back (Synapse's path, so a provider's client registration carries over). A
// login goes on to the client's redirectUrl with a login token; an m.login.sso stage
// ends on the fallback's completion page.
func (s *Server) ssoCallback(c echo.Context) error {
	if len(s.cfg.SSOProviders) == 0 {
		return commands.ErrSSODisabled
	}
	state := c.QueryParam("state")
	if state == "" {
		return errMissingParam("Missing state")
	}
	name := ssoCookieName(state)
	var browserKey string
	if ck, err := c.Cookie(name); err == nil {
		browserKey = ck.Value
	}
	// The cookie is checked once and cleared, whatever the outcome.
	c.SetCookie(&nethttp.Cookie{Name: name, Value: "", Path: ssoCookiePath, MaxAge: -1, HttpOnly: true,
		SameSite: nethttp.SameSiteLaxMode, Secure: strings.HasPrefix(s.cfg.PublicBaseURL, "https:")})
	c.Response().Header().Set("Cache-Control", "no-store")
	res, err := s.cmd.FinishSSO(c.Request().Context(), meta(c, eventlog.OriginClient), commands.FinishSSO{
		State: state, Code: c.QueryParam("code"), IdPError: c.QueryParam("error"), BrowserKey: browserKey,
	})
	if err != nil {
		return err
	}
	if res.UIASession != "" {
		return render(c, nethttp.StatusOK, uiaDonePage, nil)
	}
	// The spec asks the server to confirm before handing a session to the client at
	// redirectUrl: without this page, a crafted link would send a user who is logged in
	// at the identity provider straight into an attacker's client, in one click.
	host := res.RedirectURL
	if u, err := url.Parse(res.RedirectURL); err == nil && u.Host != "" {
		host = u.Host
	}
	return render(c, nethttp.StatusOK, ssoContinuePage, map[string]any{
		// The client's URL may have an app's own scheme (myapp://); FinishSSO accepted
		// only absolute URLs without script schemes, so the template may trust it.
		"Server": s.cfg.ServerName, "Host": host, "URL": template.URL(res.RedirectURL),
	})
}

// ssoContinuePage asks the user to confirm handing the login to the client.
var ssoContinuePage = template.Must(template.New("continue").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="referrer" content="no-referrer">
<title>Continue to your client</title></head>
<body>
<h1>Continue to {{.Host}}?</h1>
<p>You are about to log in to your account on {{.Server}} with the application at
<strong>{{.Host}}</strong>. Continue only if you started this login there.</p>
<p><a id="continue" href="{{.URL}}">Continue to {{.Host}}</a></p>
</body></html>
`))

var ssoConfirmPage = template.Must(template.New("confirm").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Confirm your identity</title></head>
<body>
<h1>Confirm your identity</h1>
<p>A client is asking to do something that needs you to confirm your identity, such as
changing your password, removing a device or deactivating your account on {{.Server}}.
To allow it, log in again with single sign-on. If you did not expect this, do not go
on: your account may be compromised.</p>
<ul>{{range .Providers}}<li><a href="{{.URL}}">Continue with {{.Name}}</a></li>{{end}}</ul>
</body></html>
`))

// uiaDonePage is the fallback's completion page (spec: client-server API, "Fallback").
var uiaDonePage = template.Must(template.New("done").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Authentication complete</title></head>
<body>
<p>Thank you. You may now close this window and return to the application.</p>
<script>
if (window.onAuthDone) {
    window.onAuthDone();
} else if (window.opener && window.opener.postMessage) {
    window.opener.postMessage("authDone", "*");
}
</script>
</body></html>
`))

// ssoFallback: GET /_matrix/client/v3/auth/m.login.sso/fallback/web?session=...
// (spec: client-server API, "SSO during User-Interactive Authentication"). It first
// shows what is being confirmed, as the spec asks, with a link per provider; the link
// (idp=...) starts the login at that provider, for the session.
func (s *Server) ssoFallback(c echo.Context) error {
	if len(s.cfg.SSOProviders) == 0 {
		return commands.ErrSSODisabled
	}
	session := c.QueryParam("session")
	if session == "" {
		return errMissingParam("Missing session")
	}
	idp := c.QueryParam("idp")
	if idp == "" {
		var choices []ssoChoice
		for _, p := range s.cfg.SSOProviders {
			choices = append(choices, ssoChoice{Name: p.Name,
				URL: "web?session=" + url.QueryEscape(session) + "&idp=" + url.QueryEscape(p.ID)})
		}
		return render(c, nethttp.StatusOK, ssoConfirmPage, map[string]any{"Server": s.cfg.ServerName, "Providers": choices})
	}
	res, err := s.cmd.StartSSO(c.Request().Context(), meta(c, eventlog.OriginClient),
		commands.StartSSO{IdP: idp, UIASession: session})
	if err != nil {
		return err
	}
	return s.toIdP(c, res)
}

// render writes an HTML page that no other site may frame (clickjacking).
func render(c echo.Context, status int, t *template.Template, data any) error {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	return c.HTML(status, b.String())
}

// SSOCommands are the single sign-on commands.
type SSOCommands interface {
	StartSSO(ctx context.Context, meta commands.Meta, req commands.StartSSO) (commands.SSOStarted, error)
	FinishSSO(ctx context.Context, meta commands.Meta, req commands.FinishSSO) (commands.SSOFinished, error)
}
