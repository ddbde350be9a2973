package commands

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"spelt.dev/spelt/internal/tokens"
)

// Registration sessions are asked for by anyone, so they cost nothing until used: the
// first 401 hands out a session ID that carries its own proof (an HMAC under the
// server's UIA secret, with its creation time), and the session is written to the log
// only when its first stage completes. Sessions of logged-in users are stored at once.
const (
	// freshSessionLifetime is how long an unused registration session ID is honoured.
	freshSessionLifetime = time.Hour
	// sessionLifetime is how long a stored session may be continued.
	sessionLifetime = 24 * time.Hour
)

// uiaSecret returns the key of signed session IDs: the configured one, else a random
// one (a single process's sessions then do not survive a restart).
func (c *Commands) uiaSecret() []byte {
	c.secretOnce.Do(func() {
		c.secret = c.cfg.UIASecret
		if len(c.secret) == 0 {
			c.secret = make([]byte, 32)
			_, _ = rand.Read(c.secret)
		}
	})
	return c.secret
}

// newSignedSession returns a fresh session ID for an operation of kind.
func (c *Commands) newSignedSession(kind string) string {
	id := tokens.Random(12) + "." + strconv.FormatInt(c.now().Unix(), 36)
	return id + "." + c.sessionMAC(kind, id)
}

// signedSessionValid reports whether session is one newSignedSession made for kind,
// recently enough.
func (c *Commands) signedSessionValid(kind, session string) bool {
	i := strings.LastIndexByte(session, '.')
	if i < 0 {
		return false
	}
	id, mac := session[:i], session[i+1:]
	if !hmac.Equal([]byte(mac), []byte(c.sessionMAC(kind, id))) {
		return false
	}
	_, ts, ok := strings.Cut(id, ".")
	if !ok {
		return false
	}
	secs, err := strconv.ParseInt(ts, 36, 64)
	if err != nil {
		return false
	}
	return c.now().Sub(time.Unix(secs, 0)) <= freshSessionLifetime
}

func (c *Commands) sessionMAC(kind, id string) string {
	m := hmac.New(sha256.New, c.uiaSecret())
	m.Write([]byte("spelt uia session v1\x00" + kind + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// registrationSessionKnown reports whether session is a registration session this
// server handed out: signed and recent, or stored. A cheap check made before slow work.
func (c *Commands) registrationSessionKnown(ctx context.Context, session string) bool {
	if c.signedSessionValid("register", session) {
		return true
	}
	s, err := c.q.UIASessionGet(ctx, c.pool, session)
	return err == nil && s.Kind == "register" && !s.Done
}
