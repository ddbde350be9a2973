package spectest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		path   string
		status int
		body   string
		// wantErr lists substrings of the error; none means Check passes.
		wantErr []string
	}{
		{
			name:   "versions valid",
			method: "GET", path: "/_matrix/client/versions", status: 200,
			body: `{"versions":["v1.11","v1.12","v1.13"],"unstable_features":{"org.example.feature":true}}`,
		},
		{
			name:   "versions not an array",
			method: "GET", path: "/_matrix/client/versions", status: 200,
			body:    `{"versions":5}`,
			wantErr: []string{"getVersions", "status 200", "'/versions'", "want array"},
		},
		{
			name:   "register available",
			method: "GET", path: "/_matrix/client/v3/register/available?username=alice", status: 200,
			body: `{"available":true}`,
		},
		{
			name:   "error without errcode",
			method: "GET", path: "/_matrix/client/v3/register/available", status: 400,
			body:    `{"error":"taken"}`,
			wantErr: []string{"checkUsernameAvailability", "status 400", "errcode"},
		},
		{
			name:   "error without error message",
			method: "GET", path: "/_matrix/client/v3/register/available", status: 400,
			body:    `{"errcode":"M_USER_IN_USE"}`,
			wantErr: []string{"not a standard error response", "'error'"},
		},
		{
			name:   "standard error",
			method: "GET", path: "/_matrix/client/v3/register/available", status: 400,
			body: `{"errcode":"M_USER_IN_USE","error":"Desired user ID is already taken."}`,
		},
		{
			name:   "profile displayname",
			method: "GET", path: "/_matrix/client/v3/profile/@alice:example.org/displayname", status: 200,
			body: `{"displayname":"A"}`,
		},
		{
			name:   "profile displayname wrong type",
			method: "GET", path: "/_matrix/client/v3/profile/@alice:example.org/displayname", status: 200,
			body:    `{"displayname":1}`,
			wantErr: []string{"getDisplayName", "'/displayname'"},
		},
		{
			name:   "register user-interactive auth",
			method: "POST", path: "/_matrix/client/v3/register", status: 401,
			body: `{"flows":[{"stages":["m.login.dummy"]}],"params":{},"session":"xyzzy"}`,
		},
		{
			name:   "register user-interactive auth after failed stage",
			method: "POST", path: "/_matrix/client/v3/register", status: 401,
			body: `{"flows":[{"stages":["m.login.dummy"]}],"session":"xyzzy","completed":[],"errcode":"M_FORBIDDEN","error":"nope"}`,
		},
		{
			name:   "register user-interactive auth errcode without error",
			method: "POST", path: "/_matrix/client/v3/register", status: 401,
			body:    `{"flows":[{"stages":["m.login.dummy"]}],"errcode":"M_FORBIDDEN"}`,
			wantErr: []string{"not a standard error response"},
		},
		{
			name:   "register user-interactive auth without flows",
			method: "POST", path: "/_matrix/client/v3/register", status: 401,
			body:    `{"session":"xyzzy"}`,
			wantErr: []string{"register", "'flows'"},
		},
		{
			name:   "user-interactive auth the description names but the responses omit",
			method: "POST", path: "/_matrix/client/v3/keys/device_signing/upload", status: 401,
			body: `{"flows":[{"stages":["m.login.password"]}],"params":{},"session":"xyzzy"}`,
		},
		{
			name:   "user-interactive auth the description names, with bad flows",
			method: "POST", path: "/_matrix/client/v3/keys/device_signing/upload", status: 401,
			body:    `{"flows":"password","session":"xyzzy"}`,
			wantErr: []string{"uploadCrossSigningKeys", "not a user-interactive authentication response"},
		},
		{
			name:   "undocumented status",
			method: "GET", path: "/_matrix/client/versions", status: 404,
			body:    `{"errcode":"M_NOT_FOUND","error":"no"}`,
			wantErr: []string{"getVersions", "status 404 is not documented", "documented: 200"},
		},
		{
			name:   "undocumented 500 is allowed",
			method: "GET", path: "/_matrix/client/versions", status: 500,
			body: `{"errcode":"M_UNKNOWN","error":"internal"}`,
		},
		{
			name:   "undocumented 500 still needs a standard error",
			method: "GET", path: "/_matrix/client/versions", status: 500,
			body:    `Internal Server Error`,
			wantErr: []string{"not JSON"},
		},
		{
			name:   "undocumented 429 is allowed",
			method: "GET", path: "/_matrix/client/versions", status: 429,
			body: `{"errcode":"M_LIMIT_EXCEEDED","error":"slow down"}`,
		},
		{
			name:   "undocumented 401 on an authenticated operation",
			method: "GET", path: "/_matrix/client/v3/capabilities", status: 401,
			body: `{"errcode":"M_MISSING_TOKEN","error":"Missing access token"}`,
		},
		{
			name:   "undocumented 401 on an unauthenticated operation",
			method: "GET", path: "/_matrix/client/v3/login", status: 401,
			body:    `{"errcode":"M_MISSING_TOKEN","error":"Missing access token"}`,
			wantErr: []string{"status 401 is not documented"},
		},
		{
			name:   "state with empty state key and trailing slash",
			method: "GET", path: "/_matrix/client/v3/rooms/!a:b/state/m.room.name/", status: 200,
			body: `{"name":"Room"}`,
		},
		{
			name:   "state event without trailing slash",
			method: "PUT", path: "/_matrix/client/v3/rooms/!a:b/state/m.room.name", status: 200,
			body:    `{}`,
			wantErr: []string{"setRoomStateWithKey", "'event_id'"},
		},
		{
			name:   "escaped slash in state key",
			method: "PUT", path: "/_matrix/client/v3/rooms/%21a:b/state/org.example/a%2Fb", status: 200,
			body: `{"event_id":"$e"}`,
		},
		{
			name:   "unescaped slash in state key",
			method: "PUT", path: "/_matrix/client/v3/rooms/!a:b/state/org.example/a/b", status: 200,
			body:    `{"event_id":5}`,
			wantErr: []string{"setRoomStateWithKey", "'/event_id'"},
		},
		{
			name:   "literal segment beats parameter",
			method: "GET", path: "/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled", status: 200,
			body: `{"enabled":true}`,
		},
		{
			name:   "either form of invite",
			method: "POST", path: "/_matrix/client/v3/rooms/!a:b/invite", status: 200,
			body: `{}`,
		},
		{
			name:   "federation",
			method: "GET", path: "/_matrix/federation/v1/version", status: 200,
			body: `{"server":{"name":"spelt","version":"0.1"}}`,
		},
		{
			name:   "federation wrong type",
			method: "GET", path: "/_matrix/federation/v1/version", status: 200,
			body:    `{"server":"spelt"}`,
			wantErr: []string{"'/server'"},
		},
		{
			name:   "key server",
			method: "GET", path: "/_matrix/key/v2/server", status: 200,
			body:    `{"server_name":"example.org"}`,
			wantErr: []string{"getServerKey"},
		},
		{
			name:   "well-known",
			method: "GET", path: "/.well-known/matrix/client", status: 200,
			body: `{"m.homeserver":{"base_url":"https://example.org"}}`,
		},
		{
			name:   "unknown path",
			method: "GET", path: "/_synapse/admin/v1/users", status: 200,
			body: `not even json`,
		},
		{
			name:   "unknown method",
			method: "DELETE", path: "/_matrix/client/versions", status: 405,
			body: ``,
		},
		{
			name:   "non-JSON response",
			method: "GET", path: "/_matrix/client/v1/media/download/example.org/abc", status: 200,
			body: "\x89PNG",
		},
		{
			name:   "body not JSON",
			method: "GET", path: "/_matrix/client/v3/account/whoami", status: 200,
			body:    `{"user_id":`,
			wantErr: []string{"getTokenOwner", "not JSON"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tt.method, tt.path, tt.status, []byte(tt.body))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want an error containing %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestCheckViolationPointer(t *testing.T) {
	t.Parallel()
	err := Check("GET", "/_matrix/client/versions", 200, []byte(`{"versions":5}`))
	var v *Violation
	if !errors.As(err, &v) {
		t.Fatalf("Check error %v is not a *Violation", err)
	}
	if got, want := v.Error(), "at '/versions': got number, want array"; got != want {
		t.Errorf("violation = %q, want %q", got, want)
	}
}

func TestKnown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		want         bool
	}{
		{"GET", "/_matrix/client/versions", true},
		{"get", "/_matrix/client/versions", true},
		{"GET", "/_synapse/admin/v1/users", false},
		{"GET", "/_matrix/client/v3/profile/@alice:example.org/displayname", true},
		{"GET", "/_matrix/client/v3/profile/@alice:example.org/displayname/extra", true}, // userId took the rest
		{"GET", "/_matrix/client/v3/user/@alice:example.org/filter", false},
		{"POST", "/_matrix/client/v3/user/@alice:example.org/filter", true},
		{"GET", "/_matrix/client/r0/versions", false},
		{"GET", "http://localhost:8008/_matrix/client/v3/account/whoami?x=1", true},
		{"PUT", "/_matrix/federation/v1/send/txn1", true},
	}
	for _, tt := range tests {
		if got := Known(tt.method, tt.path); got != tt.want {
			t.Errorf("Known(%s, %s) = %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestCheckUnknownIsNil(t *testing.T) {
	t.Parallel()
	if err := Check("GET", "/_synapse/admin/v1/users", 200, []byte(`{}`)); err != nil {
		t.Errorf("Check on an unknown path: %v", err)
	}
	if Known("GET", "/_synapse/admin/v1/users") {
		t.Error("Known on an unknown path = true")
	}
}

// TestCompileAllResponseSchemas compiles the application/json schema of
// every documented response of every operation, so a broken vendored file
// or a $ref to a file that is not vendored fails here.
func TestCompileAllResponseSchemas(t *testing.T) {
	t.Parallel()
	s, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	perAPI := map[string]int{}
	schemas := 0
	for _, op := range s.ops {
		perAPI[strings.Split(op.file, "/")[1]]++
		for _, status := range op.statuses() {
			r := op.responses[status]
			if r.schemaLoc == "" {
				continue
			}
			if _, err := s.schema(r.schemaLoc); err != nil {
				t.Errorf("%s response %s: %v", op, status, err)
				continue
			}
			schemas++
		}
	}
	if perAPI["client-server"] == 0 || perAPI["server-server"] == 0 {
		t.Errorf("operations per API = %v, want both APIs", perAPI)
	}
	t.Logf("compiled %d response schemas of %d operations (%v)", schemas, len(s.ops), perAPI)
}

// TestSpecExamplesConform runs Check on every response example the spec
// documents, with its $refs to example files resolved as the spec's
// renderer does (sibling keys override the referenced object). A spec-shaped
// body must pass, so a failure here is a false positive of the checker (or a
// spec bug to list in knownBadExamples).
func TestSpecExamplesConform(t *testing.T) {
	// knownBadExamples are spec v1.13 examples that break the spec's own
	// rule that "the keys error and errcode MUST always be present" in an
	// error (Client-Server API, "Standard error response"): they have only
	// errcode. Keyed by operationId and status.
	knownBadExamples := map[string]bool{
		"login 403":                   true,
		"getProtocolMetadata 404":     true,
		"queryLocationByProtocol 404": true,
		"queryUserByProtocol 404":     true,
		"queryLocationByAlias 404":    true,
		"queryUserByID 404":           true,
	}
	t.Parallel()
	s, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	n, bad := 0, 0
	for _, op := range s.ops {
		for _, status := range op.statuses() {
			r := op.responses[status]
			code, err := strconv.Atoi(status)
			if err != nil || !r.json {
				continue
			}
			media, _ := lookup(s.docs[r.doc], r.ptr+"/content/application~1json").(map[string]any)
			examples := map[string]any{}
			if ex, ok := media["example"]; ok {
				examples["example"] = ex
			}
			named, _ := media["examples"].(map[string]any)
			for name, ex := range named {
				if ex, ok := ex.(map[string]any)["value"]; ok {
					examples[name] = ex
				}
			}
			for name, ex := range examples {
				n++
				ex, err := resolveExample(s, r.doc, ex)
				if err != nil {
					t.Errorf("%s %s example %s: %v", op, status, name, err)
					continue
				}
				body, err := json.Marshal(ex)
				if err != nil {
					t.Fatal(err)
				}
				err = s.check(op, code, body)
				switch known := knownBadExamples[op.id+" "+status]; {
				case err != nil && known:
					bad++
				case err != nil:
					t.Errorf("example %s: %v", name, err)
				case known:
					t.Errorf("%s %s example %s passes: drop it from knownBadExamples", op, status, name)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no examples found")
	}
	t.Logf("%d of %d response examples conform; %d known bad", n-bad, n, bad)
}

// resolveExample replaces {"$ref": file, ...siblings} in an example with the
// referenced example, overridden by the siblings.
func resolveExample(s *spec, docURL string, v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		if ref, ok := v["$ref"].(string); ok {
			target, err := resolveRef(docURL, ref)
			if err != nil {
				return nil, err
			}
			u, ptr, _ := strings.Cut(target, "#")
			doc, ok := s.docs[u]
			if !ok {
				return nil, fmt.Errorf("example $ref %s is not vendored", u)
			}
			resolved, err := resolveExample(s, u, lookup(doc, ptr))
			if err != nil {
				return nil, err
			}
			if len(v) == 1 {
				return resolved, nil
			}
			m, ok := resolved.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("example $ref %s with siblings is not an object", u)
			}
			maps.Copy(out, m)
		}
		for k, x := range v {
			if k == "$ref" {
				continue
			}
			rx, err := resolveExample(s, docURL, x)
			if err != nil {
				return nil, err
			}
			out[k] = rx
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			rx, err := resolveExample(s, docURL, x)
			if err != nil {
				return nil, err
			}
			out[i] = rx
		}
		return out, nil
	}
	return v, nil
}

// TestCheckConcurrent checks the same and different operations from many
// goroutines; run with -race.
func TestCheckConcurrent(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/_matrix/client/versions"
			body := `{"versions":["v1.13"]}`
			if i%2 == 1 {
				path = "/_matrix/client/v3/profile/@u" + strconv.Itoa(i) + ":example.org"
				body = `{"displayname":"U"}`
			}
			if err := Check("GET", path, 200, []byte(body)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// recorder captures what Transport reports instead of failing the test.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestTransport(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/_matrix/client/versions":
			io.WriteString(w, `{"versions":["v1.13"]}`)
		case "/_matrix/client/v3/capabilities":
			w.WriteHeader(http.StatusForbidden) // not documented for getCapabilities
			io.WriteString(w, `{"errcode":"M_FORBIDDEN","error":"no"}`)
		case "/_matrix/client/v3/register/available":
			io.WriteString(w, `{"available":"yes"}`+strings.Repeat(" ", 3*maxReportedBody))
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		path    string
		wantErr []string
	}{
		{path: "/_matrix/client/versions"},
		{path: "/_synapse/admin/v1/whatever"},
		{path: "/_matrix/client/v3/capabilities", wantErr: []string{
			"GET /_matrix/client/v3/capabilities answered 403", "getCapabilities", "status 403 is not documented",
			`body: {"errcode":"M_FORBIDDEN","error":"no"}`,
		}},
		{path: "/_matrix/client/v3/register/available", wantErr: []string{
			"answered 200", "'/available'", "bytes in all)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			client := &http.Client{Transport: Transport(rec, nil)}
			resp, err := client.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if len(body) == 0 {
				t.Error("Transport did not restore the response body")
			}
			if len(tt.wantErr) == 0 {
				if len(rec.errors) > 0 {
					t.Errorf("Transport reported %q", rec.errors)
				}
				return
			}
			if len(rec.errors) != 1 {
				t.Fatalf("Transport reported %d errors, want 1: %q", len(rec.errors), rec.errors)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(rec.errors[0], want) {
					t.Errorf("report %q does not contain %q", rec.errors[0], want)
				}
			}
		})
	}
}
