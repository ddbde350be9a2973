// Package safedial makes outbound HTTP connections that refuse to reach private
// networks: loopback, private (RFC 1918, unique local), link-local, CGNAT, multicast and
// the other special-purpose ranges. Spelt fetches URLs that other people choose (an
// identity provider's discovery document, URL previews, push gateways); without the
// check they could make the server probe its own network (server-side request forgery).
//
// The check runs in net.Dialer.Control, that is after DNS resolution and for every
// address actually dialled, so a name that resolves to a private address, a DNS answer
// that changes between two lookups (rebinding) and a redirect to an internal host are
// all refused. It imports nothing of the project.
package safedial

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress is the error of a connection to an address that is not public.
var ErrForbiddenAddress = errors.New("address is not public")

// blocked lists special-purpose ranges (IANA special-purpose address registries) that
// netip's predicates do not cover.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use IPv4/IPv6 translation
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (Teredo, ORCHID...)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds an arbitrary IPv4 address
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
}

// nat64 is the well-known NAT64 prefix: the IPv4 address in its last 32 bits is checked.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Public reports whether addr is a public unicast address.
func Public(addr netip.Addr) bool {
	addr = addr.Unmap()
	if addr.Is6() && nat64.Contains(addr) {
		b := addr.As16()
		return Public(netip.AddrFrom4([4]byte(b[12:])))
	}
	if !addr.IsValid() || addr.Zone() != "" || addr.IsLoopback() || addr.IsPrivate() || addr.IsUnspecified() ||
		addr.IsLinkLocalUnicast() || addr.IsMulticast() || addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// Control is a net.Dialer.Control function that refuses any address that is not
// [Public]. address is the resolved "ip:port" about to be dialled.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s %s: %w", network, address, ErrForbiddenAddress)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("dial %s: %w", ap.Addr(), ErrForbiddenAddress)
	}
	return nil
}

// Dialer returns a dialer with a 10-second connect timeout that refuses non-public
// addresses unless allowPrivate (tests, or a deployment whose identity provider is on
// the internal network on purpose).
func Dialer(allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = Control
	}
	return d
}

// Client returns an HTTP client for URLs chosen by others: connections go through
// [Dialer], no proxy is used (a proxy from the environment would be dialled instead of
// the target, bypassing the check), each request is bounded by timeout, and at most 5
// redirects are followed (each one dialled through the check again).
func Client(allowPrivate bool, timeout time.Duration) *http.Client {
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           Dialer(allowPrivate).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          20,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		},
	}
}
