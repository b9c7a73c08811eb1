package names

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/universe"
)

// DefaultRenderedBytes bounds the rendered killmails a Renderer keeps.
const DefaultRenderedBytes = 64 << 20

// Renderer adds names to killmails for delivery (see the package
// documentation). It is safe for concurrent use.
type Renderer struct {
	res *Resolver
	u   *universe.Universe
	max int64

	mu    sync.Mutex
	byID  map[uint64]*rendered
	fifo  []uint64 // render order, for eviction
	bytes int64
	// renders counts renders made (not served from the cache), for tests
	// and benchmarks.
	renders int64
}

type rendered struct {
	b              []byte
	complete       bool // every ESI id was known (named, or unknown to ESI)
	added, changed uint64
}

// NewRenderer returns a renderer over res (nil: static names only) and u
// (nil: universe.Default()), keeping at most maxBytes of rendered
// killmails (0: DefaultRenderedBytes).
func NewRenderer(res *Resolver, u *universe.Universe, maxBytes int64) *Renderer {
	if u == nil {
		u = universe.Default()
	}
	if maxBytes <= 0 {
		maxBytes = DefaultRenderedBytes
	}
	return &Renderer{res: res, u: u, max: maxBytes, byID: make(map[uint64]*rendered)}
}

// Render returns ev's killmail with the names at hand added. The bytes are
// shared: do not modify them. A render that lacked names is made again
// once the resolver learnt something; the names it lacked are asked for.
func (rd *Renderer) Render(ev eventlog.Event) []byte {
	b, _ := rd.RenderPartial(ev)
	return b
}

// RenderPartial is Render, and says whether the render lacked names that
// are not known yet (an edge then asks again instead of keeping it). An
// event that carries its owner's rendering (ev.Named, on an edge) is
// served as it came.
func (rd *Renderer) RenderPartial(ev eventlog.Event) ([]byte, bool) {
	if ev.Named != nil {
		return ev.Named, ev.NamedPartial
	}
	var added, changed uint64
	if rd.res != nil {
		added, changed = rd.res.Versions()
	}
	rd.mu.Lock()
	if c := rd.byID[ev.ID]; c != nil && c.changed == changed && (c.complete || c.added == added) {
		rd.mu.Unlock()
		return c.b, !c.complete
	}
	rd.mu.Unlock()
	b, missing := rd.render(ev.Killmail)
	if missing.Len() > 0 && rd.res != nil {
		rd.res.Resolve(missing)
	}
	c := &rendered{b: b, complete: missing.Len() == 0, added: added, changed: changed}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.renders++
	if old := rd.byID[ev.ID]; old != nil {
		rd.bytes -= int64(len(old.b))
	} else {
		rd.fifo = append(rd.fifo, ev.ID)
	}
	rd.byID[ev.ID] = c
	rd.bytes += int64(len(b))
	for rd.bytes > rd.max && len(rd.fifo) > 1 {
		if old := rd.byID[rd.fifo[0]]; old != nil {
			rd.bytes -= int64(len(old.b))
			delete(rd.byID, rd.fifo[0])
		}
		rd.fifo = rd.fifo[1:]
	}
	if cap(rd.fifo) > 4*len(rd.fifo)+1024 {
		rd.fifo = slices.Clone(rd.fifo)
	}
	return b, !c.complete
}

// Renders is how many renders were made (not served from the cache).
func (rd *Renderer) Renders() int64 {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.renders
}

// RenderKillmail adds the names at hand to one killmail, without the
// per-event cache; missing lists the ids the resolver did not know.
func (rd *Renderer) RenderKillmail(km []byte) (out []byte, missing Wanted) { return rd.render(km) }

type insertion struct {
	at int
	b  []byte
}

func (rd *Renderer) render(km []byte) ([]byte, Wanted) {
	var miss wantSet
	var ins []insertion
	root := gjson.ParseBytes(km)
	if !root.IsObject() {
		return km, miss.w
	}
	party := func(p gjson.Result, victim bool) {
		if !p.IsObject() {
			return
		}
		var b []byte
		add := func(key string, value func([]byte) []byte) {
			if p.Get(key).Exists() {
				return // the killmail has it already
			}
			b = append(b, ',', '"')
			b = append(b, key...)
			b = append(b, '"', ':')
			b = value(b)
		}
		str := func(s string) func([]byte) []byte { return func(b []byte) []byte { return appendString(b, s) } }
		esi := func(idKey string, kind Kind, nameKey, tickerKey string) {
			id := p.Get(idKey).Int()
			if id <= 0 {
				return
			}
			var e Entry
			var ok bool
			if rd.res != nil {
				e, ok = rd.res.Lookup(id)
			}
			switch {
			case !ok && rd.res.Asks():
				miss.add(kind, id)
			case !ok:
			case !e.Unknown:
				add(nameKey, str(e.Name))
				if tickerKey != "" && e.Ticker != "" {
					add(tickerKey, str(e.Ticker))
				}
			}
		}
		esi("character_id", Character, "character_name", "")
		esi("corporation_id", Corporation, "corporation_name", "corporation_ticker")
		esi("alliance_id", Alliance, "alliance_name", "alliance_ticker")
		if id := p.Get("faction_id").Int(); id > 0 {
			if f, ok := rd.u.Faction(id); ok {
				add("faction_name", str(f.Name))
			}
		}
		if id := p.Get("ship_type_id").Int(); id > 0 {
			if t, ok := rd.u.Type(id); ok {
				add("ship_type_name", str(t.Name))
				if victim {
					add("ship_group_id", func(b []byte) []byte { return strconv.AppendInt(b, t.GroupID, 10) })
					add("ship_group_name", str(t.GroupName))
				}
			}
		}
		if id := p.Get("weapon_type_id").Int(); id > 0 {
			if t, ok := rd.u.Type(id); ok {
				add("weapon_type_name", str(t.Name))
			}
		}
		if len(b) > 0 {
			ins = append(ins, objectInsertion(p, b))
		}
	}
	party(root.Get("victim"), true)
	root.Get("attackers").ForEach(func(_, a gjson.Result) bool {
		party(a, false)
		return true
	})
	if id := root.Get("solar_system_id").Int(); id > 0 {
		if s, ok := rd.u.System(id); ok {
			var b []byte
			add := func(key string, value func([]byte) []byte) {
				if !root.Get(key).Exists() {
					b = append(b, `,"`...)
					b = append(b, key...)
					b = append(b, `":`...)
					b = value(b)
				}
			}
			add("solar_system_name", func(b []byte) []byte { return appendString(b, s.Name) })
			add("constellation_id", func(b []byte) []byte { return strconv.AppendInt(b, s.ConstellationID, 10) })
			add("region_id", func(b []byte) []byte { return strconv.AppendInt(b, s.RegionID, 10) })
			add("region_name", func(b []byte) []byte { return appendString(b, s.RegionName) })
			add("security", func(b []byte) []byte { return strconv.AppendFloat(b, s.Security, 'f', -1, 64) })
			if len(b) > 0 {
				ins = append(ins, objectInsertion(root, b))
			}
		}
	}
	if len(ins) == 0 {
		return km, miss.w
	}
	slices.SortStableFunc(ins, func(a, b insertion) int { return cmp.Compare(a.at, b.at) })
	size := len(km)
	for _, in := range ins {
		size += len(in.b)
	}
	out := make([]byte, 0, size)
	prev := 0
	for _, in := range ins {
		out = append(out, km[prev:in.at]...)
		out = append(out, in.b...)
		prev = in.at
	}
	return append(out, km[prev:]...), miss.w
}

// objectInsertion places fields (each led by a comma) before the closing
// brace of the object o; in an empty object the first comma goes.
func objectInsertion(o gjson.Result, fields []byte) insertion {
	end := o.Index + len(o.Raw) - 1 // the '}'
	empty := true
	for _, c := range o.Raw[1 : len(o.Raw)-1] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			empty = false
			break
		}
	}
	if empty {
		fields = fields[1:]
	}
	return insertion{at: end, b: fields}
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
