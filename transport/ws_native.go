package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/eventlog"
)

// nativeProtocol is killfeed's JSON protocol on GET /api/ws.
//
// Client frames:
//
//	{"type":"subscribe","systems":[30000142],"since":12345}   // since optional
//	{"type":"subscribe","systems":[30000142],"client_id":"me"} // resume from stored offsets
//	{"type":"unsubscribe","systems":[30000142]}
//	{"type":"ping"}
//
// Server frames: subscribed, killmail, unsubscribed, pong and error.
type nativeProtocol struct{}

// nativeFrame is a client frame. Unknown fields are refused, so that a
// misspelt "since" does not silently mean "from the head".
type nativeFrame struct {
	Type     string  `json:"type"`
	Systems  []int64 `json:"systems"`
	Since    *uint64 `json:"since"`
	ClientID *string `json:"client_id"`
}

var pongFrame = []byte(`{"type":"pong"}`)

func nativeError(msg string) wsCommand {
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error string `json:"error"`
	}{"error", msg})
	return wsCommand{op: opReply, reply: b}
}

func (nativeProtocol) parse(typ websocket.MessageType, data []byte) wsCommand {
	if typ != websocket.MessageText {
		return nativeError("frame: must be a text frame holding a JSON object")
	}
	var f nativeFrame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nativeError(describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nativeError("frame: must hold exactly one JSON object")
	}
	switch f.Type {
	case "ping":
		if f.Systems != nil || f.Since != nil || f.ClientID != nil {
			return nativeError("ping: takes no fields besides type")
		}
		return wsCommand{op: opReply, reply: pongFrame}
	case "subscribe", "unsubscribe":
	case "":
		return nativeError("type: required (subscribe, unsubscribe or ping)")
	default:
		return nativeError("type: " + strconv.Quote(f.Type) + " is not subscribe, unsubscribe or ping")
	}
	systems, msg := checkSystems(f.Systems)
	if msg != "" {
		return nativeError(msg)
	}
	if f.Type == "unsubscribe" {
		if f.Since != nil || f.ClientID != nil {
			return nativeError("unsubscribe: takes only systems")
		}
		return wsCommand{op: opUnsubscribe, systems: systems}
	}
	cmd := wsCommand{op: opSubscribe, systems: systems}
	if f.Since != nil && f.ClientID != nil {
		return nativeError("since, client_id: give one or the other, not both")
	}
	if f.Since != nil {
		cmd.since, cmd.hasSince = *f.Since, true
	}
	if f.ClientID != nil {
		if !clientIDPattern.MatchString(*f.ClientID) {
			return nativeError("client_id: must be 1-128 characters of A-Z a-z 0-9 . _ : @ -")
		}
		cmd.clientID = *f.ClientID
	}
	return cmd
}

// checkSystems validates and deduplicates system ids (first-seen order).
func checkSystems(ids []int64) ([]int64, string) {
	if len(ids) == 0 {
		return nil, "systems: at least one system id is required"
	}
	out := make([]int64, 0, len(ids))
	seen := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		if id <= 0 {
			return nil, "systems: " + strconv.FormatInt(id, 10) + " is not a positive system id"
		}
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out, ""
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return typeErr.Field + ": must be " + jsonKind(typeErr.Type.Kind().String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "frame: " + strings.TrimPrefix(err.Error(), "json: ")
	case errors.As(err, &typeErr):
		return "frame: must be a JSON object"
	}
	return "frame: not valid JSON"
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice":
		return "an array of system ids"
	case "uint64":
		return "a non-negative integer event id"
	case "int64":
		return "an integer"
	case "string":
		return "a string"
	}
	return "of another type"
}

func (nativeProtocol) subscribed(dst []byte, cmd *wsCommand, head uint64, missed bool) []byte {
	dst = append(dst, `{"type":"subscribed","systems":`...)
	dst = appendSystems(dst, cmd.systems)
	dst = append(dst, `,"head":`...)
	dst = strconv.AppendUint(dst, head, 10)
	dst = append(dst, `,"missed":`...)
	dst = strconv.AppendBool(dst, missed)
	return append(dst, '}')
}

func (nativeProtocol) failed(dst []byte, _ *wsCommand, msg string) []byte {
	return append(dst, nativeError(msg).reply...)
}

func (nativeProtocol) unsubscribed(dst []byte, cmd *wsCommand) []byte {
	dst = append(dst, `{"type":"unsubscribed","systems":`...)
	dst = appendSystems(dst, cmd.systems)
	return append(dst, '}')
}

func (nativeProtocol) left(dst []byte, _ int64, _ *wsFollow) []byte { return dst }

// event writes {"type":"killmail","event_id":…,"system_id":…,"killmail":…}
// with the stored killmail bytes verbatim.
func (nativeProtocol) event(dst []byte, _ *wsFollow, ev eventlog.Event) []byte {
	dst = append(dst, `{"type":"killmail"`...)
	n := len(dst)
	dst = ev.AppendJSON(dst)
	dst[n] = ','
	return dst
}

func appendSystems(dst []byte, ids []int64) []byte {
	dst = append(dst, '[')
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, id, 10)
	}
	return append(dst, ']')
}
