package eventlog

// Bindings of 3PIDs at identity servers (spec: client-server API, POST
// /account/3pid/bind and /unbind). The homeserver keeps them to unbind later.
const (
	// TypeThreepidBound: an identity server bound a 3PID to a user at their request.
	TypeThreepidBound = "threepid.bound.v1"
	// TypeThreepidUnbound: an identity server removed a binding at the homeserver's
	// request.
	TypeThreepidUnbound = "threepid.unbound.v1"
)

func init() { Types = append(Types, TypeThreepidBound, TypeThreepidUnbound) }

// ThreepidBinding is a 3PID bound to a user at an identity server.
type ThreepidBinding struct {
	UserID   string `json:"user_id"`
	Medium   string `json:"medium"`
	Address  string `json:"address"`
	IDServer string `json:"id_server"`
}
