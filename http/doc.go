// Package http serves Spelt's HTTP APIs with Echo: routes (all listed in routes.go),
// authentication, user-interactive authentication responses, rate limits, CORS and the
// mapping of errors to Matrix error responses (errors.go, the only place that picks
// status codes and errcodes).
//
// Handlers turn requests into commands (package commands) and queries (package
// queries); they import eventlog for the Position type only.
package http
