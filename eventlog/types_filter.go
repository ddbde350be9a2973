package eventlog

import "encoding/json"

// TypeFilterCreated: a user uploaded a filter (POST /user/{userId}/filter). Its stream
// is the user's filters stream, whose version numbers the filters.
const TypeFilterCreated = "user.filter_created.v1"

func init() { Types = append(Types, TypeFilterCreated) }

// FilterStream is the stream of a user's filters.
func FilterStream(userID string) string { return "filters:" + userID }

// FilterCreated carries a filter as the user uploaded it.
type FilterCreated struct {
	UserID   string          `json:"user_id"`
	FilterID string          `json:"filter_id"`
	Filter   json.RawMessage `json:"filter"`
}
