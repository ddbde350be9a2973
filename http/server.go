package http

import (
	"context"
	"errors"
	"log/slog"
	"net"
	nethttp "net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/appservice"
	"spelt.dev/spelt/internal/typing"
	"spelt.dev/spelt/queries"
)

// Config is what the HTTP layer needs of the server's configuration.
type Config struct {
	// Appservices are the registered application services (nil: none).
	Appservices         *appservice.Registry
	ServerName          string
	PublicBaseURL       string
	RegistrationEnabled bool
	SharedSecret        string
	MaxBodyBytes        int64
	RateLimits          bool
	LoginPerSecond      float64
	LoginBurst          int
	RegisterPerSecond   float64
	RegisterBurst       int
	Support             Support
	// SeenFlushInterval is how often device sightings are recorded; a minute when zero.
	SeenFlushInterval time.Duration
	// Mailer sends the e-mail that validates addresses; nil when [email] is off.
	Mailer Mailer
	// SSOProviders are the single sign-on identity providers; none turns SSO off.
	SSOProviders []IdentityProvider
	// RoomVersions are the room versions the server supports; DefaultRoomVersion is
	// the one new rooms get.
	RoomVersions       []string
	DefaultRoomVersion string
	// Presence turns presence on ([presence] enabled).
	Presence bool
	// Typing is who is typing where; nil: a hub of this process alone.
	Typing *typing.Hub
}

// Support is what GET /.well-known/matrix/support publishes.
type Support struct {
	Page          string
	AdminMatrixID string
	AdminEmail    string
}

// Commands is the write side as the HTTP layer uses it.
type Commands interface {
	Register(ctx context.Context, meta commands.Meta, req commands.Register) (commands.Registered, error)
	RegisterByAdmin(ctx context.Context, meta commands.Meta, req commands.RegisterAdmin) (commands.Registered, error)
	Login(ctx context.Context, meta commands.Meta, req commands.Login) (commands.LoggedIn, error)
	LoginForAppservice(ctx context.Context, meta commands.Meta, appserviceID string, req commands.Login) (commands.LoggedIn, error)
	Logout(ctx context.Context, meta commands.Meta, userID, deviceID string) (eventlog.Position, error)
	LogoutAll(ctx context.Context, meta commands.Meta, userID string) (eventlog.Position, error)
	ChangePassword(ctx context.Context, meta commands.Meta, req commands.ChangePassword) (eventlog.Position, error)
	Deactivate(ctx context.Context, meta commands.Meta, userID string, erase bool, idServer string, auth *commands.AuthDict) (eventlog.Position, string, error)
	DeleteDevices(ctx context.Context, meta commands.Meta, userID string, deviceIDs []string, auth *commands.AuthDict) (eventlog.Position, error)
	RenameDevice(ctx context.Context, meta commands.Meta, userID, deviceID, name string) (eventlog.Position, error)
	CreateRegistrationToken(ctx context.Context, meta commands.Meta, token string, usesAllowed *int32, expiry *time.Time) (string, eventlog.Position, error)
	UpdateRegistrationToken(ctx context.Context, meta commands.Meta, token string, ch commands.RegistrationTokenChange) (eventlog.Position, error)
	RevokeRegistrationToken(ctx context.Context, meta commands.Meta, token string) (eventlog.Position, error)
	IssueLoginToken(ctx context.Context, meta commands.Meta, userID string, auth *commands.AuthDict) (commands.IssuedLoginToken, error)
	LoginWithToken(ctx context.Context, meta commands.Meta, req commands.TokenLogin) (commands.LoggedIn, error)
	RetireRefreshToken(ctx context.Context, meta commands.Meta, userID string, refreshHash []byte) (eventlog.Position, error)
	Refresh(ctx context.Context, meta commands.Meta, refreshToken string) (commands.LoggedIn, error)
	RecordDevicesSeen(ctx context.Context, meta commands.Meta, seen []eventlog.DeviceSeen) (eventlog.Position, error)
	ThreepidCommands
	SSOCommands
	RoomCommands
	MoreRoomCommands
	FilterCommands
	AccountDataCommands
	PresenceCommands
	ReceiptCommands
	ToDeviceCommands
	DirectoryCommands
	E2ECommands
	ProfileCommands
}

// Queries is the read side as the HTTP layer uses it.
type Queries interface {
	Authenticator
	AppserviceIdentity(ctx context.Context, appservice, userID string) (queries.Identity, error)
	LocalpartTaken(ctx context.Context, localpart string) (bool, error)
	RegistrationTokenLookup(ctx context.Context, token string) (queries.RegistrationToken, error)
	Devices(ctx context.Context, userID string) ([]queries.Device, error)
	RegistrationTokens(ctx context.Context) ([]queries.RegistrationToken, error)
	Device(ctx context.Context, userID, deviceID string) (queries.Device, error)
	ThreepidQueries
	RoomQueries
	MoreRoomQueries
	FilterQueries
	AccountDataQueries
	PresenceQueries
	SyncQueries
	LegacySyncQueries
	RelationQueries
	DirectoryQueries
	E2EQueries
	ProfileQueries
}

// Waiter blocks until the read models have applied a position (read-your-writes).
type Waiter interface {
	WaitFor(ctx context.Context, pos eventlog.Position, projectors ...string) error
	// Moved returns a channel closed when the projector next moves on.
	Moved(projector string) <-chan struct{}
	// Watch returns a channel closed when a projected change concerns one of keys
	// (eventlog.UserWakeKey, RoomWakeKey), and the function that stops watching.
	Watch(keys ...string) (<-chan struct{}, func())
}

// Server is the HTTP front of Spelt.
type Server struct {
	echo     *echo.Echo
	cfg      Config
	cmd      Commands
	q        Queries
	wait     Waiter
	logger   *slog.Logger
	nonces   *nonceStore
	login    *limiter
	register *limiter
	seen     *seenTracker
	presence *presenceCache
	// syncLooks counts the reads of /sync requests.
	syncLooks    atomic.Int64
	memberCaches *memberCaches
	wakeKeys     wakeKeyCache
}

// New builds the server and its routes.
func New(cfg Config, cmd Commands, q Queries, wait Waiter, logger *slog.Logger) *Server {
	e := echo.New()
	// The client's address is the connection's: X-Forwarded-For and X-Real-IP are
	// whatever a client writes, and rate limits and last-seen addresses must not be.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(logger)
	if cfg.Typing == nil {
		cfg.Typing = typing.New(nil, logger)
	}
	s := &Server{
		echo: e, cfg: cfg, cmd: cmd, q: q, wait: wait, logger: logger,
		nonces:       newNonceStore(),
		login:        newLimiter(cfg.RateLimits, cfg.LoginPerSecond, cfg.LoginBurst),
		register:     newLimiter(cfg.RateLimits, cfg.RegisterPerSecond, cfg.RegisterBurst),
		seen:         newSeenTracker(),
		presence:     newPresenceCache(),
		memberCaches: newMemberCaches(),
	}
	e.Pre(requestIDs, accessLog(logger), cors)
	e.Use(recoverer(logger), noNUL, bodyLimit(cfg.MaxBodyBytes))
	s.routes()
	return s
}

// Handler returns the server as an http.Handler.
func (s *Server) Handler() nethttp.Handler { return s.echo }

// Serve serves on l until ctx ends, then shuts down gracefully (in-flight requests get
// up to 10 seconds).
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &nethttp.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		// A client gets a minute to send its (size-limited) body; responses have no
		// write deadline, since long-polling requests legitimately take long.
		ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	seenDone := make(chan struct{})
	go func() {
		defer close(seenDone)
		s.flushSeen(ctx)
	}()
	defer func() { <-seenDone }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if e := <-errc; e != nil && !errors.Is(e, nethttp.ErrServerClosed) {
		return e
	}
	return err
}

func recoverer(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if v := recover(); v != nil {
					if v == nethttp.ErrAbortHandler {
						panic(v)
					}
					logger.ErrorContext(c.Request().Context(), "handler panicked",
						slog.String("request_id", requestID(c)), slog.Any("panic", v))
					err = matrixErr(nethttp.StatusInternalServerError, codeUnknown, "Internal server error")
				}
			}()
			return next(c)
		}
	}
}

// meta is the event metadata of a client request.
func meta(c echo.Context, origin eventlog.Origin) commands.Meta {
	id := identity(c)
	return commands.Meta{Actor: id.UserID, Origin: origin, RequestID: requestID(c), Appservice: id.Appservice}
}

// emptyWhenVisible answers a write with {} once the named projectors have applied
// it, so that the client's next read sees its write.
func (s *Server) emptyWhenVisible(c echo.Context, pos eventlog.Position, projectors ...string) error {
	if err := s.wait.WaitFor(c.Request().Context(), pos, projectors...); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}
