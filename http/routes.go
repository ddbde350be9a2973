package http

import "spelt.dev/spelt/commands"

// routes lists every route Spelt serves. Unknown paths get 404 M_UNRECOGNIZED and
// known paths with another method 405 M_UNRECOGNIZED (errors.go).
func (s *Server) routes() {
	e := s.echo
	var apps *appserviceAuth
	if s.cfg.Appservices.Len() > 0 {
		apps = &appserviceAuth{reg: s.cfg.Appservices, server: s.cfg.ServerName, q: s.q}
	}
	auth := requireAuth(s.q, apps, s.seen, false, s.retireRefreshToken)
	guestAuth := requireAuth(s.q, apps, s.seen, true, s.retireRefreshToken) // endpoints the spec opens to guests

	// Discovery (spec: client-server API, "Server Discovery" and "API Standards").
	e.GET("/.well-known/matrix/client", s.wellKnownClient)
	e.GET("/.well-known/matrix/support", s.wellKnownSupport)
	e.GET("/_matrix/client/versions", s.versions)

	// Operations that take a password (login, and user-interactive authentication)
	// share the login limiter: password guessing is limited wherever it can happen.

	// Account registration and login (spec: client-server API, "Client Authentication").
	c := e.Group("/_matrix/client/v3")
	c.POST("/register", s.postRegister, s.register.middleware)
	c.GET("/register/available", s.registerAvailable, s.register.middleware)
	e.GET("/_matrix/client/v1/register/m.login.registration_token/validity", s.registrationTokenValidity, s.register.middleware)
	c.GET("/login", s.getLogin)
	c.POST("/login", s.postLogin, s.login.middleware)
	c.POST("/refresh", s.refresh, s.login.middleware)
	// Single sign-on (spec: client-server API, "SSO client login/authentication"): the
	// redirect to the identity provider, its callback (Synapse's path) and the
	// m.login.sso stage's fallback page.
	c.GET("/login/sso/redirect", s.ssoRedirect, s.login.middleware)
	c.GET("/login/sso/redirect/:idpId", s.ssoRedirect, s.login.middleware)
	e.GET("/_synapse/client/oidc/callback", s.ssoCallback, s.login.middleware)
	c.GET("/auth/m.login.sso/fallback/web", s.ssoFallback, s.login.middleware)
	e.POST("/_matrix/client/v1/login/get_token", s.getLoginToken, auth, s.login.middleware)
	c.GET("/account/whoami", s.whoami, guestAuth)
	c.POST("/logout", s.logout, guestAuth)
	c.POST("/logout/all", s.logoutAll, auth)
	c.POST("/account/password", s.changePassword, optionalAuth(s.q, apps, s.seen), s.login.middleware) // no token: reset by e-mail
	c.POST("/account/deactivate", s.deactivate, auth, s.login.middleware)
	c.GET("/capabilities", s.capabilities, auth)

	// Rooms (spec: client-server API, "Rooms", "Room membership", "Events").
	c.POST("/createRoom", s.createRoom, auth)

	// Filters (spec: client-server API, "Filtering").
	c.POST("/user/:userId/filter", s.createFilter, auth)
	c.GET("/user/:userId/filter/:filterId", s.getFilter, auth)

	// Account data and tags (spec: client-server API, "Client Config", "Room Tagging").
	c.PUT("/user/:userId/account_data/:type", s.putAccountData(false), auth)
	c.GET("/user/:userId/account_data/:type", s.getAccountData(false), auth)
	c.PUT("/user/:userId/rooms/:roomId/account_data/:type", s.putAccountData(true), auth)
	c.GET("/user/:userId/rooms/:roomId/account_data/:type", s.getAccountData(true), auth)
	c.GET("/user/:userId/rooms/:roomId/tags", s.getTags, auth)
	c.PUT("/user/:userId/rooms/:roomId/tags/:tag", s.putTag, auth)
	c.DELETE("/user/:userId/rooms/:roomId/tags/:tag", s.deleteTag, auth)

	// Syncing (spec: client-server API, "Syncing"), receipts and read markers.
	c.GET("/sync", s.sync, guestAuth)
	c.GET("/initialSync", s.initialSync, guestAuth)
	c.GET("/events", s.events, guestAuth)
	c.POST("/rooms/:roomId/receipt/:receiptType/:eventId", s.receipt, auth)
	c.POST("/rooms/:roomId/read_markers", s.readMarkers, auth)
	c.PUT("/rooms/:roomId/typing/:userId", s.typing, auth)
	c.PUT("/sendToDevice/:eventType/:txnId", s.sendToDevice, guestAuth)

	// Presence (spec: client-server API, "Presence").
	c.PUT("/presence/:userId/status", s.putPresence, auth)
	c.GET("/presence/:userId/status", s.getPresence, auth)
	c.PUT("/rooms/:roomId/send/:eventType/:txnId", s.sendEvent, guestAuth)
	// Guests may send any event and set state (spec v1.2 on, "Guest access").
	c.PUT("/rooms/:roomId/state/:eventType", s.putState, guestAuth)
	c.PUT("/rooms/:roomId/state/:eventType/*", s.putState, guestAuth)
	c.GET("/rooms/:roomId/state/:eventType", s.getState, guestAuth)
	c.GET("/rooms/:roomId/state/:eventType/*", s.getState, guestAuth)
	c.GET("/rooms/:roomId/state", s.getAllState, guestAuth)
	c.GET("/rooms/:roomId/event/:eventId", s.getEvent, guestAuth)
	c.GET("/events/:eventId", s.getEventDeprecated, guestAuth)
	c.PUT("/rooms/:roomId/redact/:eventId/:txnId", s.redact, auth)
	c.POST("/rooms/:roomId/invite", s.membership(commands.ActionInvite), auth)
	c.POST("/rooms/:roomId/join", s.joinRoomID, guestAuth)
	c.POST("/join/:roomIdOrAlias", s.joinRoom, guestAuth)
	c.POST("/knock/:roomIdOrAlias", s.knock, auth)
	c.POST("/rooms/:roomId/leave", s.membership(commands.ActionLeave), guestAuth)
	c.POST("/rooms/:roomId/kick", s.membership(commands.ActionKick), auth)
	c.POST("/rooms/:roomId/ban", s.membership(commands.ActionBan), auth)
	c.POST("/rooms/:roomId/unban", s.membership(commands.ActionUnban), auth)
	c.POST("/rooms/:roomId/forget", s.forget, guestAuth)
	c.GET("/rooms/:roomId/members", s.members, guestAuth)
	c.GET("/rooms/:roomId/joined_members", s.joinedMembers, guestAuth)
	c.GET("/joined_rooms", s.joinedRooms, guestAuth)
	c.GET("/rooms/:roomId/messages", s.messages, guestAuth)
	c.GET("/rooms/:roomId/context/:eventId", s.eventContext, guestAuth)
	e.GET("/_matrix/client/v1/rooms/:roomId/timestamp_to_event", s.timestampToEvent, guestAuth)
	c.GET("/rooms/:roomId/initialSync", s.roomInitialSync, guestAuth)
	c.POST("/rooms/:roomId/upgrade", s.upgradeRoom, auth)
	e.GET("/_matrix/client/v1/rooms/:roomId/hierarchy", s.hierarchy, auth)
	c.POST("/rooms/:roomId/report/:eventId", s.reportEvent, auth)
	c.POST("/rooms/:roomId/report", s.reportRoom, auth)
	// Relations and threads (spec: client-server API, "Forming relationships between
	// events", "Threading").
	e.GET("/_matrix/client/v1/rooms/:roomId/relations/:eventId", s.relations, auth)
	e.GET("/_matrix/client/v1/rooms/:roomId/relations/:eventId/:relType", s.relations, auth)
	e.GET("/_matrix/client/v1/rooms/:roomId/relations/:eventId/:relType/:eventType", s.relations, auth)
	e.GET("/_matrix/client/v1/rooms/:roomId/threads", s.threads, auth)

	// Room aliases and the room directory (spec: client-server API, "Room aliases",
	// "Listing rooms"); the reads the spec opens to anyone take no token.
	c.PUT("/directory/room/:roomAlias", s.putAlias, auth)
	c.GET("/directory/room/:roomAlias", s.getAlias)
	c.DELETE("/directory/room/:roomAlias", s.deleteAlias, auth)
	c.GET("/rooms/:roomId/aliases", s.roomAliases, auth)
	c.GET("/directory/list/room/:roomId", s.getRoomVisibility)
	c.PUT("/directory/list/room/:roomId", s.putRoomVisibility, auth)
	c.GET("/publicRooms", s.getPublicRooms)
	c.POST("/publicRooms", s.postPublicRooms, auth)

	// Devices (spec: client-server API, "Device management").
	c.GET("/devices", s.listDevices, guestAuth)
	c.GET("/devices/:deviceId", s.getDevice, guestAuth)
	c.PUT("/devices/:deviceId", s.putDevice, guestAuth)
	c.DELETE("/devices/:deviceId", s.deleteDevice, auth, s.login.middleware)
	c.POST("/delete_devices", s.deleteDevices, auth, s.login.middleware)

	// Profiles (spec: client-server API, "Profiles"); reading them takes no token.
	c.GET("/profile/:userId", s.getProfile)
	c.GET("/profile/:userId/displayname", s.getProfileField("displayname"))
	c.GET("/profile/:userId/avatar_url", s.getProfileField("avatar_url"))
	c.PUT("/profile/:userId/displayname", s.putProfileField("displayname"), guestAuth)
	c.PUT("/profile/:userId/avatar_url", s.putProfileField("avatar_url"), auth)

	// End-to-end encryption keys (spec: client-server API, "End-to-End Encryption").
	c.POST("/keys/upload", s.uploadKeys, guestAuth)
	c.POST("/keys/query", s.queryKeys, guestAuth)
	c.POST("/keys/claim", s.claimKeys, guestAuth)
	c.GET("/keys/changes", s.keyChanges, guestAuth)
	c.POST("/keys/device_signing/upload", s.uploadCrossSigningKeys, auth, s.login.middleware)
	c.POST("/keys/signatures/upload", s.uploadSignatures, auth)

	// Third-party identifiers (spec: client-server API, "Adding Account Administrative
	// Contact Information"), the requestToken endpoints and the pages the e-mails link to.
	// Each request may send an e-mail: its own bucket, at the registration rates.
	threepidLimit := newLimiter(s.cfg.RateLimits, s.cfg.RegisterPerSecond, s.cfg.RegisterBurst).middleware
	c.POST("/register/email/requestToken", s.requestEmailToken(commands.ThreepidPurposeRegister), threepidLimit)
	c.POST("/register/msisdn/requestToken", s.requestMSISDNToken, threepidLimit)
	c.POST("/account/3pid/email/requestToken", s.requestEmailToken(commands.ThreepidPurposeAdd), threepidLimit)
	c.POST("/account/3pid/msisdn/requestToken", s.requestMSISDNToken, threepidLimit)
	c.POST("/account/password/email/requestToken", s.requestEmailToken(commands.ThreepidPurposePasswordReset), threepidLimit)
	c.POST("/account/password/msisdn/requestToken", s.requestMSISDNToken, threepidLimit)
	for path, purpose := range map[string]string{
		submitPathRegister:      commands.ThreepidPurposeRegister,
		submitPathAdd:           commands.ThreepidPurposeAdd,
		submitPathPasswordReset: commands.ThreepidPurposePasswordReset,
	} {
		e.GET(path, s.confirmEmailPage(purpose))
		e.POST(path, s.submitEmailToken(purpose), threepidLimit)
	}

	c.GET("/account/3pid", s.getThreepids, auth)
	c.POST("/account/3pid", s.postThreepidDeprecated, auth)
	c.POST("/account/3pid/add", s.addThreepid, auth, s.login.middleware)
	c.POST("/account/3pid/bind", s.bindThreepid, auth)
	c.POST("/account/3pid/delete", s.deleteThreepid, auth)
	c.POST("/account/3pid/unbind", s.unbindThreepid, auth)

	// Synapse-compatible shared-secret registration, for operators and test suites.
	e.GET("/_synapse/admin/v1/register", s.adminRegisterNonce, s.register.middleware)
	e.POST("/_synapse/admin/v1/register", s.adminRegister, s.register.middleware)

	// Synapse-compatible admin API (server admins only).
	a := e.Group("/_synapse/admin/v1", auth, requireAdmin)
	a.GET("/registration_tokens", s.adminListRegistrationTokens)
	a.POST("/registration_tokens/new", s.adminNewRegistrationToken)
	a.GET("/registration_tokens/:token", s.adminGetRegistrationToken)
	a.PUT("/registration_tokens/:token", s.adminUpdateRegistrationToken)
	a.DELETE("/registration_tokens/:token", s.adminDeleteRegistrationToken)
}
