package transport

import (
	"encoding/json"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
)

// wsProtocol is a wire protocol over a session: native JSON or Phoenix
// Channels v2. Its methods append one frame to dst (or none).
type wsProtocol interface {
	// parse turns a client frame into a command.
	parse(typ websocket.MessageType, data []byte) wsCommand
	// subscribed acknowledges a subscribe before its replay.
	subscribed(dst []byte, cmd *wsCommand, head uint64, missed bool) []byte
	// failed answers a command the session could not carry out.
	failed(dst []byte, cmd *wsCommand, msg string) []byte
	// unsubscribed acknowledges an unsubscribe.
	unsubscribed(dst []byte, cmd *wsCommand) []byte
	// left tells the client a joined topic was replaced by a later join of
	// the same topic (Phoenix's phx_close).
	left(dst []byte, j *wsJoin) []byte
	// event pushes one event of a joined topic.
	event(dst []byte, j *wsJoin, ev eventlog.Event) []byte
	// eventFrame, when not nil, frames an event the same for every join
	// and connection: a live event is then framed once, for all of them
	// (actors.KillmailInserted.Encoded, under the key).
	eventFrame() (*actors.EncodingKey, func(eventlog.Event) []byte)
}

// wsSub is one subscription a command names.
type wsSub struct {
	key   string // see wsJoin.key
	topic string // what pushes name
	loc   string // the location topic it reads
	where selection.Predicate
}

type wsOp uint8

const (
	opReply       wsOp = iota // write reply as is
	opSubscribe               // follow topics, from since / client_id / the head
	opUnsubscribe             // stop following topics
)

// wsCommand is a parsed client frame.
type wsCommand struct {
	op    wsOp
	reply []byte
	// subs are the subscriptions to start or end.
	subs []wsSub
	// topic names the command in replies (Phoenix's topic).
	topic string
	// loc and where are the native frame's selection, echoed in its
	// acknowledgement.
	loc      selection.Locations
	where    selection.Predicate
	since    uint64
	hasSince bool
	clientID string
	// names, when set, turns the names beside ids on or off for the
	// connection's events from now on.
	names *bool
	// Phoenix addressing, echoed verbatim (raw JSON).
	joinRef, ref json.RawMessage
	// afterReply is written after the acknowledgement (Phoenix phx_close).
	afterReply []byte
}
