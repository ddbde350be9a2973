package spectest

import (
	"net/url"
	"strings"
)

// parseTemplate splits an absolute path template such as
// /_matrix/client/v3/profile/{userId}/displayname into segments.
func parseTemplate(template string) []segment {
	parts := strings.Split(strings.TrimPrefix(template, "/"), "/")
	segs := make([]segment, len(parts))
	for i, p := range parts {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			segs[i].param = p[1 : len(p)-1]
		} else {
			segs[i].literal = p
		}
	}
	return segs
}

// splitPath splits a request path into its segments, percent-decoding each
// one, so an escaped path ("%2F" inside a state key) keeps such a parameter
// in one segment. A query string, if any, is dropped.
func splitPath(p string) []string {
	p, _, _ = strings.Cut(p, "?")
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, part := range parts {
		// A path that was already decoded may hold a bare "%"; keep such
		// segments as they are.
		if u, err := url.PathUnescape(part); err == nil {
			parts[i] = u
		}
	}
	return parts
}

// How a template matched a path, best first.
const (
	matchExact = iota
	// matchStateKeyOmitted: the spec makes the trailing slash optional
	// when {stateKey} is empty (spec v1.13, PUT and GET
	// /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}),
	// so .../state/m.room.name is .../state/m.room.name/.
	matchStateKeyOmitted
	// matchGreedy: the template's last parameter took several segments, for
	// a path whose last parameter held an unescaped "/" (state keys, account
	// data types, media file names, room v1-v3 event IDs).
	matchGreedy
	noMatch
)

// match returns how segs matches the template of op.
func (op *operation) match(segs []string) int {
	t := op.segments
	last := len(t) - 1
	kind := matchExact
	switch {
	case len(segs) == len(t):
	case len(segs) == len(t)-1 && t[last].param == "stateKey":
		kind = matchStateKeyOmitted
	case len(segs) > len(t) && t[last].param != "":
		kind = matchGreedy
	default:
		return noMatch
	}
	for i, s := range t {
		if i >= len(segs) {
			break
		}
		if s.param == "" && s.literal != segs[i] {
			return noMatch
		}
	}
	return kind
}

// moreSpecific reports whether a's template beats b's for a path both match
// equally well: at the first position where one has a literal and the other
// a parameter, the literal wins.
func moreSpecific(a, b *operation) bool {
	for i := range min(len(a.segments), len(b.segments)) {
		al, bl := a.segments[i].param == "", b.segments[i].param == ""
		if al != bl {
			return al
		}
	}
	return len(a.segments) > len(b.segments)
}

// find returns the operations that serve method and path: usually one,
// several when the spec documents two forms of one endpoint (the two POST
// /_matrix/client/v3/rooms/{roomId}/invite operations), none when the path
// is not in the spec.
func (s *spec) find(method, path string) []*operation {
	if u, err := url.Parse(path); err == nil && u.Scheme != "" {
		path = u.EscapedPath()
	}
	segs := splitPath(path)
	method = strings.ToUpper(method)
	best := noMatch
	var found []*operation
	for _, op := range s.ops {
		if op.method != method {
			continue
		}
		kind := op.match(segs)
		switch {
		case kind == noMatch || kind > best:
			continue
		case kind < best:
			best, found = kind, nil
		}
		if len(found) > 0 {
			if moreSpecific(found[0], op) {
				continue
			}
			if moreSpecific(op, found[0]) {
				found = nil
			}
		}
		found = append(found, op)
	}
	return found
}
