package commands

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"
	"github.com/tidwall/gjson"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/identity"
	"spelt.dev/spelt/internal/pdus"
)

// ThirdPartyInvite invites someone to a room by e-mail address or phone number (POST
// /rooms/{roomId}/invite with a 3PID, or createRoom's invite_3pid), through an
// identity server the inviter has an access token for.
type ThirdPartyInvite struct {
	RoomID, Sender          string
	IDServer, IDAccessToken string
	Medium, Address         string
}

// InviteThirdParty follows the spec's "Third-party invites": when the identity server
// knows the 3PID's Matrix ID, that user is invited; otherwise the server stores the
// invite (and tells the invitee), and an m.room.third_party_invite event keyed by its
// token records it in the room, for the invitee to claim once they bind the 3PID.
func (c *Commands) InviteThirdParty(ctx context.Context, meta Meta, inv ThirdPartyInvite) (Sent, error) {
	if c.ids == nil || !c.ids.Trusted(inv.IDServer) {
		return Sent{}, ErrIdentityServerNotTrusted
	}
	if inv.IDAccessToken == "" {
		return Sent{}, badRequest("id_access_token is needed to invite through an identity server")
	}
	if inv.Medium != MediumEmail && inv.Medium != MediumMSISDN {
		return Sent{}, badRequest("medium must be email or msisdn")
	}
	mxid, err := c.ids.Lookup(ctx, inv.IDServer, inv.IDAccessToken, inv.Medium, inv.Address)
	if err != nil {
		return Sent{}, err
	}
	if mxid != "" {
		return c.ChangeMembership(ctx, meta, Membership{RoomID: inv.RoomID, Sender: inv.Sender, Target: mxid, Action: ActionInvite})
	}
	notice, err := c.inviteNotice(ctx, meta, inv)
	if err != nil {
		return Sent{}, err
	}
	stored, err := c.ids.StoreInvite(ctx, inv.IDServer, inv.IDAccessToken, notice)
	if err != nil {
		return Sent{}, err
	}
	var first struct {
		PublicKey      string `json:"public_key"`
		KeyValidityURL string `json:"key_validity_url"`
	}
	_ = json.Unmarshal(stored.PublicKeys[0], &first)
	body, err := json.Marshal(map[string]any{"display_name": stored.DisplayName, "public_keys": stored.PublicKeys,
		"public_key": first.PublicKey, "key_validity_url": first.KeyValidityURL})
	if err != nil {
		return Sent{}, err
	}
	return c.Send(ctx, meta, SendEvent{RoomID: inv.RoomID, Sender: inv.Sender, Type: "m.room.third_party_invite",
		StateKey: &stored.Token, Content: body})
}

// inviteNotice gathers what the identity server tells the invitee of the room and the
// inviter. The inviter must be joined (the auth rules check it again when the event
// is sent): nothing is stored at the identity server for an invite that would fail.
func (c *Commands) inviteNotice(ctx context.Context, meta Meta, inv ThirdPartyInvite) (identity.Invite, error) {
	n := identity.Invite{Medium: inv.Medium, Address: inv.Address, RoomID: inv.RoomID, Sender: inv.Sender}
	_, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		keys := []pdus.StateKey{{Type: "m.room.name"}, {Type: "m.room.canonical_alias"}, {Type: "m.room.avatar"},
			{Type: "m.room.join_rules"}, {Type: "m.room.create"}, {Type: "m.room.member", StateKey: inv.Sender}}
		r, _, err := c.openRoom(ctx, tx, inv.RoomID, opening{preload: keys})
		if err != nil {
			return nil, err
		}
		if m, err := r.membership(ctx, inv.Sender); err != nil {
			return nil, err
		} else if m != "join" {
			return nil, forbidden("%s is not in the room", inv.Sender)
		}
		field := func(typ, path string) string {
			ev, err := r.current(ctx, typ, "")
			if err != nil || ev == nil {
				return ""
			}
			return gjson.GetBytes(ev.PDU.Content, path).Str
		}
		n.RoomName, n.RoomAlias, n.RoomAvatarURL = field("m.room.name", "name"), field("m.room.canonical_alias", "alias"), field("m.room.avatar", "url")
		n.RoomJoinRules, n.RoomType = field("m.room.join_rules", "join_rule"), field("m.room.create", "type")
		if p, err := c.q.ProfileGet(ctx, tx, inv.Sender); err == nil {
			if p.Displayname != nil {
				n.SenderDisplayName = *p.Displayname
			}
			if p.AvatarUrl != nil {
				n.SenderAvatarURL = *p.AvatarUrl
			}
		}
		return nil, nil
	})
	return n, err
}
