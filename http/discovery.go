package http

import (
	nethttp "net/http"

	"github.com/labstack/echo/v4"
)

// supportedVersions are the spec versions Spelt advertises.
var supportedVersions = []string{
	"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12", "v1.13",
}

func (s *Server) versions(c echo.Context) error {
	return c.JSON(nethttp.StatusOK, map[string]any{
		"versions":          supportedVersions,
		"unstable_features": map[string]bool{},
	})
}

func (s *Server) wellKnownClient(c echo.Context) error {
	return c.JSON(nethttp.StatusOK, map[string]any{
		"m.homeserver": map[string]string{"base_url": s.cfg.PublicBaseURL},
	})
}

// wellKnownSupport publishes the operator's contacts; with none configured it is 404,
// as the spec asks.
func (s *Server) wellKnownSupport(c echo.Context) error {
	sup := s.cfg.Support
	var contacts []map[string]string
	if sup.AdminMatrixID != "" || sup.AdminEmail != "" {
		ct := map[string]string{"role": "m.role.admin"}
		if sup.AdminMatrixID != "" {
			ct["matrix_id"] = sup.AdminMatrixID
		}
		if sup.AdminEmail != "" {
			ct["email_address"] = sup.AdminEmail
		}
		contacts = append(contacts, ct)
	}
	if len(contacts) == 0 && sup.Page == "" {
		return errNotFound("No support information is published")
	}
	body := map[string]any{}
	if len(contacts) > 0 {
		body["contacts"] = contacts
	}
	if sup.Page != "" {
		body["support_page"] = sup.Page
	}
	return c.JSON(nethttp.StatusOK, body)
}
