package http

import (
	"bytes"
	"errors"
	nethttp "net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

// FuzzBindJSON: whatever a client sends, decoding a body ends in a value or in a
// Matrix error with a 4xx status, never in anything that would become a 500.
func FuzzBindJSON(f *testing.F) {
	for _, seed := range []string{``, `{}`, `{"username":"a"}`, `[]`, `{"username":5}`, `{"auth":{"type":1}}`,
		`{"a":"\u0000"}`, `{`, `null`, `"x"`, `{"inhibit_login":"yes"}`, "\xff\xfe", `{"device_id":{"x":1}}`} {
		f.Add([]byte(seed))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(nethttp.MethodPost, "/", bytes.NewReader(body))
		c := e.NewContext(req, httptest.NewRecorder())
		var v registerRequest
		err := bindJSON(c, &v)
		if err == nil {
			return
		}
		var me *MatrixError
		if !errors.As(err, &me) || me.Status < 400 || me.Status >= 500 {
			t.Fatalf("body %q: %v", body, err)
		}
	})
}
