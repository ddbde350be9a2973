package config

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

const examplePath = "../../config/spelt.example.toml"

// mapEnv returns a lookup function over m, like os.LookupEnv.
func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// writeFile writes content to a fresh file in a per-test directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spelt.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// missing is a fallback path that never exists.
func missing(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "absent.toml")
}

// errorLines flattens an errors.Join tree into its leaf messages.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, errorLines(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	d := Defaults()
	if err := d.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"server_name", d.ServerName, "localhost"},
		{"public_baseurl", d.PublicBaseURL, "http://127.0.0.1:8008/"},
		{"data_dir", d.DataDir, "./data"},
		{"database.url", d.Database.URL, ""},
		{"database.max_conns", d.Database.MaxConns, int32(20)},
		{"listen.client", d.Listen.Client, "127.0.0.1:8008"},
		{"listen.federation", d.Listen.Federation, ":8448"},
		{"registration.enabled", d.Registration.Enabled, false},
		{"registration.shared_secret", d.Registration.SharedSecret, ""},
		{"registration.require_token", d.Registration.RequireToken, false},
		{"rate_limits.enabled", d.RateLimits.Enabled, true},
		{"rate_limits.login_per_second", d.RateLimits.LoginPerSecond, 0.5},
		{"rate_limits.login_burst", d.RateLimits.LoginBurst, 5},
		{"rate_limits.register_per_second", d.RateLimits.RegisterPerSecond, 0.17},
		{"rate_limits.register_burst", d.RateLimits.RegisterBurst, 3},
		{"log.level", d.Log.Level, "info"},
		{"log.format", d.Log.Format, "text"},
		{"eventlog.seal_interval", d.EventLog.SealInterval.Duration, 10 * time.Second},
		{"http.max_body_bytes", d.HTTP.MaxBodyBytes, int64(65536)},
		{"auth.access_token_lifetime", d.Auth.AccessTokenLifetime.Duration, time.Duration(0)},
		{"SigningKeyPath", d.SigningKeyPath(), filepath.Join("data", "signing.key")},
		{"PostgresDir", d.PostgresDir(), filepath.Join("data", "postgres")},
		{"SlogLevel", d.SlogLevel(), slog.LevelInfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.got != tt.want {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestLoadWithoutFileOrEnvIsDefaults(t *testing.T) {
	t.Parallel()
	for _, env := range []func(string) (string, bool){nil, mapEnv(nil)} {
		got, err := load("", missing(t), env)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, Defaults()) {
			t.Errorf("load = %+v, want Defaults() %+v", got, Defaults())
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
server_name = "file.example"
[listen]
client = "0.0.0.0:9000"
[log]
level = "warn"
[rate_limits]
enabled = false
login_per_second = 2.0
[eventlog]
seal_interval = "1m"
`)
	tests := []struct {
		name  string
		path  string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{
			name: "file over defaults",
			path: file,
			check: func(t *testing.T, c Config) {
				want := Defaults()
				want.ServerName = "file.example"
				want.Listen.Client = "0.0.0.0:9000"
				want.PublicBaseURL = "http://file.example:9000/"
				want.Log.Level = "warn"
				want.RateLimits.Enabled = false
				want.RateLimits.LoginPerSecond = 2
				want.EventLog.SealInterval = Duration{time.Minute}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got  %+v\nwant %+v", c, want)
				}
			},
		},
		{
			name: "env over file",
			path: file,
			env: map[string]string{
				"SPELT_SERVER_NAME":                  "env.example:8448",
				"SPELT_LISTEN_CLIENT":                "[::]:7000",
				"SPELT_LOG_LEVEL":                    "debug",
				"SPELT_RATE_LIMITS_ENABLED":          "1",
				"SPELT_RATE_LIMITS_LOGIN_PER_SECOND": "3.5",
				"SPELT_EVENTLOG_SEAL_INTERVAL":       "250ms",
			},
			check: func(t *testing.T, c Config) {
				want := Defaults()
				want.ServerName = "env.example:8448"
				want.Listen.Client = "[::]:7000"
				want.PublicBaseURL = "http://env.example:7000/"
				want.Log.Level = "debug"
				want.RateLimits.Enabled = true
				want.RateLimits.LoginPerSecond = 3.5
				want.EventLog.SealInterval = Duration{250 * time.Millisecond}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got  %+v\nwant %+v", c, want)
				}
				if c.SlogLevel() != slog.LevelDebug {
					t.Errorf("SlogLevel() = %v, want debug", c.SlogLevel())
				}
			},
		},
		{
			name: "env over defaults, every kind",
			env: map[string]string{
				"SPELT_PUBLIC_BASEURL":                  "https://matrix.example.org",
				"SPELT_DATA_DIR":                        "/var/lib/spelt",
				"SPELT_DATABASE_URL":                    "postgres://u:p@db/spelt",
				"SPELT_DATABASE_MAX_CONNS":              "50",
				"SPELT_REGISTRATION_ENABLED":            "TRUE",
				"SPELT_REGISTRATION_SHARED_SECRET":      "s3cret",
				"SPELT_REGISTRATION_REQUIRE_TOKEN":      "true",
				"SPELT_HTTP_MAX_BODY_BYTES":             "1048576",
				"SPELT_AUTH_ACCESS_TOKEN_LIFETIME":      "24h",
				"SPELT_RATE_LIMITS_REGISTER_BURST":      "10",
				"SPELT_LOG_FORMAT":                      "json",
				"SPELT_RATE_LIMITS_REGISTER_PER_SECOND": "1e-2",
			},
			check: func(t *testing.T, c Config) {
				want := Defaults()
				want.PublicBaseURL = "https://matrix.example.org/"
				want.DataDir = "/var/lib/spelt"
				want.Database.URL = "postgres://u:p@db/spelt"
				want.Database.MaxConns = 50
				want.Registration = Registration{Enabled: true, SharedSecret: "s3cret", RequireToken: true}
				want.HTTP.MaxBodyBytes = 1 << 20
				want.Auth.AccessTokenLifetime = Duration{24 * time.Hour}
				want.RateLimits.RegisterBurst = 10
				want.RateLimits.RegisterPerSecond = 0.01
				want.Log.Format = "json"
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got  %+v\nwant %+v", c, want)
				}
				if got, want := c.SigningKeyPath(), filepath.Join("/var/lib/spelt", "signing.key"); got != want {
					t.Errorf("SigningKeyPath() = %q, want %q", got, want)
				}
				if got, want := c.PostgresDir(), filepath.Join("/var/lib/spelt", "postgres"); got != want {
					t.Errorf("PostgresDir() = %q, want %q", got, want)
				}
			},
		},
		{
			name: "empty env value clears a string",
			path: writeFile(t, `public_baseurl = "https://file.example/"`),
			env:  map[string]string{"SPELT_PUBLIC_BASEURL": ""},
			check: func(t *testing.T, c Config) {
				if c.PublicBaseURL != "http://127.0.0.1:8008/" {
					t.Errorf("PublicBaseURL = %q, want derived default", c.PublicBaseURL)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(tt.path, missing(t), mapEnv(tt.env))
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadFileSelection(t *testing.T) {
	t.Parallel()
	fromEnv := writeFile(t, `server_name = "from-env.example"`)
	explicit := writeFile(t, `server_name = "explicit.example"`)
	fallback := writeFile(t, `server_name = "fallback.example"`)
	absent := missing(t)

	tests := []struct {
		name       string
		path       string
		fallback   string
		env        map[string]string
		wantServer string
		wantErr    error
	}{
		{name: "explicit path", path: explicit, fallback: fallback, wantServer: "explicit.example"},
		{name: "explicit path beats SPELT_CONFIG", path: explicit, env: map[string]string{"SPELT_CONFIG": fromEnv}, wantServer: "explicit.example"},
		{name: "SPELT_CONFIG when path empty", fallback: fallback, env: map[string]string{"SPELT_CONFIG": fromEnv}, wantServer: "from-env.example"},
		{name: "empty SPELT_CONFIG ignored", fallback: fallback, env: map[string]string{"SPELT_CONFIG": ""}, wantServer: "fallback.example"},
		{name: "fallback file when present", fallback: fallback, wantServer: "fallback.example"},
		{name: "defaults when nothing", fallback: absent, wantServer: "localhost"},
		{name: "explicit missing file", path: absent, fallback: fallback, wantErr: fs.ErrNotExist},
		{name: "SPELT_CONFIG missing file", fallback: fallback, env: map[string]string{"SPELT_CONFIG": absent}, wantErr: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(tt.path, tt.fallback, mapEnv(tt.env))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), absent) {
					t.Errorf("err = %q, want it to name %s", err, absent)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ServerName != tt.wantServer {
				t.Errorf("ServerName = %q, want %q", c.ServerName, tt.wantServer)
			}
		})
	}
}

func TestLoadPublicMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(missing(t), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) err = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
servername = "x"
[listen]
clinet = "127.0.0.1:1"
[nope]
a = 1
`)
	_, err := load(path, missing(t), nil)
	if err == nil {
		t.Fatal("load succeeded, want unknown key errors")
	}
	got := errorLines(err)
	want := []string{`unknown key "servername"`, `unknown key "listen.clinet"`, `unknown key "nope"`, `unknown key "nope.a"`}
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.HasPrefix(g, w+" in ") {
				found = true
			}
		}
		if !found {
			t.Errorf("errors %q lack %q", got, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d errors %q, want %d", len(got), got, len(want))
	}
}

func TestLoadSyntaxError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"bad toml", "server_name = ", "parse config"},
		{"wrong type", "[database]\nmax_conns = \"many\"", "max_conns"},
		{"bad duration", "[eventlog]\nseal_interval = \"ten\"", `"ten" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(writeFile(t, tt.content), missing(t), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadReportsEverythingTogether(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
server_name = "Bad Name!"
typo = 1
[listen]
client = "abc"
[log]
level = "verbose"
`)
	env := mapEnv(map[string]string{
		"SPELT_DATABASE_MAX_CONNS":  "lots",
		"SPELT_HTTP_MAX_BODY_BYTES": "10",
	})
	_, err := load(path, missing(t), env)
	got := errorLines(err)
	want := []string{
		`unknown key "typo" in ` + path,
		`SPELT_DATABASE_MAX_CONNS: "lots" is not an integer`,
		`server_name: "Bad Name!" is not a valid Matrix server name`,
		`listen.client: "abc" is not host:port`,
		`log.level: "verbose" is not one of debug, info, warn, error`,
		`http.max_body_bytes: 10 is less than 1024`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadBadEnvValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env, value, want string
	}{
		{"SPELT_RATE_LIMITS_ENABLED", "yes", `SPELT_RATE_LIMITS_ENABLED: "yes" is not a boolean (true, false, 1, 0)`},
		{"SPELT_REGISTRATION_ENABLED", "", `SPELT_REGISTRATION_ENABLED: "" is not a boolean (true, false, 1, 0)`},
		{"SPELT_DATABASE_MAX_CONNS", "2.5", `SPELT_DATABASE_MAX_CONNS: "2.5" is not an integer`},
		{"SPELT_DATABASE_MAX_CONNS", "99999999999", `SPELT_DATABASE_MAX_CONNS: "99999999999" is out of range`},
		{"SPELT_RATE_LIMITS_LOGIN_BURST", "five", `SPELT_RATE_LIMITS_LOGIN_BURST: "five" is not an integer`},
		{"SPELT_RATE_LIMITS_LOGIN_PER_SECOND", "fast", `SPELT_RATE_LIMITS_LOGIN_PER_SECOND: "fast" is not a number`},
		{"SPELT_EVENTLOG_SEAL_INTERVAL", "10", `SPELT_EVENTLOG_SEAL_INTERVAL: "10" is not a duration such as "10s"`},
		{"SPELT_AUTH_ACCESS_TOKEN_LIFETIME", "forever", `SPELT_AUTH_ACCESS_TOKEN_LIFETIME: "forever" is not a duration such as "10s"`},
		// Parses, but fails validation: still named by key.
		{"SPELT_LISTEN_FEDERATION", "8448", `listen.federation: "8448" is not host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			_, err := load("", missing(t), mapEnv(map[string]string{tt.env: tt.value}))
			got := errorLines(err)
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("errors = %q, want [%q]", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"unresolved defaults", func(c *Config) { *c = defaults() }, nil},
		{"server name", func(c *Config) { c.ServerName = "Bad Name!" },
			[]string{`server_name: "Bad Name!" is not a valid Matrix server name`}},
		{"empty server name", func(c *Config) { c.ServerName = "" },
			[]string{`server_name: "" is not a valid Matrix server name`}},
		{"base url scheme", func(c *Config) { c.PublicBaseURL = "ftp://example.org/" },
			[]string{`public_baseurl: "ftp://example.org/" is not an absolute http(s) URL`}},
		{"base url relative", func(c *Config) { c.PublicBaseURL = "/matrix" },
			[]string{`public_baseurl: "/matrix" is not an absolute http(s) URL`}},
		{"base url query", func(c *Config) { c.PublicBaseURL = "https://example.org/?a=b" },
			[]string{`public_baseurl: "https://example.org/?a=b" must not have a query or fragment`}},
		{"base url user", func(c *Config) { c.PublicBaseURL = "https://u:p@example.org/" },
			[]string{`public_baseurl: "https://u:p@example.org/" must not contain user info`}},
		{"base url with path ok", func(c *Config) { c.PublicBaseURL = "https://example.org/matrix" }, nil},
		{"data dir", func(c *Config) { c.DataDir = "" }, []string{`data_dir: must not be empty`}},
		{"database url hides secret", func(c *Config) { c.Database.URL = "mysql://root:hunter2@db" },
			[]string{`database.url: must be empty or start with postgres:// or postgresql://`}},
		{"database url postgresql", func(c *Config) { c.Database.URL = "postgresql://db/spelt" }, nil},
		{"max conns low", func(c *Config) { c.Database.MaxConns = 0 },
			[]string{`database.max_conns: 0 is not between 1 and 1000`}},
		{"max conns high", func(c *Config) { c.Database.MaxConns = 1001 },
			[]string{`database.max_conns: 1001 is not between 1 and 1000`}},
		{"listen client", func(c *Config) { c.Listen.Client = "abc" },
			[]string{`listen.client: "abc" is not host:port`}},
		{"listen port range", func(c *Config) { c.Listen.Client = "127.0.0.1:65536" },
			[]string{`listen.client: "127.0.0.1:65536" is not host:port with a port 0..65535`}},
		{"listen named port", func(c *Config) { c.Listen.Federation = ":https" },
			[]string{`listen.federation: ":https" is not host:port with a port 0..65535`}},
		{"listen ipv6 and port 0 ok", func(c *Config) { c.Listen.Federation = "[::1]:0" }, nil},
		{"rates", func(c *Config) {
			c.RateLimits.LoginPerSecond = 0
			c.RateLimits.LoginBurst = 0
			c.RateLimits.RegisterPerSecond = -1
			c.RateLimits.RegisterBurst = -2
		}, []string{
			`rate_limits.login_per_second: 0 is not a positive number`,
			`rate_limits.login_burst: 0 is less than 1`,
			`rate_limits.register_per_second: -1 is not a positive number`,
			`rate_limits.register_burst: -2 is less than 1`,
		}},
		{"log", func(c *Config) { c.Log.Level = "verbose"; c.Log.Format = "xml" }, []string{
			`log.level: "verbose" is not one of debug, info, warn, error`,
			`log.format: "xml" is not one of text, json`,
		}},
		{"durations", func(c *Config) {
			c.EventLog.SealInterval = Duration{0}
			c.Auth.AccessTokenLifetime = Duration{-time.Second}
		}, []string{
			`eventlog.seal_interval: "0s" is not a positive duration`,
			`auth.access_token_lifetime: "-1s" is negative`,
		}},
		{"max body", func(c *Config) { c.HTTP.MaxBodyBytes = 1023 },
			[]string{`http.max_body_bytes: 1023 is less than 1024`}},
		{"email ok", func(c *Config) {
			c.Email.SMTPHost = "127.0.0.1"
			c.Email.From = "Spelt <matrix@example.org>"
			c.Email.SMTPUser = "spelt"
			c.Email.SMTPPassword = "hunter2"
			c.Registration.RequireEmail = true
		}, nil},
		{"email needs from", func(c *Config) { c.Email.SMTPHost = "smtp.example.org" },
			[]string{`email.from: must be set when email.smtp_host is`}},
		{"email hides password", func(c *Config) {
			c.Email.SMTPHost = "smtp.example.org:25"
			c.Email.From = "not an address"
			c.Email.SMTPPort = 0
			c.Email.SMTPPassword = "hunter2"
			c.Email.TokenLifetime = Duration{0}
		}, []string{
			`email.smtp_port: 0 is not between 1 and 65535`,
			`email.smtp_host: "smtp.example.org:25" is not a host name or address`,
			`email.from: "not an address" is not an e-mail address`,
			`email.smtp_password: is set but email.smtp_user is empty`,
			`email.token_lifetime: "0s" is not a positive duration`,
		}},
		{"require email without smtp", func(c *Config) { c.Registration.RequireEmail = true },
			[]string{`registration.require_email: needs email.smtp_host: Spelt cannot mail validation tokens without it`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Defaults()
			tt.modify(&c)
			got := errorLines(c.Validate())
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidServerName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"localhost", true},
		{"example.org", true},
		{"matrix.example.org:8448", true},
		{"EXAMPLE.org", true},
		{"xn--bcher-kva.example", true},
		{"1.2.3.4", true},
		{"1.2.3.4:1", true},
		{"[::1]", true},
		{"[2001:db8::1]:8448", true},
		{"", false},
		{"Bad Name!", false},
		{"under_score.org", false},
		{"example.org:", false},
		{"example.org:0", false},
		{"example.org:65536", false},
		{"example.org:123456", false},
		{"example.org:80:80", false},
		{"example..org", false},
		{".example.org", false},
		{"example.org.", false},
		{strings.Repeat("a", 64) + ".org", false},
		{"::1", false},
		{"[::1", false},
		{"[::1]x", false},
		{"[test::1]", false},
		{"[1.2.3.4]", false},
		{"[fe80::1%eth0]", false},
		{"exämple.org", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ValidServerName(tt.name); got != tt.want {
				t.Errorf("ValidServerName(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestPublicBaseURLDerivation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, serverName, client, baseURL, want string
	}{
		{"default", "localhost", "127.0.0.1:8008", "", "http://127.0.0.1:8008/"},
		{"named host kept", "example.org", "matrix.internal:80", "", "http://matrix.internal:80/"},
		{"empty host", "example.org:8448", ":8008", "", "http://example.org:8008/"},
		{"ipv4 any", "example.org", "0.0.0.0:8008", "", "http://example.org:8008/"},
		{"ipv6 any", "example.org", "[::]:8008", "", "http://example.org:8008/"},
		{"ipv6 loopback", "example.org", "[::1]:8008", "", "http://[::1]:8008/"},
		{"ipv6 server name", "[2001:db8::1]:8448", "0.0.0.0:8008", "", "http://[2001:db8::1]:8008/"},
		{"explicit gets slash", "example.org", "0.0.0.0:8008", "https://matrix.example.org", "https://matrix.example.org/"},
		{"explicit path gets slash", "example.org", "0.0.0.0:8008", "https://example.org/matrix", "https://example.org/matrix/"},
		{"explicit kept", "example.org", "0.0.0.0:8008", "https://example.org/", "https://example.org/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := load("", missing(t), mapEnv(map[string]string{
				"SPELT_SERVER_NAME":    tt.serverName,
				"SPELT_LISTEN_CLIENT":  tt.client,
				"SPELT_PUBLIC_BASEURL": tt.baseURL,
			}))
			if err != nil {
				t.Fatal(err)
			}
			if got.PublicBaseURL != tt.want {
				t.Errorf("PublicBaseURL = %q, want %q", got.PublicBaseURL, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("resolved config does not validate: %v", err)
			}
		})
	}
}

func TestSlogLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			t.Parallel()
			c := Defaults()
			c.Log.Level = tt.level
			if got := c.SlogLevel(); got != tt.want {
				t.Errorf("SlogLevel() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDurationRoundTrip(t *testing.T) {
	t.Parallel()
	want := Defaults()
	want.EventLog.SealInterval = Duration{90 * time.Minute}
	want.Auth.AccessTokenLifetime = Duration{1500 * time.Millisecond}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(want); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `seal_interval = "1h30m0s"`) {
		t.Errorf("encoded TOML lacks duration string:\n%s", buf.String())
	}
	got, err := load(writeFile(t, buf.String()), missing(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip = %+v, want %+v", got, want)
	}
}

func TestEnvOverridesEveryKey(t *testing.T) {
	t.Parallel()
	var c Config
	seen := map[string]string{}
	var listKeys []string
	for _, f := range c.fields() {
		if f.list {
			// Keys of a list of tables ([[sso.providers]]) have no variable.
			if f.env != "" {
				t.Errorf("%s: list key with variable %s", f.key, f.env)
			}
			listKeys = append(listKeys, f.key)
			continue
		}
		if prev, ok := seen[f.env]; ok {
			t.Errorf("keys %s and %s share %s", prev, f.key, f.env)
		}
		seen[f.env] = f.key
		// An empty string is a valid value only for strings, but every kind
		// must be handled by setFromString rather than hit its default case.
		err := setFromString(f.value, "")
		if err != nil && strings.Contains(err.Error(), "not supported") {
			t.Errorf("%s: %v", f.key, err)
		}
	}
	if len(seen) != 43 {
		t.Errorf("Config has %d keys, want 43; update this test and the example file", len(seen))
	}
	if len(listKeys) != 10 {
		t.Errorf("Config has %d keys in lists of tables (%q), want 10; update this test and the example file", len(listKeys), listKeys)
	}
}

func TestExampleEqualsDefaults(t *testing.T) {
	t.Parallel()
	got, err := Load(examplePath, mapEnv(nil))
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if !reflect.DeepEqual(got, Defaults()) {
		t.Errorf("example = %+v\nDefaults() = %+v", got, Defaults())
	}
}

// uncommentTables returns the example with its commented-out tables of lists
// ("# [[sso.providers]]" and the "# "-prefixed lines after it, up to a blank
// line) uncommented, as an operator would.
func uncommentTables(data string) string {
	var b strings.Builder
	in := false
	for line := range strings.Lines(data) {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# [["):
			in = true
		case trimmed == "" || !strings.HasPrefix(trimmed, "#"):
			in = false
		}
		if in {
			line = strings.TrimPrefix(strings.TrimPrefix(trimmed, "#"), " ") + "\n"
		}
		b.WriteString(line)
	}
	return b.String()
}

// TestExampleProviders loads the example with its [[sso.providers]] table
// uncommented: it is a valid provider with the documented values.
func TestExampleProviders(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := load(writeFile(t, uncommentTables(string(data))), missing(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []SSOProvider{{ID: "example", Name: "Example SSO", Issuer: "https://id.example.org", ClientID: "spelt",
		ClientSecret: "change me", Scopes: DefaultSSOScopes, LocalpartClaim: DefaultSSOLocalpartClaim,
		DisplayNameClaim: DefaultSSODisplayNameClaim}}
	if !reflect.DeepEqual(c.SSO.Providers, want) {
		t.Errorf("providers = %+v, want %+v", c.SSO.Providers, want)
	}
}

// TestExampleDocumentsEveryKey keeps the example from drifting: every Config
// key is set in it (not commented out) and preceded by a comment naming its
// environment variable and default. Keys of lists of tables
// ([[sso.providers]]) are in a commented-out table, each with its default.
func TestExampleDocumentsEveryKey(t *testing.T) {
	t.Parallel()
	file, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	data := uncommentTables(string(file))
	var raw map[string]any
	md, err := toml.Decode(data, &raw)
	if err != nil {
		t.Fatal(err)
	}

	// comments[key] is the comment block directly above the key's line.
	comments := map[string]string{}
	section := ""
	var block []string
	for line := range strings.Lines(data) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#"):
			block = append(block, line)
			continue
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]") + "."
		case strings.Contains(line, "="):
			name, _, _ := strings.Cut(line, "=")
			comments[section+strings.TrimSpace(name)] = strings.Join(block, "\n")
		}
		block = nil
	}

	var c Config
	for _, f := range c.fields() {
		t.Run(f.key, func(t *testing.T) {
			t.Parallel()
			// MetaData.IsDefined does not look into arrays of tables.
			if _, inList := comments[f.key]; !md.IsDefined(strings.Split(f.key, ".")...) && !(f.list && inList) {
				t.Fatalf("%s is not set in %s", f.key, examplePath)
			}
			doc := comments[f.key]
			wants := []string{"Env: " + f.env + ".", "Default: "}
			if f.list {
				wants = []string{"Default: "}
			}
			for _, want := range wants {
				if !strings.Contains(doc, want) {
					t.Errorf("comment above %s lacks %q; got:\n%s", f.key, want, doc)
				}
			}
		})
	}
}

func TestValidateSSO(t *testing.T) {
	t.Parallel()
	good := SSOProvider{ID: "idp.one", Name: "One", Issuer: "https://id.example.org/realm", ClientID: "spelt", ClientSecret: "hunter2"}
	tests := []struct {
		name      string
		providers func() []SSOProvider
		want      []string
	}{
		{"good", func() []SSOProvider { return []SSOProvider{good} }, nil},
		{"http issuer allowed for tests", func() []SSOProvider {
			p := good
			p.Issuer, p.AllowInsecureIssuer = "http://127.0.0.1:9999", true
			return []SSOProvider{p}
		}, nil},
		{"everything wrong, secret hidden", func() []SSOProvider {
			return []SSOProvider{{ID: "bad id!", Issuer: "http://id.example.org", ClientSecret: "hunter2", Scopes: []string{"profile"}}}
		}, []string{
			`sso.providers[0].id: "bad id!" is not 1 to 255 characters of A-Z, a-z, 0-9, "-", ".", "_" and "~"`,
			`sso.providers[0].name: must not be empty`,
			`sso.providers[0].issuer: "http://id.example.org" is not an https URL without query or fragment (http needs allow_insecure_issuer)`,
			`sso.providers[0].client_id: must not be empty`,
			`sso.providers[0].scopes: ["profile"] lacks "openid"`,
		}},
		{"duplicate id, issuer with query", func() []SSOProvider {
			p := good
			p.Issuer = "https://id.example.org/?x=1"
			return []SSOProvider{good, p}
		}, []string{
			`sso.providers[1].id: "idp.one" is used by another provider`,
			`sso.providers[1].issuer: "https://id.example.org/?x=1" is not an https URL without query or fragment (http needs allow_insecure_issuer)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Defaults()
			c.SSO.Providers = tt.providers()
			got := errorLines(c.Validate())
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
			for _, line := range got {
				if strings.Contains(line, "hunter2") {
					t.Errorf("error echoes the client secret: %s", line)
				}
			}
		})
	}
}

func TestSSOProviderDefaults(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
[sso]
allow_private_addresses = true
[[sso.providers]]
id = "a"
name = "A"
issuer = "https://a.example"
client_id = "c"
[[sso.providers]]
id = "b"
name = "B"
issuer = "https://b.example"
client_id = "c"
scopes = ["openid"]
localpart_claim = "email"
display_name_claim = "nickname"
`)
	c, err := load(path, missing(t), mapEnv(map[string]string{"SPELT_SSO_ALLOW_PRIVATE_ADDRESSES": "false"}))
	if err != nil {
		t.Fatal(err)
	}
	want := SSO{AllowPrivateAddresses: false, Providers: []SSOProvider{
		{ID: "a", Name: "A", Issuer: "https://a.example", ClientID: "c", Scopes: []string{"openid", "profile", "email"},
			LocalpartClaim: "preferred_username", DisplayNameClaim: "name"},
		{ID: "b", Name: "B", Issuer: "https://b.example", ClientID: "c", Scopes: []string{"openid"},
			LocalpartClaim: "email", DisplayNameClaim: "nickname"},
	}}
	if !reflect.DeepEqual(c.SSO, want) {
		t.Errorf("sso = %+v\nwant %+v", c.SSO, want)
	}
}
