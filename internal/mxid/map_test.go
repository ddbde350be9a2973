package mxid

import "testing"

func TestMapLocalpart(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice.Smith", "alice.smith"},
		{"test-user@127.0.0.1", "test-user=40127.0.0.1"},
		{"a=b", "a=3db"},
		{"#room", "=23room"},
		{"á", "=c3=a1"},
		{"with space", "with=20space"},
		{"_bridge", "_bridge"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MapLocalpart(tt.in); got != tt.want {
			t.Errorf("MapLocalpart(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := MapLocalpart(tt.in); got != "" && got != "_bridge" {
			if err := ValidateLocalpart(got, "example.org"); err != nil {
				t.Errorf("MapLocalpart(%q) = %q is not a valid localpart: %v", tt.in, got, err)
			}
		}
	}
}
