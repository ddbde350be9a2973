package http

import (
	"context"
	"fmt"
	"html/template"
	nethttp "net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/queries"
)

// Mailer sends plain-text e-mail. Without one (Config.Mailer nil) Spelt validates no
// e-mail address: the requestToken endpoints answer M_THREEPID_MEDIUM_NOT_SUPPORTED.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// ThreepidCommands is the part of the write side that handles third-party identifiers.
type ThreepidCommands interface {
	RequestThreepidToken(ctx context.Context, meta commands.Meta, req commands.RequestThreepidToken) (commands.ThreepidTokenRequested, error)
	SubmitThreepidToken(ctx context.Context, meta commands.Meta, sid, clientSecret, token string) (string, eventlog.Position, error)
	AddThreepid(ctx context.Context, meta commands.Meta, req commands.AddThreepid) (eventlog.Position, error)
	RemoveThreepid(ctx context.Context, meta commands.Meta, userID, medium, address string) (eventlog.Position, bool, error)
	ResetPassword(ctx context.Context, meta commands.Meta, req commands.ResetPassword) (eventlog.Position, error)
	BindThreepid(ctx context.Context, meta commands.Meta, userID, server, accessToken, sid, clientSecret string) (eventlog.Position, error)
	UnbindThreepid(ctx context.Context, meta commands.Meta, userID, server, medium, address string) (string, eventlog.Position, error)
}

// ThreepidQueries is the part of the read side that lists third-party identifiers.
type ThreepidQueries interface {
	Threepids(ctx context.Context, userID string) ([]queries.Threepid, error)
}

// The pages the validation e-mails link to. The spec leaves how a homeserver validates
// an address to it; these are Synapse's paths, so that mail templates, reverse-proxy
// rules and habits carry over. GET shows a confirmation page (so that a mail scanner
// following links validates nothing); its form POSTs back. A POST with a JSON body
// {"sid", "client_secret", "token"} (the identity service's submitToken parameters)
// validates too and answers {"success": true}.
const (
	submitPathRegister      = "/_matrix/client/unstable/registration/email/submit_token"
	submitPathAdd           = "/_matrix/client/unstable/add_threepid/email/submit_token"
	submitPathPasswordReset = "/_synapse/client/password_reset/email/submit_token"
)

// optionalAuth authenticates the request like requireAuth when it carries an access
// token, and lets it through without an identity when it does not (POST
// /account/password: a password reset by e-mail has no token).
func optionalAuth(a Authenticator, apps *appserviceAuth, seen *seenTracker) echo.MiddlewareFunc {
	required := requireAuth(a, apps, seen, false, nil)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		withAuth := required(next)
		return func(c echo.Context) error {
			if c.Request().Header.Get("Authorization") == "" && c.QueryParam("access_token") == "" {
				return next(c)
			}
			return withAuth(c)
		}
	}
}

// threepidCreds are the credentials of a validation session.
type threepidCreds struct {
	SID           string `json:"sid"`
	ClientSecret  string `json:"client_secret"`
	IDServer      string `json:"id_server"`
	IDAccessToken string `json:"id_access_token"`
}

// creds returns the auth dict's threepid_creds (or its deprecated spelling), or nil.
func (a *authDict) creds() *threepidCreds {
	if a.ThreepidCreds != nil {
		return a.ThreepidCreds
	}
	return a.ThreePidCreds
}

type requestEmailTokenRequest struct {
	ClientSecret string `json:"client_secret"`
	Email        string `json:"email"`
	SendAttempt  *int64 `json:"send_attempt"`
	NextLink     string `json:"next_link"`
	// IDServer and IDAccessToken are ignored: the homeserver validates the address.
	IDServer      string `json:"id_server"`
	IDAccessToken string `json:"id_access_token"`
}

// requestEmailToken: POST /register/email/requestToken, /account/3pid/email/requestToken
// and /account/password/email/requestToken. The e-mail holds a link to the submit
// page of purpose; the response holds no submit_url (as Synapse's): the user follows
// the link and the client then goes on.
func (s *Server) requestEmailToken(purpose string) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req requestEmailTokenRequest
		if err := bindJSON(c, &req); err != nil {
			return err
		}
		if s.cfg.Mailer == nil {
			return commands.ErrThreepidMediumNotSupported
		}
		switch {
		case req.ClientSecret == "":
			return errMissingParam("Missing client_secret")
		case req.Email == "":
			return errMissingParam("Missing email")
		case req.SendAttempt == nil:
			return errMissingParam("Missing send_attempt")
		}
		res, err := s.cmd.RequestThreepidToken(c.Request().Context(), meta(c, eventlog.OriginClient), commands.RequestThreepidToken{
			Purpose: purpose, Medium: commands.MediumEmail, Address: req.Email, ClientSecret: req.ClientSecret,
			SendAttempt: *req.SendAttempt, NextLink: req.NextLink,
			Send: func(ctx context.Context, address, sid, token string) error {
				return s.sendValidationEmail(ctx, purpose, address, sid, req.ClientSecret, token)
			},
		})
		if err != nil {
			return err
		}
		return c.JSON(nethttp.StatusOK, map[string]string{"sid": res.SID})
	}
}

// requestMSISDNToken: POST /register/msisdn/requestToken,
// /account/3pid/msisdn/requestToken and /account/password/msisdn/requestToken. Spelt
// has no way to send text messages, so it refuses phone numbers.
func (s *Server) requestMSISDNToken(c echo.Context) error {
	var req map[string]any
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	return commands.ErrThreepidMediumNotSupported
}

var validationEmails = map[string]struct{ subject, intro, page string }{
	commands.ThreepidPurposeRegister: {
		subject: "Confirm your e-mail address for %s",
		intro:   "Someone asked to register an account on the Matrix server %s with this e-mail address. If it was you, follow this link to confirm the address:",
		page:    "Confirm that this e-mail address may be used to register an account on the Matrix server %s.",
	},
	commands.ThreepidPurposeAdd: {
		subject: "Confirm your e-mail address for %s",
		intro:   "Someone asked to add this e-mail address to their account on the Matrix server %s. If it was you, follow this link to confirm the address:",
		page:    "Confirm that this e-mail address may be added to an account on the Matrix server %s.",
	},
	commands.ThreepidPurposePasswordReset: {
		subject: "Reset your password on %s",
		intro:   "Someone asked to reset the password of the account with this e-mail address on the Matrix server %s. If it was you, follow this link to confirm, then go back to your Matrix client:",
		page:    "Confirm that the password of the account with this e-mail address on the Matrix server %s may be reset.",
	},
}

var submitPaths = map[string]string{
	commands.ThreepidPurposeRegister:      submitPathRegister,
	commands.ThreepidPurposeAdd:           submitPathAdd,
	commands.ThreepidPurposePasswordReset: submitPathPasswordReset,
}

// sendValidationEmail mails the link that validates session sid.
func (s *Server) sendValidationEmail(ctx context.Context, purpose, address, sid, clientSecret, token string) error {
	m := validationEmails[purpose]
	link := strings.TrimSuffix(s.cfg.PublicBaseURL, "/") + submitPaths[purpose] + "?" +
		url.Values{"sid": {sid}, "client_secret": {clientSecret}, "token": {token}}.Encode()
	body := fmt.Sprintf(m.intro, s.cfg.ServerName) + "\n\n" + link + "\n\n" +
		"If you did not ask for this, ignore this e-mail: nothing happens unless the link is followed and confirmed.\n"
	return s.cfg.Mailer.Send(ctx, address, fmt.Sprintf(m.subject, s.cfg.ServerName), body)
}

// page is the HTML answer of the submit pages, for people rather than clients.
var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p>
{{if .Action}}<form method="post" action="{{.Action}}">
<input type="hidden" name="sid" value="{{.SID}}"><input type="hidden" name="client_secret" value="{{.ClientSecret}}">
<input type="hidden" name="token" value="{{.Token}}"><button type="submit">Confirm</button></form>{{end}}
</body></html>
`))

type pageData struct {
	Title, Text                      string
	Action, SID, ClientSecret, Token string
}

func renderPage(c echo.Context, status int, d pageData) error {
	h := c.Response().Header()
	// The page carries the token: no framing (a framed Confirm button could be
	// clicked unknowingly), no referrer, no script. (No form-action: browsers apply it
	// to the redirect to next_link after the form is sent.)
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	var b strings.Builder
	if err := page.Execute(&b, d); err != nil {
		return err
	}
	return c.HTML(status, b.String())
}

// renderPageError shows err as a page, with the status and message errors.go maps it to.
func renderPageError(c echo.Context, err error) error {
	me := toMatrix(err)
	if me == nil {
		return err
	}
	return renderPage(c, me.Status, pageData{Title: "The address could not be validated", Text: me.Message})
}

// confirmEmailPage: GET on a submit path, the link of the e-mail. It changes nothing:
// it shows what the address would be validated for, with a Confirm button.
func (s *Server) confirmEmailPage(purpose string) echo.HandlerFunc {
	return func(c echo.Context) error {
		d := pageData{
			Title: "Confirm your e-mail address", Text: fmt.Sprintf(validationEmails[purpose].page, s.cfg.ServerName),
			Action: submitPaths[purpose], SID: c.QueryParam("sid"), ClientSecret: c.QueryParam("client_secret"), Token: c.QueryParam("token"),
		}
		if d.SID == "" || d.ClientSecret == "" || d.Token == "" {
			return renderPageError(c, matrixErr(nethttp.StatusBadRequest, codeMissingParam,
				"The link is incomplete: it needs sid, client_secret and token. Copy the whole link from the e-mail."))
		}
		return renderPage(c, nethttp.StatusOK, d)
	}
}

// submitEmailToken: POST on a submit path, from the confirmation page's form
// (answered with a page, or a redirect to the next_link given to requestToken) or
// from a client with a JSON body (answered with {"success": true}).
func (s *Server) submitEmailToken(purpose string) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req struct {
			SID          string `json:"sid"`
			ClientSecret string `json:"client_secret"`
			Token        string `json:"token"`
		}
		form := strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), echo.MIMEApplicationForm)
		if form {
			req.SID, req.ClientSecret, req.Token = c.FormValue("sid"), c.FormValue("client_secret"), c.FormValue("token")
		} else if err := bindJSON(c, &req); err != nil {
			return err
		}
		fail := func(err error) error {
			if form {
				return renderPageError(c, err)
			}
			return err
		}
		for _, p := range []struct{ name, value string }{{"sid", req.SID}, {"client_secret", req.ClientSecret}, {"token", req.Token}} {
			if p.value == "" {
				return fail(errMissingParam("Missing %s", p.name))
			}
		}
		next, _, err := s.cmd.SubmitThreepidToken(c.Request().Context(), meta(c, eventlog.OriginClient), req.SID, req.ClientSecret, req.Token)
		if err != nil {
			return fail(err)
		}
		if !form {
			return c.JSON(nethttp.StatusOK, map[string]bool{"success": true})
		}
		if next != "" {
			return c.Redirect(nethttp.StatusFound, next)
		}
		text := "Your e-mail address is validated. Go back to your Matrix client to continue."
		if purpose == commands.ThreepidPurposePasswordReset {
			text = "Your e-mail address is validated. Go back to your Matrix client to choose your new password."
		}
		return renderPage(c, nethttp.StatusOK, pageData{Title: "E-mail address validated", Text: text})
	}
}

// getThreepids: GET /_matrix/client/v3/account/3pid.
func (s *Server) getThreepids(c echo.Context) error {
	list, err := s.q.Threepids(c.Request().Context(), identity(c).UserID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, len(list))
	for i, t := range list {
		out[i] = map[string]any{"medium": t.Medium, "address": t.Address,
			"validated_at": t.ValidatedAt.UnixMilli(), "added_at": t.AddedAt.UnixMilli()}
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"threepids": out})
}

// addThreepid: POST /_matrix/client/v3/account/3pid/add (user-interactive
// authentication: m.login.password).
func (s *Server) addThreepid(c echo.Context) error {
	var req struct {
		Auth         *authDict `json:"auth"`
		ClientSecret string    `json:"client_secret"`
		SID          string    `json:"sid"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.ClientSecret == "" {
		return errMissingParam("Missing client_secret")
	}
	if req.SID == "" {
		return errMissingParam("Missing sid")
	}
	auth, err := req.Auth.command()
	if err != nil {
		return err
	}
	pos, err := s.cmd.AddThreepid(c.Request().Context(), meta(c, eventlog.OriginClient), commands.AddThreepid{
		UserID: identity(c).UserID, SID: req.SID, ClientSecret: req.ClientSecret, Auth: auth,
	})
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

type threepidRequest struct {
	IDServer string `json:"id_server"`
	Medium   string `json:"medium"`
	Address  string `json:"address"`
}

func (r threepidRequest) check() error {
	switch {
	case r.Medium == "":
		return errMissingParam("Missing medium")
	case r.Address == "":
		return errMissingParam("Missing address")
	case r.Medium != commands.MediumEmail && r.Medium != commands.MediumMSISDN:
		return errInvalidParam("medium must be email or msisdn")
	}
	return nil
}

// deleteThreepid: POST /_matrix/client/v3/account/3pid/delete.
func (s *Server) deleteThreepid(c echo.Context) error {
	var req threepidRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := req.check(); err != nil {
		return err
	}
	ctx, m, user := c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID
	pos, _, err := s.cmd.RemoveThreepid(ctx, m, user, req.Medium, req.Address)
	if err != nil {
		return err
	}
	// The address leaves the identity servers it was bound at too.
	result, unbound, err := s.cmd.UnbindThreepid(ctx, m, user, req.IDServer, req.Medium, req.Address)
	if err != nil {
		return err
	}
	if pos.Less(unbound) {
		pos = unbound
	}
	if err := s.wait.WaitFor(ctx, pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]string{"id_server_unbind_result": result})
}

// unbindThreepid: POST /_matrix/client/v3/account/3pid/unbind: the 3PID leaves the
// identity server (id_server, or those Spelt bound it at), and stays on the account.
func (s *Server) unbindThreepid(c echo.Context) error {
	var req threepidRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := req.check(); err != nil {
		return err
	}
	result, pos, err := s.cmd.UnbindThreepid(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, req.IDServer, req.Medium, req.Address)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]string{"id_server_unbind_result": result})
}

// bindThreepid: POST /_matrix/client/v3/account/3pid/bind: a trusted identity server
// binds the 3PID the user validated there to the user (anything else is
// M_SERVER_NOT_TRUSTED).
func (s *Server) bindThreepid(c echo.Context) error {
	var req threepidCreds
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := req.check(true); err != nil {
		return err
	}
	return s.bind(c, req)
}

func (s *Server) bind(c echo.Context, req threepidCreds) error {
	pos, err := s.cmd.BindThreepid(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, req.IDServer,
		req.IDAccessToken, req.SID, req.ClientSecret)
	if err != nil {
		return err
	}
	return s.emptyWhenVisible(c, pos)
}

func (r *threepidCreds) check(needAccessToken bool) error {
	switch {
	case r.ClientSecret == "":
		return errMissingParam("Missing client_secret")
	case r.SID == "":
		return errMissingParam("Missing sid")
	case r.IDServer == "":
		return errMissingParam("Missing id_server")
	case needAccessToken && r.IDAccessToken == "":
		return errMissingParam("Missing id_access_token")
	}
	return nil
}

// postThreepidDeprecated: POST /_matrix/client/v3/account/3pid (deprecated). The spec
// makes it equivalent to /3pid/bind. (Synapse instead adds a session it validated
// itself, without user-interactive authentication; Spelt keeps adding behind /3pid/add
// and its password check.) Identity servers (v2) need the user's id_access_token,
// which r0.5 clients may leave out: without it nothing can be bound (M_INVALID_PARAM).
func (s *Server) postThreepidDeprecated(c echo.Context) error {
	var req struct {
		Creds *threepidCreds `json:"three_pid_creds"`
		// Legacy is the r0 spelling.
		Legacy *threepidCreds `json:"threePidCreds"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	creds := req.Creds
	if creds == nil {
		creds = req.Legacy
	}
	if creds == nil {
		return errMissingParam("Missing three_pid_creds")
	}
	// id_access_token is optional here for r0.5 clients (spec).
	if err := creds.check(false); err != nil {
		return err
	}
	return s.bind(c, *creds)
}

// resetPassword is POST /account/password without an access token: a password reset
// through a validated e-mail address (user-interactive authentication,
// m.login.email.identity). Without e-mail it needs a token, as before.
func (s *Server) resetPassword(c echo.Context, req changePasswordRequest, auth *commands.AuthDict) error {
	if s.cfg.Mailer == nil {
		return matrixErr(nethttp.StatusUnauthorized, codeMissingToken, "Missing access token")
	}
	pos, err := s.cmd.ResetPassword(c.Request().Context(), meta(c, eventlog.OriginClient), commands.ResetPassword{
		NewPassword: req.NewPassword, LogoutDevices: req.LogoutDevices == nil || *req.LogoutDevices, Auth: auth,
	})
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

// loginIdentifier is the identifier of POST /login (spec: client-server API,
// "Identifier types").
type loginIdentifier struct {
	Type string `json:"type"`
	User string `json:"user"`
	// m.id.thirdparty
	Medium  string `json:"medium"`
	Address string `json:"address"`
	// m.id.phone
	Country string `json:"country"`
	Phone   string `json:"phone"`
}

// threepid returns the medium and address an m.id.thirdparty or m.id.phone identifier
// names. A phone number becomes its digits: Spelt has no numbering plan to put a
// national number in international form, and no phone number can be added to an
// account anyway (no SMS), so such a login only ever fails as an unknown 3PID (403).
func (i *loginIdentifier) threepid() (medium, address string) {
	if i.Type != "m.id.phone" {
		return i.Medium, i.Address
	}
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, i.Phone)
	return commands.MediumMSISDN, digits
}
