package transport

import (
	"net/url"
	"sync"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
)

// Renderer adds names beside the ids of a killmail for delivery
// (*names.Renderer). Render returns shared bytes that callers never modify.
type Renderer interface {
	Render(ev eventlog.Event) []byte
}

// parseNamesParam reads names=true|false (also 1|0); def when absent.
func parseNamesParam(q url.Values, def bool) (bool, error) {
	return parseNames(q.Get("names"), def)
}

// parseNames reads a value of names= ("" means def).
func parseNames(v string, def bool) (bool, error) {
	switch v {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, badParam("names", "must be true or false")
}

// named returns ev with the names added when on is set and the server
// renders names; else ev as stored.
func (s *Server) named(ev eventlog.Event, on bool) eventlog.Event {
	if on {
		ev.Killmail = render(s.cfg.Names, ev)
	}
	return ev
}

// namedKeys maps a protocol's encoding key to the key of its named form.
var namedKeys sync.Map // *actors.EncodingKey -> *actors.EncodingKey

// namedFrame is a protocol's shared event frame with the names added: a
// key of its own and a build that renders first.
func namedFrame(key *actors.EncodingKey, frame func(eventlog.Event) []byte, r Renderer) (*actors.EncodingKey, func(eventlog.Event) []byte) {
	k, _ := namedKeys.LoadOrStore(key, new(actors.EncodingKey))
	return k.(*actors.EncodingKey), func(ev eventlog.Event) []byte {
		ev.Killmail = render(r, ev)
		return frame(ev)
	}
}

// render is ev's killmail with names: the rendering it carries (an
// edge's events carry their core's), else r's, else as stored.
func render(r Renderer, ev eventlog.Event) []byte {
	switch {
	case ev.Named != nil:
		return ev.Named
	case r != nil:
		return r.Render(ev)
	}
	return ev.Killmail
}

// namesDefault is whether a protocol carries names unless asked otherwise:
// killfeed's own do, the compatibility ones keep their upstream shape.
func namesDefault(p wsProtocol) bool {
	_, zkill := p.(zkillProtocol)
	return !zkill
}
