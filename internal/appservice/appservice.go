// Package appservice reads application service registrations (spec: application
// service API, "Registration") and answers what the client-server API needs of them:
// which appservice an access token is, and which user IDs and aliases an appservice
// owns, exclusively or not.
package appservice

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// Registration is one application service's registration file.
type Registration struct {
	ID              string     `yaml:"id"`
	URL             *string    `yaml:"url"`
	ASToken         string     `yaml:"as_token"`
	HSToken         string     `yaml:"hs_token"`
	SenderLocalpart string     `yaml:"sender_localpart"`
	Namespaces      Namespaces `yaml:"namespaces"`
	RateLimited     *bool      `yaml:"rate_limited"`
	Protocols       []string   `yaml:"protocols"`

	tokenHash [32]byte
}

// Namespaces are the user IDs, aliases and room IDs an appservice is interested in.
type Namespaces struct {
	Users   []Namespace `yaml:"users"`
	Aliases []Namespace `yaml:"aliases"`
	Rooms   []Namespace `yaml:"rooms"`
}

// Namespace is one regular expression, exclusive or not.
type Namespace struct {
	Exclusive bool   `yaml:"exclusive"`
	Regex     string `yaml:"regex"`
	re        *regexp.Regexp
}

// matches reports whether s matches the namespace. Like Synapse, the expression is
// anchored at the start only.
func (n Namespace) matches(s string) bool { return n.re != nil && n.re.MatchString(s) }

// Sender is the user ID the appservice acts as by default.
func (r *Registration) Sender(serverName string) string {
	return "@" + r.SenderLocalpart + ":" + serverName
}

// OwnsUser reports whether userID is the appservice's sender or in its user
// namespaces.
func (r *Registration) OwnsUser(userID, serverName string) bool {
	if userID == r.Sender(serverName) {
		return true
	}
	for _, n := range r.Namespaces.Users {
		if n.matches(userID) {
			return true
		}
	}
	return false
}

// Registry holds the registrations of the configured appservices.
type Registry struct {
	server string
	list   []*Registration
}

// Load reads registration files; serverName is the homeserver's name.
func Load(paths []string, serverName string) (*Registry, error) {
	reg := &Registry{server: serverName}
	ids, tokens := map[string]bool{}, map[string]bool{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("appservice registration: %w", err)
		}
		var r Registration
		if err := yaml.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("appservice registration %s: %w", p, err)
		}
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("appservice registration %s: %w", p, err)
		}
		if ids[r.ID] || tokens[r.ASToken] {
			return nil, fmt.Errorf("appservice registration %s: its id or as_token is another registration's", p)
		}
		ids[r.ID], tokens[r.ASToken] = true, true
		r.tokenHash = sha256.Sum256([]byte(r.ASToken))
		reg.list = append(reg.list, &r)
	}
	return reg, nil
}

func (r *Registration) check() error {
	switch {
	case r.ID == "":
		return errors.New("id is required")
	case r.ASToken == "" || r.HSToken == "":
		return errors.New("as_token and hs_token are required")
	case r.SenderLocalpart == "":
		return errors.New("sender_localpart is required")
	}
	for _, list := range []*[]Namespace{&r.Namespaces.Users, &r.Namespaces.Aliases, &r.Namespaces.Rooms} {
		for i := range *list {
			n := &(*list)[i]
			re, err := regexp.Compile("^(?:" + n.Regex + ")")
			if err != nil {
				return fmt.Errorf("namespace regex %q: %w", n.Regex, err)
			}
			n.re = re
		}
	}
	return nil
}

// Len is the number of registrations.
func (g *Registry) Len() int {
	if g == nil {
		return 0
	}
	return len(g.list)
}

// All returns the registrations.
func (g *Registry) All() []*Registration {
	if g == nil {
		return nil
	}
	return g.list
}

// ByID returns the appservice with this ID, or nil.
func (g *Registry) ByID(id string) *Registration {
	for _, r := range g.All() {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// ByToken returns the appservice whose as_token this is, or nil. Every registration
// is compared, in constant time, so the answer's timing tells nothing of the tokens.
func (g *Registry) ByToken(token string) *Registration {
	if g == nil {
		return nil
	}
	h := sha256.Sum256([]byte(token))
	var found *Registration
	for _, r := range g.list {
		if subtle.ConstantTimeCompare(h[:], r.tokenHash[:]) == 1 {
			found = r
		}
	}
	return found
}

// ExclusiveUser returns the appservice that has userID in an exclusive namespace,
// or nil.
func (g *Registry) ExclusiveUser(userID string) *Registration {
	if g == nil {
		return nil
	}
	for _, r := range g.list {
		if userID == r.Sender(g.server) {
			return r
		}
		for _, n := range r.Namespaces.Users {
			if n.Exclusive && n.matches(userID) {
				return r
			}
		}
	}
	return nil
}

// ExclusiveAlias returns the appservice that has alias in an exclusive namespace, or
// nil.
func (g *Registry) ExclusiveAlias(alias string) *Registration {
	if g == nil {
		return nil
	}
	for _, r := range g.list {
		for _, n := range r.Namespaces.Aliases {
			if n.Exclusive && n.matches(alias) {
				return r
			}
		}
	}
	return nil
}
