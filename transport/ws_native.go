package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
)

// nativeProtocol is killfeed's JSON protocol on GET /api/ws.
//
// Client frames:
//
//	{"type":"subscribe","systems":[30000142],"since":12345}   // since optional
//	{"type":"subscribe","systems":[30000142],"client_id":"me"} // resume from stored offsets
//	{"type":"subscribe","regions":[10000002],"constellations":[20000020]}
//	{"type":"subscribe","all":true}
//	{"type":"subscribe","alliances":[99000001],"side":"victim","min_value":1e9}
//	{"type":"unsubscribe","systems":[30000142]}
//
// A subscribe may name systems, constellations, regions and all together,
// and narrow them with the terms of selection.Terms (characters,
// corporations, alliances, factions, ships, groups, side, labels,
// min_value, locations); terms without a location mean every system. Each
// location of a subscribe, with its terms, is a subscription of its own:
// an event matching several of a connection's subscriptions is sent once,
// and a subscribe never sends again what the connection was sent.
// Unsubscribe with the same locations and terms ends them (unsubscribing a
// system that was only followed through its region changes nothing).
//
//	{"type":"ping"}
//
// Server frames: subscribed, killmail, unsubscribed, pong and error.
type nativeProtocol struct{}

// nativeFrame is a client frame. Unknown fields are refused, so that a
// misspelt "since" does not silently mean "from the head".
type nativeFrame struct {
	Type           string  `json:"type"`
	Systems        []int64 `json:"systems"`
	Constellations []int64 `json:"constellations"`
	Regions        []int64 `json:"regions"`
	All            *bool   `json:"all"`
	Since          *uint64 `json:"since"`
	ClientID       *string `json:"client_id"`
	Names          *bool   `json:"names"`
	selection.Terms
}

var pongFrame = []byte(`{"type":"pong"}`)

func nativeError(msg string) wsCommand {
	b := plainMarshal(struct {
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
		if f.Systems != nil || f.Constellations != nil || f.Regions != nil || f.All != nil || f.Since != nil || f.ClientID != nil || !f.Terms.Empty() || f.Side != "" {
			return nativeError("ping: takes no fields besides type")
		}
		return wsCommand{op: opReply, reply: pongFrame}
	case "subscribe", "unsubscribe":
	case "":
		return nativeError("type: required (subscribe, unsubscribe or ping)")
	default:
		return nativeError("type: " + strconv.Quote(f.Type) + " is not subscribe, unsubscribe or ping")
	}
	if f.Filter != "" {
		return nativeError("filter: not a subscribe field (RedisQ's filter= is for listen.php; use alliances, min_value… here)")
	}
	var loc selection.Locations
	var err error
	if loc.Systems, err = selection.CheckIDs("systems", "system", f.Systems); err != nil {
		return nativeError(err.Error())
	}
	if loc.Constellations, err = selection.CheckIDs("constellations", "constellation", f.Constellations); err != nil {
		return nativeError(err.Error())
	}
	if loc.Regions, err = selection.CheckIDs("regions", "region", f.Regions); err != nil {
		return nativeError(err.Error())
	}
	loc.All = f.All != nil && *f.All
	where, err := f.Terms.Compile()
	if err != nil {
		return nativeError(err.Error())
	}
	if loc.Empty() && where.Empty() {
		return nativeError("systems: at least one system id is required (or regions, constellations, all, or a term such as alliances)")
	}
	cmd := wsCommand{loc: loc, where: where, subs: nativeSubs(loc, where)}
	if f.Type == "unsubscribe" {
		if f.Since != nil || f.ClientID != nil {
			return nativeError("unsubscribe: takes only the locations and terms of a subscribe")
		}
		cmd.op = opUnsubscribe
		return cmd
	}
	cmd.op = opSubscribe
	cmd.names = f.Names
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

// nativeSubs makes one subscription per location topic of loc (all, when
// loc is empty), narrowed by where.
func nativeSubs(loc selection.Locations, where selection.Predicate) []wsSub {
	if loc.Empty() {
		loc.All = true
	}
	topics := loc.Topics()
	subs := make([]wsSub, len(topics))
	for i, t := range topics {
		key := t
		if !where.Empty() {
			key += "|" + where.String()
		}
		subs[i] = wsSub{key: key, topic: t, loc: t, where: where}
	}
	return subs
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
		return "an array of ids"
	case "bool":
		return "true or false"
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
	dst = append(dst, `{"type":"subscribed"`...)
	dst = appendSel(dst, cmd)
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
	dst = append(dst, `{"type":"unsubscribed"`...)
	dst = appendSel(dst, cmd)
	return append(dst, '}')
}

// appendSel appends ,"systems":[…] and, when given, ,"constellations":[…],
// ,"regions":[…], ,"all":true and the terms (canonical: ids sorted).
func appendSel(dst []byte, cmd *wsCommand) []byte {
	sel := &cmd.loc
	dst = append(dst, `,"systems":`...)
	dst = appendSystems(dst, sel.Systems)
	if len(sel.Constellations) > 0 {
		dst = append(dst, `,"constellations":`...)
		dst = appendSystems(dst, sel.Constellations)
	}
	if len(sel.Regions) > 0 {
		dst = append(dst, `,"regions":`...)
		dst = appendSystems(dst, sel.Regions)
	}
	if sel.All {
		dst = append(dst, `,"all":true`...)
	}
	if w := cmd.where.String(); w != "" && w != "{}" {
		dst = append(dst, ',')
		dst = append(dst, w[1:len(w)-1]...) // the terms' members
	}
	return dst
}

func (nativeProtocol) left(dst []byte, _ *wsJoin) []byte { return dst }

// event writes {"type":"killmail","event_id":…,"system_id":…,"killmail":…}
// with the stored killmail bytes verbatim.
func (nativeProtocol) event(dst []byte, _ *wsJoin, ev eventlog.Event) []byte {
	dst = append(dst, `{"type":"killmail"`...)
	n := len(dst)
	dst = ev.AppendJSON(dst)
	dst[n] = ','
	return dst
}

func (nativeProtocol) eventFrame() (*actors.EncodingKey, func(eventlog.Event) []byte) {
	return nativeFrameKey, nativeEventFrame
}

// nativeFrameKey names the native killmail frame among an event's encodings.
var nativeFrameKey = new(actors.EncodingKey)

// nativeEventFrame is a killmail frame, header included: the payload is
// built behind room for the longest header, which then goes right before it.
func nativeEventFrame(ev eventlog.Event) []byte {
	const room = 10
	b := nativeProtocol{}.event(make([]byte, room, room+len(ev.Killmail)+96), nil, ev)
	var h [room]byte
	hdr := appendFrameHeader(h[:0], 0x1, len(b)-room)
	start := room - len(hdr)
	copy(b[start:], hdr)
	return b[start:]
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
