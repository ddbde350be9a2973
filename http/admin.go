package http

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	nethttp "net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/tokens"
)

// nonceStore keeps shared-secret registration nonces for a minute, in memory, like
// Synapse: a nonce is single use and means nothing after a restart.
type nonceStore struct {
	mu     sync.Mutex
	nonces map[string]time.Time
}

const nonceLifetime = time.Minute

func newNonceStore() *nonceStore { return &nonceStore{nonces: map[string]time.Time{}} }

func (n *nonceStore) issue() string {
	nonce := tokens.Random(24)
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, t := range n.nonces {
		if now.Sub(t) > nonceLifetime {
			delete(n.nonces, k)
		}
	}
	n.nonces[nonce] = now
	return nonce
}

// take consumes nonce, reporting whether it was issued and is still fresh.
func (n *nonceStore) take(nonce string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.nonces[nonce]
	delete(n.nonces, nonce)
	return ok && time.Since(t) <= nonceLifetime
}

func (s *Server) adminRegisterNonce(c echo.Context) error {
	if s.cfg.SharedSecret == "" {
		return errBadRequest("Shared secret registration is not enabled")
	}
	return c.JSON(nethttp.StatusOK, map[string]string{"nonce": s.nonces.issue()})
}

type adminRegisterRequest struct {
	Nonce       string  `json:"nonce"`
	Username    string  `json:"username"`
	Password    string  `json:"password"`
	Admin       bool    `json:"admin"`
	DisplayName *string `json:"displayname"`
	UserType    *string `json:"user_type"`
	MAC         string  `json:"mac"`
}

// adminRegister: POST /_synapse/admin/v1/register. The MAC is HMAC-SHA1, keyed with the
// shared secret, over nonce, username, password and "admin"/"notadmin" (and the user
// type when given), NUL-separated, as Synapse defines it.
func (s *Server) adminRegister(c echo.Context) error {
	if s.cfg.SharedSecret == "" {
		return errBadRequest("Shared secret registration is not enabled")
	}
	var req adminRegisterRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.Nonce == "" || req.Username == "" || req.MAC == "" {
		return errMissingParam("nonce, username and mac are required")
	}
	if !s.nonces.take(req.Nonce) {
		return errBadRequest("unrecognised nonce")
	}
	mac := hmac.New(sha1.New, []byte(s.cfg.SharedSecret))
	mac.Write([]byte(req.Nonce + "\x00" + req.Username + "\x00" + req.Password + "\x00"))
	if req.Admin {
		mac.Write([]byte("admin"))
	} else {
		mac.Write([]byte("notadmin"))
	}
	if req.UserType != nil {
		mac.Write([]byte("\x00" + *req.UserType))
	}
	got, err := hex.DecodeString(req.MAC)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return errForbidden("HMAC incorrect")
	}
	m := meta(c, eventlog.OriginAdmin)
	m.Actor = "shared-secret"
	res, err := s.cmd.RegisterByAdmin(c.Request().Context(), m, commands.RegisterAdmin{
		Username: req.Username, Password: req.Password, Admin: req.Admin, DisplayName: req.DisplayName,
	})
	if err != nil {
		return err
	}
	return s.respondRegistered(c, res, true)
}
