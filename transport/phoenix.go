package transport

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
)

// servePhoenix serves GET /socket/websocket?vsn=2.0.0, the Phoenix
// Channels v2 transport that the official phoenix JavaScript client
// speaks: new Socket("ws://host/socket", {transport: …}).
func (s *Server) servePhoenix(c echo.Context) error {
	if vsn := c.QueryParam("vsn"); !strings.HasPrefix(vsn, "2.") {
		return echo.NewHTTPError(http.StatusBadRequest, "vsn: only the Phoenix v2 serializer (vsn=2.0.0) is supported")
	}
	return s.serveWebsocket(c, phoenixProtocol{})
}

// phoenixProtocol speaks Phoenix Channels v2: every frame is the JSON array
// [join_ref, ref, topic, event, payload].
//
//   - phx_join on "system:<id>", "constellation:<id>", "region:<id>",
//     "all", or on "character:<id>", "corporation:<id>", "alliance:<id>",
//     "faction:<id>", "ship:<type id>", "group:<group id>", "label:<label>"
//     (every system, narrowed by that term; see selection.Channel) with an
//     optional payload {"since": N} or {"client_id": "…"}, which may also
//     narrow the topic with the terms of selection.Terms ("min_value",
//     "side", "labels", …), follows the topic: phx_reply
//     {"status":"ok","response":{"head":N,"missed":false}}, then new_killmail
//     pushes {"event_id","system_id","killmail"} carrying the join_ref. An
//     event in several joined topics is pushed once: on its system's topic
//     when that is joined, else on the first joined topic that wants it.
//   - heartbeat on "phoenix" gets phx_reply ok.
//   - phx_leave gets phx_reply ok, then phx_close.
//   - a join on an unknown topic gets phx_reply error "unmatched topic"; a
//     second join of a joined topic closes the first with phx_close.
type phoenixProtocol struct{}

var jsonNull = json.RawMessage("null")

type phoenixJoinPayload struct {
	Since    *uint64 `json:"since"`
	ClientID *string `json:"client_id"`
	Names    *bool   `json:"names"`
	selection.Terms
}

func (p phoenixProtocol) parse(typ websocket.MessageType, data []byte) wsCommand {
	var frame []json.RawMessage
	if typ != websocket.MessageText || json.Unmarshal(data, &frame) != nil || len(frame) != 5 {
		return wsCommand{op: opReply} // not addressable: nothing to answer
	}
	var topic, event string
	if json.Unmarshal(frame[2], &topic) != nil || json.Unmarshal(frame[3], &event) != nil {
		return wsCommand{op: opReply}
	}
	cmd := wsCommand{joinRef: frame[0], ref: frame[1]}
	reply := func(status string, response string) wsCommand {
		cmd.op = opReply
		cmd.reply = appendPhoenixReply(nil, cmd.joinRef, cmd.ref, topic, status, response)
		return cmd
	}
	if topic == "phoenix" {
		if event == "heartbeat" {
			return reply("ok", "{}")
		}
		return reply("error", `{"reason":"unknown event"}`)
	}
	loc, terms, ok := selection.Channel(topic, false)
	if !ok {
		return reply("error", `{"reason":"unmatched topic"}`)
	}
	cmd.topic = topic
	cmd.subs = []wsSub{{key: topic, topic: topic, loc: loc}}
	switch event {
	case "phx_join":
		var pl phoenixJoinPayload
		if len(bytes.TrimSpace(frame[4])) > 0 && !bytes.Equal(bytes.TrimSpace(frame[4]), jsonNull) {
			if err := json.Unmarshal(frame[4], &pl); err != nil {
				return reply("error", reasonJSON(describeJSONError(err)))
			}
		}
		if pl.Since != nil && pl.ClientID != nil {
			return reply("error", reasonJSON("since, client_id: give one or the other, not both"))
		}
		narrowed, err := terms.Narrow(pl.Terms)
		if err != nil {
			return reply("error", reasonJSON(err.Error()))
		}
		if cmd.subs[0].where, err = narrowed.Compile(); err != nil {
			return reply("error", reasonJSON(err.Error()))
		}
		cmd.op = opSubscribe
		cmd.names = pl.Names
		if pl.Since != nil {
			cmd.since, cmd.hasSince = *pl.Since, true
		}
		if pl.ClientID != nil {
			if !clientIDPattern.MatchString(*pl.ClientID) {
				return reply("error", reasonJSON("client_id: must be 1-128 characters of A-Z a-z 0-9 . _ : @ -"))
			}
			cmd.clientID = *pl.ClientID
		}
		return cmd
	case "phx_leave":
		cmd.op = opUnsubscribe
		cmd.afterReply = appendPhoenixClose(nil, cmd.joinRef, topic)
		return cmd
	}
	return reply("error", `{"reason":"unknown event"}`)
}

func reasonJSON(msg string) string {
	b := plainMarshal(map[string]string{"reason": msg})
	return string(b)
}

func appendPhoenixReply(dst []byte, joinRef, ref json.RawMessage, topic, status, response string) []byte {
	dst = append(dst, '[')
	dst = appendRaw(dst, joinRef)
	dst = append(dst, ',')
	dst = appendRaw(dst, ref)
	dst = append(dst, ',')
	t := plainMarshal(topic)
	dst = append(dst, t...)
	dst = append(dst, `,"phx_reply",{"status":"`...)
	dst = append(dst, status...)
	dst = append(dst, `","response":`...)
	dst = append(dst, response...)
	return append(dst, "}]"...)
}

func appendRaw(dst []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(dst, jsonNull...)
	}
	return append(dst, raw...)
}

// appendTopic appends a topic name (topicKey syntax: no escaping needed).
func appendTopic(dst []byte, topic string) []byte {
	dst = append(dst, '"')
	dst = append(dst, topic...)
	return append(dst, '"')
}

func appendPhoenixClose(dst []byte, joinRef json.RawMessage, topic string) []byte {
	dst = append(dst, '[')
	dst = appendRaw(dst, joinRef)
	dst = append(dst, ',')
	dst = appendRaw(dst, joinRef)
	dst = append(dst, ',')
	dst = appendTopic(dst, topic)
	return append(dst, `,"phx_close",{}]`...)
}

func (phoenixProtocol) subscribed(dst []byte, cmd *wsCommand, head uint64, missed bool) []byte {
	resp := make([]byte, 0, 48)
	resp = append(resp, `{"head":`...)
	resp = strconv.AppendUint(resp, head, 10)
	resp = append(resp, `,"missed":`...)
	resp = strconv.AppendBool(resp, missed)
	resp = append(resp, '}')
	return appendPhoenixReply(dst, cmd.joinRef, cmd.ref, cmd.topic, "ok", string(resp))
}

func (phoenixProtocol) failed(dst []byte, cmd *wsCommand, msg string) []byte {
	return appendPhoenixReply(dst, cmd.joinRef, cmd.ref, cmd.topic, "error", reasonJSON(msg))
}

func (phoenixProtocol) unsubscribed(dst []byte, cmd *wsCommand) []byte {
	return appendPhoenixReply(dst, cmd.joinRef, cmd.ref, cmd.topic, "ok", "{}")
}

func (phoenixProtocol) left(dst []byte, j *wsJoin) []byte {
	return appendPhoenixClose(dst, j.joinRef, j.topic)
}

// eventFrame is nil: a push names its join and topic.
func (phoenixProtocol) eventFrame() (*actors.EncodingKey, func(eventlog.Event) []byte) {
	return nil, nil
}

// event writes [join_ref,null,"<topic>","new_killmail",{…}] with the
// stored killmail bytes verbatim.
func (phoenixProtocol) event(dst []byte, j *wsJoin, ev eventlog.Event) []byte {
	dst = append(dst, '[')
	dst = appendRaw(dst, j.joinRef)
	dst = append(dst, ",null,"...)
	dst = appendTopic(dst, j.topic)
	dst = append(dst, `,"new_killmail",`...)
	dst = ev.AppendJSON(dst)
	return append(dst, ']')
}
