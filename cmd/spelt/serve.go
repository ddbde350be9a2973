package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	spelthttp "spelt.dev/spelt/http"
	"spelt.dev/spelt/internal/appservice"
	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/mailer"
	"spelt.dev/spelt/internal/pdus"
	"spelt.dev/spelt/internal/signingkey"
	"spelt.dev/spelt/internal/typing"
	"spelt.dev/spelt/projections"
	"spelt.dev/spelt/queries"
	"spelt.dev/spelt/sql/migrations"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("serve", "[--config PATH] [--migrate]", stderr)
	migrate := fs.Bool("migrate", false, "apply pending migrations before serving")
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := open(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer e.close()
	tuneGC()
	if *migrate {
		if _, err := migrations.Up(ctx, e.pool); err != nil {
			return err
		}
	}
	a, err := newApp(ctx, e)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", e.cfg.Listen.Client)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	e.logger.InfoContext(ctx, "serving the client API", slog.String("addr", l.Addr().String()),
		slog.String("server_name", e.cfg.ServerName), slog.String("public_baseurl", e.cfg.PublicBaseURL))
	err = a.run(ctx, l)
	e.logger.Info("stopped")
	return err
}

// app is a running Spelt: everything serve starts, built by hand.
type app struct {
	env      *env
	notifier *eventlog.Notifier
	runner   *projections.Runner
	commands *commands.Commands
	sealer   *eventlog.Sealer
	http     *spelthttp.Server
	typing   *typing.Hub
	release  func()
	// ready is the position the read models must reach before serving (the
	// application services' sender accounts).
	ready eventlog.Position
}

// newApp checks the database and builds every part of the server.
func newApp(ctx context.Context, e *env) (*app, error) {
	if err := e.requireSchema(ctx); err != nil {
		return nil, err
	}
	if err := checkRestoredLog(ctx, e); err != nil {
		return nil, err
	}
	key, created, err := signingkey.LoadOrCreate(e.cfg.SigningKeyPath())
	if err != nil {
		return nil, err
	}
	if created {
		e.logger.InfoContext(ctx, "created signing key", slog.String("path", e.cfg.SigningKeyPath()), slog.String("key_id", key.ID))
	}
	// Registration sessions are signed, not stored, until used; every process of the
	// server must accept the others', so the key derives from the shared signing key.
	uiaSecret, err := hkdf.Key(sha256.New, key.Private.Seed(), nil, "spelt uia session secret v1", 32)
	if err != nil {
		return nil, err
	}
	release, err := commands.HoldWriterLock(ctx, e.pool)
	if err != nil {
		return nil, err
	}
	cfg := e.cfg
	apps, err := appservice.Load(cfg.Appservices.RegistrationFiles, cfg.ServerName)
	if err != nil {
		release()
		return nil, err
	}
	notifier := eventlog.NewNotifier(e.pool, e.logger)
	log := eventlog.New(e.logger, notifier)
	runner := projections.NewRunner(e.pool, notifier, e.logger, projections.All(e.cfg.ServerName)...)
	cmds := commands.New(e.pool, log, commands.Config{
		ServerName:           cfg.ServerName,
		RegistrationEnabled:  cfg.Registration.Enabled,
		RegistrationRequires: cfg.Registration.RequireToken,
		Guests:               cfg.Registration.Guests,
		Terms:                terms(cfg),
		UIASecret:            uiaSecret,
		AccessTokenLifetime:  cfg.Auth.AccessTokenLifetime.Duration,
		RefreshableLifetime:  cfg.Auth.RefreshableAccessTokenLifetime.Duration,

		RegistrationRequiresEmail: cfg.Registration.RequireEmail,
		ThreepidTokenLifetime:     cfg.Email.TokenLifetime.Duration,
		SigningKey:                key.Private,
		SigningKeyID:              key.ID,
		DefaultRoomVersion:        cfg.Rooms.DefaultVersion,
		Appservices:               apps,
	}, e.logger)
	ready, err := cmds.EnsureAppserviceSenders(ctx, eventlog.Metadata{Origin: eventlog.OriginSystem})
	if err != nil {
		release()
		return nil, err
	}
	var mail spelthttp.Mailer // stays nil (no e-mail) without an SMTP host
	if cfg.Email.SMTPHost != "" {
		m, err := mailer.New(mailer.Config{
			Host: cfg.Email.SMTPHost, Port: cfg.Email.SMTPPort, User: cfg.Email.SMTPUser, Password: cfg.Email.SMTPPassword,
			From: cfg.Email.From, RequireTLS: cfg.Email.RequireTLS,
		})
		if err != nil {
			release()
			return nil, err
		}
		mail = m
	}
	idps, listedIdPs, err := identityProviders(cfg, key)
	if err != nil {
		release()
		return nil, err
	}
	if idps != nil {
		cmds.UseIdentityProviders(idps)
	}
	if ids := identityServers(cfg, key); ids != nil {
		cmds.UseIdentityServers(ids)
	}
	httpCfg := spelthttp.Config{
		Appservices:         apps,
		ServerName:          cfg.ServerName,
		PublicBaseURL:       cfg.PublicBaseURL,
		RoomVersions:        pdus.Versions,
		Presence:            cfg.Presence.Enabled,
		DefaultRoomVersion:  cfg.Rooms.DefaultVersion,
		RegistrationEnabled: cfg.Registration.Enabled,
		SharedSecret:        cfg.Registration.SharedSecret,
		MaxBodyBytes:        cfg.HTTP.MaxBodyBytes,
		RateLimits:          cfg.RateLimits.Enabled,
		LoginPerSecond:      cfg.RateLimits.LoginPerSecond,
		LoginBurst:          cfg.RateLimits.LoginBurst,
		RegisterPerSecond:   cfg.RateLimits.RegisterPerSecond,
		RegisterBurst:       cfg.RateLimits.RegisterBurst,
		Support: spelthttp.Support{
			Page: cfg.Support.Page, AdminMatrixID: cfg.Support.AdminMatrixID, AdminEmail: cfg.Support.AdminEmail,
		},
		Mailer:       mail,
		SSOProviders: listedIdPs,
	}
	typingHub := typing.New(e.pool, e.logger)
	typingHub.OnChange = func(room string) { runner.Wake(eventlog.RoomWakeKey(room)) }
	httpCfg.Typing = typingHub
	if e.tweakHTTP != nil {
		e.tweakHTTP(&httpCfg)
	}
	q := queries.New(e.pool)
	// Resolved access tokens are cached; any change to the accounts read model (here or
	// announced by another process) may revoke one, so it empties the cache.
	runner.OnAdvance("accounts", q.ForgetTokens)
	runner.OnAdvance("e2e_keys", q.ForgetKeyCounts)
	runner.OnAdvance("account_data", q.ForgetAccountData)
	runner.OnAdvance("rooms", q.ForgetRooms)
	srv := spelthttp.New(httpCfg, cmds, q, runner, e.logger)
	q.UseActivity(srv.LastActive)
	return &app{
		env:      e,
		notifier: notifier,
		runner:   runner,
		commands: cmds,
		sealer:   eventlog.NewSealer(e.pool, eventlog.Key{ID: key.ID, Private: key.Private}, e.logger),
		http:     srv,
		typing:   typingHub,
		release:  release,
		ready:    ready,
	}, nil
}

// run serves on l until ctx ends. It stops the HTTP server first (which records its
// last device sightings), lets the projectors apply everything the last requests
// appended, stops them, and seals the log's tail: a clean stop leaves read models that
// match the log, and no unsealed events.
func (a *app) run(ctx context.Context, l net.Listener) error {
	defer a.release()
	httpCtx, stopHTTP := context.WithCancel(ctx)
	defer stopHTTP()
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	bg, bgCtx := errgroup.WithContext(bgCtx)
	bg.Go(func() error { return a.notifier.Run(bgCtx) })
	bg.Go(func() error { a.typing.Run(bgCtx); return nil })
	bg.Go(func() error { return a.runner.Run(bgCtx) })
	bg.Go(func() error { return a.sealer.Run(bgCtx, a.env.cfg.EventLog.SealInterval.Duration) })
	// A background part that fails stops the server too.
	go func() {
		<-bgCtx.Done()
		stopHTTP()
	}()
	readyCtx, readyDone := context.WithTimeout(httpCtx, time.Minute)
	err := a.runner.WaitFor(readyCtx, a.ready)
	readyDone()
	if err != nil {
		a.env.logger.Warn("read models not ready before serving", slog.Any("err", err))
	}
	httpErr := a.http.Serve(httpCtx, l)

	drainCtx, cancel := context.WithTimeout(bgCtx, 10*time.Second)
	if head, err := eventlog.Last(drainCtx, a.env.pool, eventlog.Bound{}); err == nil {
		if err := a.runner.WaitFor(drainCtx, head); err != nil && bgCtx.Err() == nil {
			a.env.logger.Warn("projectors did not catch up before stopping", slog.Any("err", err))
		}
	}
	cancel()
	stopBG()
	bgErr := bg.Wait()
	if _, err := a.sealer.Seal(context.WithoutCancel(ctx)); err != nil {
		a.env.logger.Warn("final seal failed", slog.Any("err", err))
	}
	if errors.Is(httpErr, context.Canceled) {
		httpErr = nil
	}
	if errors.Is(bgErr, context.Canceled) {
		bgErr = nil
	}
	return errors.Join(httpErr, bgErr)
}

// checkRestoredLog refuses a database whose log holds transaction ids from the future:
// the sign of a logical dump restored into a new cluster, where readers that only take
// transactions older than the oldest running one would silently stop.
func checkRestoredLog(ctx context.Context, e *env) error {
	var restored bool
	err := e.pool.QueryRow(ctx, `SELECT COALESCE((SELECT transaction_id FROM eventlog.events
		ORDER BY transaction_id DESC, "offset" DESC LIMIT 1), '0') >= pg_snapshot_xmax(pg_current_snapshot())`).Scan(&restored)
	if err != nil {
		return fmt.Errorf("check log: %w", err)
	}
	if restored {
		return errors.New("the event log holds transaction ids newer than this PostgreSQL cluster's: it was restored from a logical dump (pg_dump), which the log's ordering cannot survive; restore from a physical backup (pg_basebackup) instead")
	}
	return nil
}

// terms is the configured registration policy, if any.
func terms(cfg config.Config) *commands.Terms {
	if cfg.Terms.URL == "" {
		return nil
	}
	return &commands.Terms{Name: cfg.Terms.Name, Version: cfg.Terms.Version, URL: cfg.Terms.URL}
}
