// Package spectest checks HTTP responses against the Matrix specification
// v1.13 OpenAPI definitions of the Client-Server and Server-Server APIs, so
// integration tests can assert that every response Spelt sends is
// spec-shaped.
//
// Check validates one response; Transport wraps an http.RoundTripper (for
// example mautrix-go's client) so that every response passing through it is
// checked and violations are reported with t.Errorf.
//
// The OpenAPI files are vendored, unmodified, under spec/ (see
// spec/README.md) and embedded, so the checks need no network and no checkout
// of the spec. They are parsed and indexed on first use; each response schema
// is compiled once and cached, and all functions are safe for concurrent use
// from parallel tests.
//
// spectest is test support: only _test.go files import it. It imports no
// project package.
package spectest
