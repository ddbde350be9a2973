package commands

import (
	"errors"
	"testing"
)

func TestSSOLocalpart(t *testing.T) {
	t.Parallel()
	tests := []struct{ username, want string }{
		{"alice", "alice"},
		{"Alice.Smith", "alice.smith"},
		{"alice@example.org", "alice=40example.org"},
		{"", "user"},
		{"12345", "u12345"},
		{"_bridge", "u_bridge"},
		{"élise", "=c3=a9lise"},
		// 70 characters: cut to 64, not inside an escape.
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa#bbbbbb", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
	}
	for _, tt := range tests {
		if got := ssoLocalpart(tt.username, "example.org"); got != tt.want {
			t.Errorf("ssoLocalpart(%q) = %q, want %q", tt.username, got, tt.want)
		}
	}
}

func TestWithLoginToken(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://client.example/", "https://client.example/?loginToken=T"},
		{"https://client.example/cb?a=1&loginToken=old&loginToken=older", "https://client.example/cb?a=1&loginToken=T"},
		{"myapp://sso", "myapp://sso?loginToken=T"},
		{"https://client.example/#/room", "https://client.example/?loginToken=T#/room"},
	}
	for _, tt := range tests {
		if got := withLoginToken(tt.in, "T"); got != tt.want {
			t.Errorf("withLoginToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckRedirectURL(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"https://app.element.io/", "http://localhost:8080/cb?x=1", "io.element.android:/sso", "myapp://sso"} {
		if err := checkRedirectURL(ok); err != nil {
			t.Errorf("checkRedirectURL(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "relative/path", "/absolute/path", "javascript:alert(1)", "JavaScript:alert(1)",
		"data:text/html,hi", string(make([]byte, 3000))} {
		var br *BadRequestError
		if err := checkRedirectURL(bad); !errors.As(err, &br) {
			t.Errorf("checkRedirectURL(%.20q) = %v, want a bad request", bad, err)
		}
	}
}
