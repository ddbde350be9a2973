package spectest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"unicode/utf8"
)

// maxReportedBody caps how much of a response body a reported violation
// quotes.
const maxReportedBody = 2048

// Transport returns an http.RoundTripper that sends each request through
// next (http.DefaultTransport if nil), reads and restores the response body,
// runs Check on it, and reports a violation with t.Errorf, giving the
// method, path, status and body (truncated). The caller still receives the
// response unchanged, so a test wraps a client once and every call is
// checked:
//
//	client.Client = &http.Client{Transport: spectest.Transport(t, nil)}
func Transport(t testing.TB, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{t: t, next: next}
}

type transport struct {
	t    testing.TB
	next http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tr.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("spectest: read response body of %s %s: %w", req.Method, req.URL.Path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))

	path := req.URL.EscapedPath()
	if err := Check(req.Method, path, resp.StatusCode, body); err != nil {
		tr.t.Errorf("spectest: %s %s answered %d, which the Matrix spec does not allow:\n%v\nbody: %s",
			req.Method, path, resp.StatusCode, err, truncate(body))
	}
	return resp, nil
}

func truncate(body []byte) string {
	if len(body) <= maxReportedBody {
		return string(body)
	}
	cut := maxReportedBody
	for cut > 0 && !utf8.RuneStart(body[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes in all)", body[:cut], len(body))
}
