package transport

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
)

// zkillProtocol speaks zKillboard's websocket protocol on GET /websocket/:
//
//	{"action":"sub","channel":"killstream"}       // every killmail (also all:*, label:all)
//	{"action":"sub","channel":"system:30000142"}  // also constellation:<id>, region:<id>
//	{"action":"sub","channel":"alliance:99000001"}
//	{"action":"unsub","channel":"killstream"}
//
// Every channel zKillboard published is followed: character:, corporation:,
// alliance:, faction:, ship:, group: (any party, victim or attacker),
// label:<label>, location:<id> and total_value:10b+ (see
// selection.Channel).
//
// Each matching killmail is pushed once per connection, however many of
// the connection's channels it matches, as the stored killmail: the ESI
// object with its "zkb" block, the shape zKillboard's killstream channel
// used. Subscribing and unsubscribing are not acknowledged, as on
// zKillboard; a frame that cannot be carried out is answered with
// {"action":"error","error":"…"} and the connection stays open.
type zkillProtocol struct{}

type zkillFrame struct {
	Action  string `json:"action"`
	Channel string `json:"channel"`
}

func zkillError(msg string) []byte {
	b := plainMarshal(struct {
		Action string `json:"action"`
		Error  string `json:"error"`
	}{"error", msg})
	return b
}

func (zkillProtocol) parse(typ websocket.MessageType, data []byte) wsCommand {
	reply := func(msg string) wsCommand { return wsCommand{op: opReply, reply: zkillError(msg)} }
	if typ != websocket.MessageText {
		return reply("frame: must be a text frame holding a JSON object")
	}
	var f zkillFrame
	if err := json.Unmarshal(bytes.TrimSpace(data), &f); err != nil {
		return reply(describeJSONError(err))
	}
	var op wsOp
	switch f.Action {
	case "sub":
		op = opSubscribe
	case "unsub":
		op = opUnsubscribe
	case "":
		return reply("action: required (sub or unsub)")
	default:
		return reply("action: " + strconv.Quote(f.Action) + " is not sub or unsub")
	}
	channel := strings.TrimSpace(f.Channel)
	loc, terms, ok := selection.Channel(channel, true)
	if !ok {
		return reply("channel: " + strconv.Quote(f.Channel) +
			" is not killstream, system:<id>, constellation:<id>, region:<id>, character:<id>, corporation:<id>," +
			" alliance:<id>, faction:<id>, ship:<id>, group:<id>, label:<label>, location:<id> or total_value:10b+")
	}
	where, err := terms.Compile()
	if err != nil {
		return reply("channel: " + err.Error())
	}
	key := loc
	if !where.Empty() {
		key = channel
	}
	return wsCommand{op: op, topic: channel, subs: []wsSub{{key: key, topic: channel, loc: loc, where: where}}}
}

func (zkillProtocol) subscribed(dst []byte, _ *wsCommand, _ uint64, _ bool) []byte { return dst }

func (zkillProtocol) failed(dst []byte, _ *wsCommand, msg string) []byte {
	return append(dst, zkillError(msg)...)
}

func (zkillProtocol) unsubscribed(dst []byte, _ *wsCommand) []byte { return dst }

func (zkillProtocol) left(dst []byte, _ *wsJoin) []byte { return dst }

// eventFrame is nil: an event keeps one shared encoding, the native frame.
func (zkillProtocol) eventFrame() (*actors.EncodingKey, func(eventlog.Event) []byte) {
	return nil, nil
}

// event writes the stored killmail verbatim.
func (zkillProtocol) event(dst []byte, _ *wsJoin, ev eventlog.Event) []byte {
	return append(dst, ev.Killmail...)
}
