package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
)

// The shape of a filter (spec: client-server API, "Filtering"), for validation only:
// the filter is stored as uploaded.
type (
	eventFilterShape struct {
		Limit      *int      `json:"limit"`
		Types      *[]string `json:"types"`
		NotTypes   *[]string `json:"not_types"`
		Senders    *[]string `json:"senders"`
		NotSenders *[]string `json:"not_senders"`
	}
	roomEventFilterShape struct {
		eventFilterShape
		Rooms                     *[]string `json:"rooms"`
		NotRooms                  *[]string `json:"not_rooms"`
		ContainsURL               *bool     `json:"contains_url"`
		LazyLoadMembers           *bool     `json:"lazy_load_members"`
		IncludeRedundantMembers   *bool     `json:"include_redundant_members"`
		UnreadThreadNotifications *bool     `json:"unread_thread_notifications"`
	}
	roomFilterShape struct {
		Rooms        *[]string             `json:"rooms"`
		NotRooms     *[]string             `json:"not_rooms"`
		IncludeLeave *bool                 `json:"include_leave"`
		Ephemeral    *roomEventFilterShape `json:"ephemeral"`
		Timeline     *roomEventFilterShape `json:"timeline"`
		State        *roomEventFilterShape `json:"state"`
		AccountData  *roomEventFilterShape `json:"account_data"`
	}
	filterShape struct {
		EventFields *[]string         `json:"event_fields"`
		EventFormat *string           `json:"event_format"`
		Presence    *eventFilterShape `json:"presence"`
		AccountData *eventFilterShape `json:"account_data"`
		Room        *roomFilterShape  `json:"room"`
	}
)

// CheckFilter reports why raw is not a filter the spec allows, as a *BadJSONError;
// unknown keys are allowed (later spec versions add some).
func CheckFilter(raw json.RawMessage) error {
	var f filterShape
	if err := json.Unmarshal(raw, &f); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &BadJSONError{Reason: fmt.Sprintf("filter: %s has the wrong type", te.Field)}
		}
		return &BadJSONError{Reason: "filter: " + err.Error()}
	}
	if f.EventFormat != nil && *f.EventFormat != "client" && *f.EventFormat != "federation" {
		return &BadJSONError{Reason: "filter: event_format must be client or federation"}
	}
	limits := []*eventFilterShape{f.Presence, f.AccountData}
	if f.Room != nil {
		for _, r := range []*roomEventFilterShape{f.Room.Ephemeral, f.Room.Timeline, f.Room.State, f.Room.AccountData} {
			if r != nil {
				limits = append(limits, &r.eventFilterShape)
			}
		}
	}
	for _, l := range limits {
		if l != nil && l.Limit != nil && *l.Limit < 1 {
			return &BadJSONError{Reason: "filter: limit must be an integer greater than 0"}
		}
	}
	return nil
}

// CreateFilter stores a filter for userID and returns its ID: the number of filters
// the user uploaded before (Synapse's IDs), taken from the version of the user's filters
// stream, so that two uploads at once cannot get the same ID.
func (c *Commands) CreateFilter(ctx context.Context, meta Meta, userID string, filter json.RawMessage) (string, eventlog.Position, error) {
	if err := CheckFilter(filter); err != nil {
		return "", eventlog.Position{}, err
	}
	var id string
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		stream := eventlog.FilterStream(userID)
		v, err := eventlog.StreamVersion(ctx, tx, stream)
		if err != nil {
			return nil, err
		}
		id = strconv.FormatInt(v, 10)
		return []eventlog.NewEvent{{Stream: stream, Type: eventlog.TypeFilterCreated, ExpectVersion: v,
			Data: eventlog.FilterCreated{UserID: userID, FilterID: id, Filter: filter}}}, nil
	})
	return id, pos, err
}
