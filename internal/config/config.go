package config

import (
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// EnvPrefix starts the name of every environment variable read by [Load].
const EnvPrefix = "SPELT_"

// EnvConfigPath names the environment variable holding the config file path
// that [Load] uses when it is given no path.
const EnvConfigPath = EnvPrefix + "CONFIG"

// DefaultPath is the file [Load] reads, relative to the working directory,
// when it is given no path and EnvConfigPath is unset. Its absence is not an
// error.
const DefaultPath = "spelt.toml"

// Config is Spelt's whole configuration. The toml tags are the key names
// operators write, in the file and (upper-cased, prefixed) in the environment;
// they are a contract. Obtain one from [Load] or [Defaults].
type Config struct {
	// ServerName is the Matrix server name, the part after ":" in user and
	// room IDs. It cannot change once users exist.
	ServerName string `toml:"server_name"`
	// PublicBaseURL is the absolute http(s) URL clients reach the client API
	// at. [Load] always returns it non-empty and ending in "/": when unset it
	// is derived from Listen.Client, with an unspecified host replaced by the
	// server name's host.
	PublicBaseURL string `toml:"public_baseurl"`
	// DataDir holds the signing key and the embedded PostgreSQL cluster.
	DataDir string `toml:"data_dir"`

	Database     Database     `toml:"database"`
	Listen       Listen       `toml:"listen"`
	Registration Registration `toml:"registration"`
	RateLimits   RateLimits   `toml:"rate_limits"`
	Log          Log          `toml:"log"`
	EventLog     EventLog     `toml:"eventlog"`
	HTTP         HTTP         `toml:"http"`
	Auth         Auth         `toml:"auth"`
	Support      Support      `toml:"support"`
	Terms        Terms        `toml:"terms"`
	Email        Email        `toml:"email"`
	SSO          SSO          `toml:"sso"`
	Rooms        Rooms        `toml:"rooms"`
	Presence     Presence     `toml:"presence"`
	Identity     Identity     `toml:"identity"`
	Appservices  Appservices  `toml:"appservices"`
}

// Appservices is the [appservices] section: the application services' registration
// files (spec: application service API, "Registration").
type Appservices struct {
	// RegistrationFiles are the paths of the registration files (YAML); none by
	// default. From the environment, a comma-separated list.
	RegistrationFiles []string `toml:"registration_files"`
}

// Identity is the [identity] section: the identity servers users may bind their 3PIDs
// with (spec: client-server API, "Adding Account Administrative Contact Information").
type Identity struct {
	// TrustedServers are the identity servers' names (host or host:port); none by
	// default, and binding then answers M_SERVER_NOT_TRUSTED. From the environment,
	// a comma-separated list.
	TrustedServers []string `toml:"trusted_servers"`
	// AllowPrivateAddresses lets Spelt reach identity servers on loopback, private
	// and link-local addresses; off, such connections are refused.
	AllowPrivateAddresses bool `toml:"allow_private_addresses"`
	// AllowHTTP talks to identity servers over plain http://, for tests only.
	AllowHTTP bool `toml:"allow_http"`
}

// Presence is the [presence] section.
type Presence struct {
	// Enabled turns presence on; off, presence updates are accepted and forgotten and
	// everyone appears offline.
	Enabled bool `toml:"enabled"`
}

// Rooms is the [rooms] section.
type Rooms struct {
	// DefaultVersion is the room version of rooms created without one, "1" to "11".
	DefaultVersion string `toml:"default_version"`
}

// Database is the [database] section.
type Database struct {
	// URL is a postgres:// or postgresql:// connection URL. Empty means Spelt
	// runs an embedded PostgreSQL cluster in [Config.PostgresDir]. It may hold
	// a password: never log it.
	URL string `toml:"url"`
	// MaxConns caps the connection pool (pgxpool.Config.MaxConns), 1..1000.
	MaxConns int32 `toml:"max_conns"`
}

// Listen is the [listen] section: host:port addresses to bind. An empty host
// binds every interface; port 0 picks a free port.
type Listen struct {
	// Client is the client-server API address.
	Client string `toml:"client"`
	// Federation is the server-server API address.
	Federation string `toml:"federation"`
}

// Registration is the [registration] section.
type Registration struct {
	// Enabled allows open registration through the client API.
	Enabled bool `toml:"enabled"`
	// SharedSecret enables shared-secret (admin) registration when non-empty.
	// Never log it.
	SharedSecret string `toml:"shared_secret"`
	// RequireToken makes client registration require a registration token.
	RequireToken bool `toml:"require_token"`
	// Guests allows guest accounts (POST /register?kind=guest).
	Guests bool `toml:"guests"`
	// RequireEmail makes client registration prove an e-mail address
	// (m.login.email.identity), which becomes the account's 3PID. Needs
	// [email] smtp_host.
	RequireEmail bool `toml:"require_email"`
}

// RateLimits is the [rate_limits] section: token buckets per client, refilled
// at the given rate per second up to the given burst.
type RateLimits struct {
	// Enabled turns all rate limiting on or off.
	Enabled bool `toml:"enabled"`
	// LoginPerSecond is the refill rate of the login bucket, > 0.
	LoginPerSecond float64 `toml:"login_per_second"`
	// LoginBurst is the size of the login bucket, >= 1.
	LoginBurst int `toml:"login_burst"`
	// RegisterPerSecond is the refill rate of the registration bucket, > 0.
	RegisterPerSecond float64 `toml:"register_per_second"`
	// RegisterBurst is the size of the registration bucket, >= 1.
	RegisterBurst int `toml:"register_burst"`
}

// Log is the log table of the TOML file (keys log.level, log.format).
type Log struct {
	// Level is one of debug, info, warn, error; see [Config.SlogLevel].
	Level string `toml:"level"`
	// Format is text or json (slog.TextHandler or slog.JSONHandler).
	Format string `toml:"format"`
}

// EventLog is the [eventlog] section.
type EventLog struct {
	// SealInterval is how often the event log is sealed, > 0.
	SealInterval Duration `toml:"seal_interval"`
}

// HTTP is the [http] section.
type HTTP struct {
	// MaxBodyBytes caps JSON API request bodies (http.MaxBytesReader), >= 1024.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
}

// Auth is the [auth] section.
type Auth struct {
	// AccessTokenLifetime is how long an access token stays valid; 0 means
	// tokens do not expire.
	AccessTokenLifetime Duration `toml:"access_token_lifetime"`
	// RefreshableAccessTokenLifetime is how long an access token issued with a
	// refresh token stays valid, > 0.
	RefreshableAccessTokenLifetime Duration `toml:"refreshable_access_token_lifetime"`
}

// Support is the [support] section: what GET /.well-known/matrix/support
// publishes. With every key empty that endpoint answers 404, as the spec asks.
type Support struct {
	// Page is the URL of a page with support information.
	Page string `toml:"page"`
	// AdminMatrixID is the Matrix ID of the server's administrator.
	AdminMatrixID string `toml:"admin_matrix_id"`
	// AdminEmail is the e-mail address of the server's administrator.
	AdminEmail string `toml:"admin_email"`
}

// Terms is the [terms] section: a policy users accept when they register (the
// m.login.terms stage of user-interactive authentication). Empty URL: none.
type Terms struct {
	// Name is the policy's name as clients show it.
	Name string `toml:"name"`
	// Version identifies the text users accept; change it with the text.
	Version string `toml:"version"`
	// URL is where the policy is published (absolute http(s) URL).
	URL string `toml:"url"`
}

// Email is the [email] section: the SMTP server Spelt sends e-mail through
// (3PID validation tokens). With SMTPHost empty Spelt sends none, and
// answers requests to validate e-mail addresses with
// M_THREEPID_MEDIUM_NOT_SUPPORTED.
type Email struct {
	// SMTPHost is the SMTP server's host name or address; empty turns e-mail
	// off.
	SMTPHost string `toml:"smtp_host"`
	// SMTPPort is its port, 1..65535; 465 means implicit TLS (SMTPS), any
	// other port STARTTLS.
	SMTPPort int `toml:"smtp_port"`
	// SMTPUser and SMTPPassword authenticate to the server when SMTPUser is
	// not empty. Never log the password.
	SMTPUser     string `toml:"smtp_user"`
	SMTPPassword string `toml:"smtp_password"`
	// From is the sender address of Spelt's mail, "addr@example.org" or
	// "Name <addr@example.org>"; required with SMTPHost.
	From string `toml:"from"`
	// RequireTLS refuses to send mail over a connection without TLS.
	RequireTLS bool `toml:"require_tls"`
	// TokenLifetime is how long a mailed validation token works, > 0.
	TokenLifetime Duration `toml:"token_lifetime"`
}

// SSO is the [sso] section: single sign-on with OpenID Connect providers, each
// an [[sso.providers]] table.
type SSO struct {
	// AllowPrivateAddresses lets Spelt reach identity providers on loopback,
	// private and link-local addresses; off, such connections are refused.
	AllowPrivateAddresses bool `toml:"allow_private_addresses"`
	// Providers are the OpenID Connect providers, none by default. They
	// cannot be set from the environment.
	Providers []SSOProvider `toml:"providers"`
}

// SSOProvider is one [[sso.providers]] table.
type SSOProvider struct {
	// ID identifies the provider in the m.login.sso flow (idpId): 1 to 255
	// characters of A-Z, a-z, 0-9, "-", ".", "_" and "~", unique.
	ID string `toml:"id"`
	// Name is shown to users ("Log in with <name>").
	Name string `toml:"name"`
	// Issuer is the provider's issuer URL; its metadata is read from
	// <issuer>/.well-known/openid-configuration. https unless
	// AllowInsecureIssuer.
	Issuer string `toml:"issuer"`
	// ClientID and ClientSecret are Spelt's credentials at the provider.
	// Never log the secret.
	ClientID     string `toml:"client_id"`
	ClientSecret string `toml:"client_secret"`
	// Scopes are requested at the provider; they must include "openid".
	// Empty means openid, profile and email.
	Scopes []string `toml:"scopes"`
	// LocalpartClaim is the claim a new account's localpart is made from;
	// empty means preferred_username.
	LocalpartClaim string `toml:"localpart_claim"`
	// DisplayNameClaim is the claim a new account's display name comes from;
	// empty means name.
	DisplayNameClaim string `toml:"display_name_claim"`
	// AllowExistingUsers lets an identity's first login whose localpart claim names
	// an existing account log in to that account, linking the identity to it, instead
	// of creating a new numbered account (Synapse's allow_existing_users). Enable it
	// only for a provider trusted to own those usernames: whoever it says is "bob"
	// gets @bob's account.
	AllowExistingUsers bool `toml:"allow_existing_users"`
	// AllowInsecureIssuer accepts an http:// issuer, for tests only.
	AllowInsecureIssuer bool `toml:"allow_insecure_issuer"`
}

// Defaults of an [[sso.providers]] table's keys.
var (
	DefaultSSOScopes           = []string{"openid", "profile", "email"}
	DefaultSSOLocalpartClaim   = "preferred_username"
	DefaultSSODisplayNameClaim = "name"
)

// WithDefaults returns p with its empty keys set to their defaults.
func (p SSOProvider) WithDefaults() SSOProvider {
	if len(p.Scopes) == 0 {
		p.Scopes = slices.Clone(DefaultSSOScopes)
	}
	if p.LocalpartClaim == "" {
		p.LocalpartClaim = DefaultSSOLocalpartClaim
	}
	if p.DisplayNameClaim == "" {
		p.DisplayNameClaim = DefaultSSODisplayNameClaim
	}
	return p
}

// Duration is a time.Duration written as a Go duration string such as "10s"
// or "1h30m", in TOML and in the environment.
type Duration struct {
	time.Duration
}

// UnmarshalText parses a Go duration string such as "10s".
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"10s\"", text)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string such as "10s".
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// Defaults returns the built-in configuration: what [Load] returns when there
// is no file and no SPELT_* variable. Its PublicBaseURL is already derived.
func Defaults() Config {
	return defaults().resolved()
}

// defaults is the configuration before derivation: PublicBaseURL is empty,
// meaning "derive from Listen.Client".
func defaults() Config {
	return Config{
		ServerName:    "localhost",
		PublicBaseURL: "",
		DataDir:       "./data",
		Database: Database{
			URL:      "",
			MaxConns: 20,
		},
		Listen: Listen{
			Client:     "127.0.0.1:8008",
			Federation: ":8448",
		},
		Registration: Registration{
			Enabled:      false,
			SharedSecret: "",
			RequireToken: false,
			Guests:       false,
			RequireEmail: false,
		},
		RateLimits: RateLimits{
			Enabled:           true,
			LoginPerSecond:    0.5,
			LoginBurst:        5,
			RegisterPerSecond: 0.17,
			RegisterBurst:     3,
		},
		Log: Log{
			Level:  "info",
			Format: "text",
		},
		EventLog: EventLog{
			SealInterval: Duration{10 * time.Second},
		},
		HTTP: HTTP{
			MaxBodyBytes: 65536,
		},
		Auth: Auth{
			AccessTokenLifetime:            Duration{0},
			RefreshableAccessTokenLifetime: Duration{5 * time.Minute},
		},
		Email: Email{
			SMTPHost:      "",
			SMTPPort:      587,
			SMTPUser:      "",
			SMTPPassword:  "",
			From:          "",
			RequireTLS:    true,
			TokenLifetime: Duration{time.Hour},
		},
		Rooms: Rooms{
			DefaultVersion: "10",
		},
		Presence: Presence{
			Enabled: true,
		},
		Identity:    Identity{TrustedServers: []string{}},
		Appservices: Appservices{RegistrationFiles: []string{}},
	}
}

// Load builds the configuration: [Defaults], overlaid by the TOML file, then
// by SPELT_* environment variables, then validated.
//
// The file is path when non-empty, else the value of SPELT_CONFIG when set,
// else ./spelt.toml when it exists, else none. A file named by path or
// SPELT_CONFIG must exist. env looks variables up like [os.LookupEnv]; nil
// means an empty environment.
//
// Unknown keys, unparsable environment values and invalid values are all
// reported together, one error per problem, joined with [errors.Join].
func Load(path string, env func(string) (string, bool)) (Config, error) {
	return load(path, DefaultPath, env)
}

// load is [Load] with the fallback file name as a parameter, so tests can
// exercise it without changing the working directory.
func load(path, fallback string, env func(string) (string, bool)) (Config, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	if path == "" {
		if v, ok := env(EnvConfigPath); ok && v != "" {
			path = v
		} else if _, err := os.Stat(fallback); err == nil {
			path = fallback
		} else if !errors.Is(err, fs.ErrNotExist) {
			return Config{}, fmt.Errorf("look for config file: %w", err)
		}
	}

	cfg := defaults()
	var problems []error
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		md, err := toml.Decode(string(data), &cfg)
		if err != nil {
			return Config{}, fmt.Errorf("parse config %s: %w", path, err)
		}
		for _, key := range md.Undecoded() {
			problems = append(problems, fmt.Errorf("unknown key %q in %s", key.String(), path))
		}
	}
	problems = append(problems, cfg.applyEnv(env)...)
	problems = append(problems, cfg.problems()...)
	if len(problems) > 0 {
		return Config{}, errors.Join(problems...)
	}
	return cfg.resolved(), nil
}

// field is one leaf key of [Config], found by [Config.fields].
type field struct {
	key   string        // as written in TOML, e.g. "listen.client"
	env   string        // e.g. "SPELT_LISTEN_CLIENT"
	value reflect.Value // settable
	// list is set for the keys of a list of tables (e.g. "sso.providers.id"):
	// they have no environment variable, and value is a throwaway.
	list bool
}

// fields lists every leaf key of c, in struct order, from the toml tags.
// Nested structs other than text unmarshalers (such as [Duration]) are
// sections.
func (c *Config) fields() []field {
	textUnmarshaler := reflect.TypeFor[encoding.TextUnmarshaler]()
	var out []field
	var walk func(v reflect.Value, prefix []string)
	walk = func(v reflect.Value, prefix []string) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
			if !sf.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			path := append(append([]string(nil), prefix...), name)
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct && !reflect.PointerTo(fv.Type()).Implements(textUnmarshaler) {
				walk(fv, path)
				continue
			}
			if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct {
				// A list of tables ([[sso.providers]]): its keys, not overridable.
				n := len(out)
				walk(reflect.New(fv.Type().Elem()).Elem(), path)
				for j := n; j < len(out); j++ {
					out[j].list, out[j].env = true, ""
				}
				continue
			}
			out = append(out, field{
				key:   strings.Join(path, "."),
				env:   EnvPrefix + strings.ToUpper(strings.Join(path, "_")),
				value: fv,
			})
		}
	}
	walk(reflect.ValueOf(c).Elem(), nil)
	return out
}

// applyEnv overrides every key whose SPELT_* variable is set, returning one
// error per unparsable value. A variable set to the empty string overrides
// too (clearing a string key).
func (c *Config) applyEnv(env func(string) (string, bool)) []error {
	var errs []error
	for _, f := range c.fields() {
		if f.list {
			continue
		}
		raw, ok := env(f.env)
		if !ok {
			continue
		}
		if err := setFromString(f.value, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.env, err))
		}
	}
	return errs
}

// setFromString parses raw into v according to v's type.
func setFromString(v reflect.Value, raw string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(raw))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("environment override of %s is not supported", v.Type())
		}
		// A comma-separated list; empty is the empty list.
		var items []string
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items))
	case reflect.Bool:
		switch strings.ToLower(raw) {
		case "true", "1":
			v.SetBool(true)
		case "false", "0":
			v.SetBool(false)
		default:
			return fmt.Errorf("%q is not a boolean (true, false, 1, 0)", raw)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, v.Type().Bits())
		if errors.Is(err, strconv.ErrRange) {
			return fmt.Errorf("%q is out of range", raw)
		}
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, v.Type().Bits())
		if errors.Is(err, strconv.ErrRange) {
			return fmt.Errorf("%q is out of range", raw)
		}
		if err != nil {
			return fmt.Errorf("%q is not a non-negative integer", raw)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(raw, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		v.SetFloat(n)
	default:
		// Reached only if a field of an unsupported type is added to Config;
		// TestEnvOverridesEveryKey catches that.
		return fmt.Errorf("environment override of %s is not supported", v.Type())
	}
	return nil
}

// Validate checks every key and returns all problems at once, joined with
// [errors.Join], one per bad key, each starting with the key as written in
// TOML (e.g. `log.level: "verbose" is not one of debug, info, warn, error`).
// Secrets (database.url, registration.shared_secret, email.smtp_password) are
// never echoed.
func (c Config) Validate() error {
	return errors.Join(c.problems()...)
}

func (c Config) problems() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	if !ValidServerName(c.ServerName) {
		bad("server_name", "%q is not a valid Matrix server name", c.ServerName)
	}
	if c.PublicBaseURL != "" {
		if msg := checkBaseURL(c.PublicBaseURL); msg != "" {
			bad("public_baseurl", "%q %s", c.PublicBaseURL, msg)
		}
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	for _, name := range c.Identity.TrustedServers {
		if !ValidServerName(name) {
			bad("identity.trusted_servers", "%q is not a valid server name", name)
		}
	}
	if !slices.Contains([]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}, c.Rooms.DefaultVersion) {
		bad("rooms.default_version", "%q is not a room version Spelt supports (1 to 11)", c.Rooms.DefaultVersion)
	}

	if c.Database.URL != "" &&
		!strings.HasPrefix(c.Database.URL, "postgres://") &&
		!strings.HasPrefix(c.Database.URL, "postgresql://") {
		bad("database.url", "must be empty or start with postgres:// or postgresql://")
	}
	if c.Database.MaxConns < 1 || c.Database.MaxConns > 1000 {
		bad("database.max_conns", "%d is not between 1 and 1000", c.Database.MaxConns)
	}

	if msg := checkListen(c.Listen.Client); msg != "" {
		bad("listen.client", "%q %s", c.Listen.Client, msg)
	}
	if msg := checkListen(c.Listen.Federation); msg != "" {
		bad("listen.federation", "%q %s", c.Listen.Federation, msg)
	}

	positive := func(key string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			bad(key, "%v is not a positive number", v)
		}
	}
	atLeastOne := func(key string, v int) {
		if v < 1 {
			bad(key, "%d is less than 1", v)
		}
	}
	positive("rate_limits.login_per_second", c.RateLimits.LoginPerSecond)
	atLeastOne("rate_limits.login_burst", c.RateLimits.LoginBurst)
	positive("rate_limits.register_per_second", c.RateLimits.RegisterPerSecond)
	atLeastOne("rate_limits.register_burst", c.RateLimits.RegisterBurst)

	logLevels := []string{"debug", "info", "warn", "error"}
	if !slices.Contains(logLevels, c.Log.Level) {
		bad("log.level", "%q is not one of %s", c.Log.Level, strings.Join(logLevels, ", "))
	}
	logFormats := []string{"text", "json"}
	if !slices.Contains(logFormats, c.Log.Format) {
		bad("log.format", "%q is not one of %s", c.Log.Format, strings.Join(logFormats, ", "))
	}

	if c.EventLog.SealInterval.Duration <= 0 {
		bad("eventlog.seal_interval", "%q is not a positive duration", c.EventLog.SealInterval)
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		bad("http.max_body_bytes", "%d is less than 1024", c.HTTP.MaxBodyBytes)
	}
	if c.Auth.AccessTokenLifetime.Duration < 0 {
		bad("auth.access_token_lifetime", "%q is negative", c.Auth.AccessTokenLifetime)
	}
	if c.Auth.RefreshableAccessTokenLifetime.Duration <= 0 {
		bad("auth.refreshable_access_token_lifetime", "%q is not a positive duration", c.Auth.RefreshableAccessTokenLifetime)
	}
	if c.Terms.URL != "" {
		if u, err := url.Parse(c.Terms.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("terms.url", "%q is not an absolute http(s) URL", c.Terms.URL)
		}
		if c.Terms.Version == "" {
			bad("terms.version", "must be set when terms.url is")
		}
		if c.Terms.Name == "" {
			bad("terms.name", "must be set when terms.url is")
		}
	}
	if c.Support.Page != "" {
		if u, err := url.Parse(c.Support.Page); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("support.page", "%q is not an absolute http(s) URL", c.Support.Page)
		}
	}
	if c.Support.AdminMatrixID != "" {
		if lp, _, ok := strings.Cut(strings.TrimPrefix(c.Support.AdminMatrixID, "@"), ":"); !ok || lp == "" || !strings.HasPrefix(c.Support.AdminMatrixID, "@") {
			bad("support.admin_matrix_id", "%q is not a Matrix user ID", c.Support.AdminMatrixID)
		}
	}
	if c.Support.AdminEmail != "" && !strings.Contains(c.Support.AdminEmail, "@") {
		bad("support.admin_email", "%q is not an e-mail address", c.Support.AdminEmail)
	}
	if c.Email.SMTPPort < 1 || c.Email.SMTPPort > 65535 {
		bad("email.smtp_port", "%d is not between 1 and 65535", c.Email.SMTPPort)
	}
	if c.Email.SMTPHost != "" {
		if strings.ContainsAny(c.Email.SMTPHost, " /:@") && !strings.HasPrefix(c.Email.SMTPHost, "[") {
			bad("email.smtp_host", "%q is not a host name or address", c.Email.SMTPHost)
		}
		if c.Email.From == "" {
			bad("email.from", "must be set when email.smtp_host is")
		}
	}
	if c.Email.From != "" {
		if _, err := mail.ParseAddress(c.Email.From); err != nil {
			bad("email.from", "%q is not an e-mail address", c.Email.From)
		}
	}
	if c.Email.SMTPUser == "" && c.Email.SMTPPassword != "" {
		bad("email.smtp_password", "is set but email.smtp_user is empty")
	}
	if c.Email.TokenLifetime.Duration <= 0 {
		bad("email.token_lifetime", "%q is not a positive duration", c.Email.TokenLifetime)
	}
	if c.Registration.RequireEmail && c.Email.SMTPHost == "" {
		bad("registration.require_email", "needs email.smtp_host: Spelt cannot mail validation tokens without it")
	}
	errs = append(errs, c.SSO.problems()...)
	return errs
}

// problems checks the [[sso.providers]] tables; a provider is named by its
// position, sso.providers[i]. The client secret is never echoed.
func (s SSO) problems() []error {
	var errs []error
	ids := map[string]bool{}
	for i, p := range s.Providers {
		p = p.WithDefaults()
		bad := func(key, format string, args ...any) {
			errs = append(errs, fmt.Errorf("sso.providers[%d].%s: %s", i, key, fmt.Sprintf(format, args...)))
		}
		if !validOpaqueID(p.ID) {
			bad("id", "%q is not 1 to 255 characters of A-Z, a-z, 0-9, \"-\", \".\", \"_\" and \"~\"", p.ID)
		} else if ids[p.ID] {
			bad("id", "%q is used by another provider", p.ID)
		}
		ids[p.ID] = true
		if strings.TrimSpace(p.Name) == "" {
			bad("name", "must not be empty")
		}
		if u, err := url.Parse(p.Issuer); err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
			(u.Scheme != "https" && !(u.Scheme == "http" && p.AllowInsecureIssuer)) {
			bad("issuer", "%q is not an https URL without query or fragment (http needs allow_insecure_issuer)", p.Issuer)
		}
		if p.ClientID == "" {
			bad("client_id", "must not be empty")
		}
		if !slices.Contains(p.Scopes, "openid") {
			bad("scopes", "%q lacks \"openid\"", p.Scopes)
		}
	}
	return errs
}

// validOpaqueID reports whether s follows the spec's opaque identifier grammar
// (appendices, "Opaque Identifiers"): 1 to 255 characters of [A-Za-z0-9._~-].
func validOpaqueID(s string) bool {
	if len(s) < 1 || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-._~", r)) {
			return false
		}
	}
	return true
}

// checkListen returns why addr is not host:port with a numeric port
// 0..65535, or "" if it is. The host may be empty.
func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "is not host:port"
	}
	if !validPort(port, 0) {
		return "is not host:port with a port 0..65535"
	}
	return ""
}

// validPort reports whether port is 1 to 5 ASCII digits with a value in
// min..65535.
func validPort(port string, min int) bool {
	if len(port) < 1 || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
		return false
	}
	n, _ := strconv.Atoi(port)
	return n >= min && n <= 65535
}

// checkBaseURL returns why s is not a usable public base URL, or "".
func checkBaseURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "is not an absolute http(s) URL"
	}
	if u.User != nil {
		return "must not contain user info"
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "must not have a query or fragment"
	}
	return ""
}

// ValidServerName reports whether name matches the Matrix server name grammar
// (https://spec.matrix.org/v1.16/appendices/#server-name):
//
//	server_name = hostname [ ":" port ]
//	port        = 1*5DIGIT
//	hostname    = IPv4address / "[" IPv6address "]" / dns-name
//
// It is a little stricter than the grammar: the port must be 1..65535, an
// IPv6 literal must parse as one, and a DNS name must have non-empty labels
// of at most 63 characters (so no leading, trailing or doubled dots).
func ValidServerName(name string) bool {
	host, port, hasPort := splitServerName(name)
	if hasPort && !validPort(port, 1) {
		return false
	}
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") || len(host) < 4 || len(host) > 47 {
			return false
		}
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		return err == nil && addr.Is6() && addr.Zone() == ""
	}
	// IPv4 dotted quads are also dns-names under the grammar, so one check
	// covers both.
	if host == "" || len(host) > 255 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// splitServerName splits a server name into its hostname (brackets kept for
// IPv6) and port. hasPort reports whether a ":" port part was present.
func splitServerName(name string) (host, port string, hasPort bool) {
	if strings.HasPrefix(name, "[") {
		end := strings.IndexByte(name, ']')
		if end < 0 {
			return name, "", false
		}
		host, rest := name[:end+1], name[end+1:]
		if rest == "" {
			return host, "", false
		}
		if rest[0] != ':' {
			// Trailing junk after the literal: keep it in the host so the
			// caller rejects it.
			return name, "", false
		}
		return host, rest[1:], true
	}
	host, port, hasPort = strings.Cut(name, ":")
	return host, port, hasPort
}

// resolved returns c with PublicBaseURL derived when empty and ending in "/".
// It expects a valid c.
func (c Config) resolved() Config {
	if c.PublicBaseURL == "" {
		host, port, err := net.SplitHostPort(c.Listen.Client)
		if err == nil {
			if addr, err := netip.ParseAddr(host); host == "" || (err == nil && addr.IsUnspecified()) {
				host, _, _ = splitServerName(c.ServerName)
				host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
			}
			c.PublicBaseURL = "http://" + net.JoinHostPort(host, port)
		}
	}
	if c.PublicBaseURL != "" && !strings.HasSuffix(c.PublicBaseURL, "/") {
		c.PublicBaseURL += "/"
	}
	if c.SSO.Providers != nil {
		providers := make([]SSOProvider, len(c.SSO.Providers))
		for i, p := range c.SSO.Providers {
			providers[i] = p.WithDefaults()
		}
		c.SSO.Providers = providers
	}
	return c
}

// SigningKeyPath is the server's ed25519 signing key file, data_dir/signing.key.
func (c Config) SigningKeyPath() string {
	return filepath.Join(c.DataDir, "signing.key")
}

// PostgresDir is the embedded PostgreSQL cluster directory, data_dir/postgres,
// used when database.url is empty.
func (c Config) PostgresDir() string {
	return filepath.Join(c.DataDir, "postgres")
}

// SlogLevel maps log.level to a slog.Level; anything unrecognised (which
// [Config.Validate] rejects) maps to slog.LevelInfo.
func (c Config) SlogLevel() slog.Level {
	switch c.Log.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
