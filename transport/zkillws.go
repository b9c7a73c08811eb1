package transport

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
)

// zkillProtocol speaks zKillboard's websocket protocol on GET /websocket/:
//
//	{"action":"sub","channel":"killstream"}       // every killmail
//	{"action":"sub","channel":"system:30000142"}  // also constellation:<id>, region:<id>
//	{"action":"unsub","channel":"killstream"}
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
	b, _ := json.Marshal(struct {
		Action string `json:"action"`
		Error  string `json:"error"`
	}{"error", msg})
	return b
}

// zkillTopic maps a zKillboard channel to a killfeed topic.
func zkillTopic(channel string) (string, bool) {
	switch channel {
	case "killstream", "all:*":
		return AllTopic, true
	}
	kind, _, ok := topicKey(channel)
	if !ok || kind == AllTopic {
		return "", false
	}
	return channel, true
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
	topic, ok := zkillTopic(strings.TrimSpace(f.Channel))
	if !ok {
		return reply("channel: " + strconv.Quote(f.Channel) +
			" is not killstream, system:<id>, constellation:<id> or region:<id>")
	}
	return wsCommand{op: op, topics: []string{topic}}
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
