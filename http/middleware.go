package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	nethttp "net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"spelt.dev/spelt/internal/appservice"
	"spelt.dev/spelt/internal/tokens"
	"spelt.dev/spelt/queries"
)

// cors answers every response with the headers the spec requires (client-server API,
// "Web Browser Clients") and OPTIONS pre-flight requests on any path with 204.
func cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization")
		if c.Request().Method == nethttp.MethodOptions {
			return c.NoContent(nethttp.StatusNoContent)
		}
		return next(c)
	}
}

const requestIDKey = "spelt.request_id"

// requestIDs gives every request an id (the client's X-Request-ID if it sent a sane one),
// echoed in the response and recorded in the metadata of the events it causes.
func requestIDs(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			id = tokens.Random(12)
		}
		c.Set(requestIDKey, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func requestID(c echo.Context) string {
	id, _ := c.Get(requestIDKey).(string)
	return id
}

// accessLog logs one line per request. It logs the path without the query string, which
// may carry an access token.
func accessLog(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			req := c.Request()
			logger.LogAttrs(req.Context(), slog.LevelInfo, "request",
				slog.String("request_id", requestID(c)),
				slog.String("method", req.Method),
				// The route's pattern, not the path: paths can carry secrets
				// (registration tokens in the admin API's).
				slog.String("route", routeOf(c)),
				slog.Int("status", c.Response().Status),
				slog.Int64("bytes", c.Response().Size),
				slog.Duration("took", time.Since(start)),
				slog.String("remote", c.RealIP()))
			return nil
		}
	}
}

func routeOf(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "(unrouted)"
}

// noNUL refuses requests whose path or query holds a NUL character: PostgreSQL text
// cannot store one, so it would otherwise end in a 500 or in an event the read models
// cannot apply.
func noNUL(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u := c.Request().URL
		if strings.Contains(u.Path, "\x00") || strings.Contains(u.RawQuery, "%00") || strings.Contains(u.RawPath, "%00") {
			return errInvalidParam("NUL characters are not allowed")
		}
		return next(c)
	}
}

// bodyLimit caps request bodies; reading past the limit fails with *http.MaxBytesError,
// which errors.go turns into 413 M_TOO_LARGE.
func bodyLimit(max int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > max {
				return &nethttp.MaxBytesError{Limit: max}
			}
			req.Body = nethttp.MaxBytesReader(c.Response(), req.Body, max)
			return next(c)
		}
	}
}

// bindJSON decodes a JSON object body into v. An empty body decodes as {}. Malformed
// JSON is M_NOT_JSON, a value of the wrong type M_BAD_JSON.
func bindJSON(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		return matrixErr(nethttp.StatusBadRequest, codeNotJSON, "Content not JSON.")
	}
	// PostgreSQL text cannot hold NUL: refuse it here rather than accept a write the
	// read models cannot apply.
	if bytes.Contains(body, []byte(`\u0000`)) {
		return errBadJSON("NUL characters (\\u0000) are not allowed")
	}
	if body[0] != '{' {
		return errBadJSON("Request body must be a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errBadJSON("%s must be of type %s", te.Field, jsonTypeName(te.Type.Kind().String()))
		}
		return errBadJSON("Invalid JSON: %v", err)
	}
	return nil
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	default:
		return "number"
	}
}

const identityKey = "spelt.identity"

// Authenticator resolves access tokens.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (queries.Identity, bool, error)
}

// requireAuth authenticates the request's access token (Authorization: Bearer, or the
// deprecated access_token query parameter), and notes the device as seen.
// Guests get through only where allowGuests is set: the endpoints the spec lists under
// "Guest access"; elsewhere they get 403 M_GUEST_ACCESS_FORBIDDEN.
// firstUse, if not nil, is called when the identity still has work to do on its first
// use (retiring the refresh token the access token was refreshed from).
func requireAuth(auth Authenticator, apps *appserviceAuth, seen *seenTracker, allowGuests bool, firstUse func(echo.Context, queries.Identity)) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			token, err := accessToken(c)
			if err != nil {
				return err
			}
			if token == "" {
				return matrixErr(nethttp.StatusUnauthorized, codeMissingToken, "Missing access token")
			}
			if id, ok, err := apps.identify(c, token); ok || err != nil {
				if err != nil {
					return err
				}
				c.Set(identityKey, id)
				return next(c)
			}
			id, expired, err := auth.Authenticate(c.Request().Context(), token)
			if err != nil {
				if expired {
					return &MatrixError{Status: nethttp.StatusUnauthorized, Code: codeUnknownToken,
						Message: "Access token has expired", Extra: map[string]any{"soft_logout": true}}
				}
				return err
			}
			if id.IsGuest && !allowGuests {
				return matrixErr(nethttp.StatusForbidden, codeGuestForbidden, "Guest access is not allowed here")
			}
			c.Set(identityKey, id)
			if id.Retires != nil && firstUse != nil {
				firstUse(c, id)
			}
			if seen != nil {
				seen.see(id, c.RealIP(), time.Now())
			}
			return next(c)
		}
	}
}

// accessToken returns the request's access token (Authorization: Bearer, or the
// deprecated access_token query parameter), "" when there is none.
func accessToken(c echo.Context) (string, error) {
	if h := c.Request().Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", matrixErr(nethttp.StatusUnauthorized, codeMissingToken, "Invalid Authorization header")
		}
		return strings.TrimSpace(t), nil
	}
	return c.QueryParam("access_token"), nil
}

// appserviceAuth authenticates application services by their as_token (spec:
// application service API, "Identity assertion").
type appserviceAuth struct {
	reg    *appservice.Registry
	server string
	q      interface {
		AppserviceIdentity(ctx context.Context, appservice, userID string) (queries.Identity, error)
	}
}

// identify reports whether token is an application service's and, if so, who the
// request acts as: the user_id parameter, which must be a user the service owns and
// has registered, or else the service's sender.
func (a *appserviceAuth) identify(c echo.Context, token string) (queries.Identity, bool, error) {
	if a == nil {
		return queries.Identity{}, false, nil
	}
	as := a.reg.ByToken(token)
	if as == nil {
		return queries.Identity{}, false, nil
	}
	user := c.QueryParam("user_id")
	if user == "" {
		user = as.Sender(a.server)
	}
	if !as.OwnsUser(user, a.server) {
		return queries.Identity{}, true, matrixErr(nethttp.StatusForbidden, codeExclusive, "Application service cannot masquerade as this user")
	}
	id, err := a.q.AppserviceIdentity(c.Request().Context(), as.ID, user)
	if errors.Is(err, queries.ErrNotFound) {
		return queries.Identity{}, true, errForbidden("Application service has not registered this user")
	}
	return id, true, err
}

func identity(c echo.Context) queries.Identity {
	id, _ := c.Get(identityKey).(queries.Identity)
	return id
}

// limiter is a per-client token bucket (keyed by remote address) for expensive or
// abusable endpoints.
type limiter struct {
	enabled bool
	rate    rate.Limit
	burst   int
	mu      sync.Mutex
	clients map[string]*clientLimit
	lastGC  time.Time
}

type clientLimit struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(enabled bool, perSecond float64, burst int) *limiter {
	return &limiter{enabled: enabled, rate: rate.Limit(perSecond), burst: burst, clients: map[string]*clientLimit{}}
}

func (l *limiter) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !l.enabled {
			return next(c)
		}
		now := time.Now()
		l.mu.Lock()
		if now.Sub(l.lastGC) > time.Minute {
			for k, v := range l.clients {
				if now.Sub(v.seen) > 10*time.Minute {
					delete(l.clients, k)
				}
			}
			l.lastGC = now
		}
		key := c.RealIP()
		cl := l.clients[key]
		if cl == nil {
			cl = &clientLimit{l: rate.NewLimiter(l.rate, l.burst)}
			l.clients[key] = cl
		}
		cl.seen = now
		r := cl.l.ReserveN(now, 1)
		delay := r.DelayFrom(now)
		if delay > 0 {
			r.CancelAt(now)
		}
		l.mu.Unlock()
		if delay > 0 {
			ms := int64(math.Ceil(float64(delay) / float64(time.Millisecond)))
			c.Response().Header().Set(codeLimitRetryHeader, strconv.FormatInt(int64(math.Ceil(delay.Seconds())), 10))
			return &MatrixError{Status: nethttp.StatusTooManyRequests, Code: codeLimitExceeded,
				Message: "Too many requests", Extra: map[string]any{"retry_after_ms": ms}}
		}
		return next(c)
	}
}
