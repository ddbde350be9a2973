package spectest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// maxViolations caps how many schema violations one error lists.
const maxViolations = 10

// Known reports whether the spec documents an operation for method and
// path, a concrete request path such as
// "/_matrix/client/v3/profile/@alice:example.org/displayname".
func Known(method, path string) bool {
	s, err := loadSpec()
	return err == nil && len(s.find(method, path)) > 0
}

// Check validates a response to method and path (a concrete request path,
// percent-encoded as sent or decoded) against the spec.
//
// It returns nil when the spec has no operation for method and path
// (Known is false), and otherwise an error naming the operation when:
//   - status is not documented for the operation, except 429 and 500,
//     which any endpoint may return (spec v1.13, Client-Server API, "Rate
//     limiting" and "Common error codes"), and 401 on an operation with a
//     security requirement (a missing or bad access token or X-Matrix
//     signature);
//   - the documented response has an application/json schema and body
//     does not conform (the error gives the JSON pointer of each
//     violation);
//   - status is 400 or more and body is not a standard error response
//     {"errcode": string, "error": string, ...} (spec v1.13, Client-Server
//     API, "Standard error response"). The User-Interactive Authentication
//     401, whose documented body has flows instead, is exempt unless it
//     carries an errcode.
//
// When the spec documents two operations for one endpoint, body must
// satisfy one of them.
func Check(method, path string, status int, body []byte) error {
	s, err := loadSpec()
	if err != nil {
		return err
	}
	ops := s.find(method, path)
	var errs []error
	for _, op := range ops {
		err := s.check(op, status, body)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *spec) check(op *operation, status int, body []byte) error {
	r := op.response(status)
	if r == nil && !undocumentedAllowed(op, status) && !guestForbidden(op, status, body) && !roomForbidden(op, status, body) {
		return fmt.Errorf("spectest: %s: status %d is not documented (documented: %s)",
			op, status, strings.Join(op.statuses(), ", "))
	}
	isError := status >= 400
	if !isError && (r == nil || !r.json) {
		return nil // nothing JSON to check
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("spectest: %s: status %d: body is not JSON: %w", op, status, err)
	}

	// A 401 of an authenticated operation that says the access token is missing or
	// unknown is the authentication failure every such endpoint has, not the
	// documented (user-interactive) 401: only its error shape is checked.
	tokenFailure := status == 401 && op.authenticated && hasErrcode(inst, "M_MISSING_TOKEN", "M_UNKNOWN_TOKEN")
	// An operation whose description says it uses User-Interactive Authentication
	// but that does not document the 401 (POST /keys/device_signing/upload in
	// v1.13) answers with the User-Interactive Authentication body all the same.
	if r == nil && status == 401 && op.describesUIA && hasKey(inst, "flows") {
		if err := s.validate(uiaSchemaURL, inst); err != nil {
			return fmt.Errorf("spectest: %s: status 401: body is not a user-interactive authentication response: %w", op, err)
		}
		return nil
	}
	if r != nil && r.schemaLoc != "" && !tokenFailure {
		if err := s.validate(r.schemaLoc, inst); err != nil {
			as := ""
			if r.status != strconv.Itoa(status) {
				as = " (documented as " + r.status + ")"
			}
			return fmt.Errorf("spectest: %s: status %d%s: body does not match the schema: %w",
				op, status, as, err)
		}
	}
	if isError && !(r != nil && r.uia && !hasKey(inst, "errcode")) {
		if err := s.validate(standardErrorURL, inst); err != nil {
			return fmt.Errorf("spectest: %s: status %d: body is not a standard error response: %w",
				op, status, err)
		}
	}
	return nil
}

// response returns the documented response for status: the exact code, else
// its range ("4XX"), else "default"; nil if none.
func (op *operation) response(status int) *response {
	for _, key := range []string{strconv.Itoa(status), strconv.Itoa(status/100) + "XX", "DEFAULT"} {
		if r, ok := op.responses[key]; ok {
			return r
		}
	}
	return nil
}

// undocumentedAllowed reports whether an operation may answer status
// although it does not document it.
func undocumentedAllowed(op *operation, status int) bool {
	switch status {
	case 429, 500:
		return true
	case 400, 413:
		// The spec's standard errors for bad input (M_NOT_JSON, M_BAD_JSON,
		// M_MISSING_PARAM, M_INVALID_PARAM, M_TOO_LARGE...) apply to every endpoint
		// that takes input, documented or not; the error shape is still checked.
		return true
	case 401:
		return op.authenticated
	}
	return false
}

// guestForbidden reports the answer the spec prescribes for a guest on an endpoint not
// open to guests (client-server API, "Guest access"): 403 M_GUEST_ACCESS_FORBIDDEN.
func guestForbidden(op *operation, status int, body []byte) bool {
	if status != 403 || !op.authenticated {
		return false
	}
	var e struct {
		Errcode string `json:"errcode"`
	}
	return json.Unmarshal(body, &e) == nil && e.Errcode == "M_GUEST_ACCESS_FORBIDDEN"
}

// roomForbidden reports a 403 M_FORBIDDEN of an authenticated operation on a room
// (path with {roomId} or {roomAlias}): the spec's common error for an action the room's
// rules do not allow ("Common error codes": "joining a room without permission"), which
// several room endpoints (send, redact, an alias's PUT and DELETE) return without
// documenting it, as Synapse does.
//
// Likewise a 404 M_NOT_FOUND ("Common error codes": "No resource was found for this
// request") of an operation whose path names a room, an alias or an event that does not
// exist (sending to an unknown room, redacting an unknown event, joining an unknown
// alias), which Synapse answers the same way.
func roomForbidden(op *operation, status int, body []byte) bool {
	names := func(params ...string) bool {
		for _, p := range params {
			if strings.Contains(op.template, p) {
				return true
			}
		}
		return false
	}
	var e struct {
		Errcode string `json:"errcode"`
	}
	if json.Unmarshal(body, &e) != nil || !op.authenticated {
		return false
	}
	switch {
	case status == 403 && e.Errcode == "M_FORBIDDEN":
		// ... and on another user's resources ({userId}: filters, account data), and
		// peeking (GET /events?room_id=) into a room one may not read.
		return names("{roomId}", "{roomAlias}", "{userId}") || op.id == "peekEvents" || op.id == "getEvents"
	case status == 404 && e.Errcode == "M_NOT_FOUND":
		return names("{roomId}", "{roomAlias}", "{roomIdOrAlias}", "{eventId}")
	}
	return false
}

func hasErrcode(v any, codes ...string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for _, c := range codes {
		if m["errcode"] == c {
			return true
		}
	}
	return false
}

func hasKey(v any, key string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	_, ok = m[key]
	return ok
}

func (s *spec) validate(loc string, inst any) error {
	sch, err := s.schema(loc)
	if err != nil {
		return fmt.Errorf("compile %s: %w", loc, err)
	}
	err = sch.Validate(inst)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var leaves []string
	collectViolations(ve, &leaves)
	msg := strings.Join(leaves[:min(len(leaves), maxViolations)], "; ")
	if len(leaves) > maxViolations {
		msg += fmt.Sprintf("; and %d more", len(leaves)-maxViolations)
	}
	return &Violation{msg: msg, err: ve}
}

// collectViolations lists the innermost causes of a validation error, each
// as "at '/json/pointer': message".
func collectViolations(ve *jsonschema.ValidationError, out *[]string) {
	if len(ve.Causes) == 0 {
		*out = append(*out, ve.Error())
		return
	}
	for _, c := range ve.Causes {
		collectViolations(c, out)
	}
}

// Violation is a body that does not conform to its schema. Its message
// lists the innermost violations with their JSON pointers; Unwrap gives the
// full *jsonschema.ValidationError.
type Violation struct {
	msg string
	err *jsonschema.ValidationError
}

func (v *Violation) Error() string { return v.msg }

func (v *Violation) Unwrap() error { return v.err }
