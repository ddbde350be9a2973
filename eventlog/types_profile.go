package eventlog

// TypeProfileChanged: a user set or removed a profile field (spec: client-server API,
// "Profiles"). An account's display name starts as its localpart (as Synapse does),
// with no event of its own: the registration implies it.
const TypeProfileChanged = "profile.changed.v1"

func init() { Types = append(Types, TypeProfileChanged) }

// ProfileStream is the stream of a user's profile.
func ProfileStream(userID string) string { return "profile:" + userID }

// ProfileChanged sets Field ("displayname" or "avatar_url") to Value; nil removes it.
type ProfileChanged struct {
	UserID string  `json:"user_id"`
	Field  string  `json:"field"`
	Value  *string `json:"value"`
}
