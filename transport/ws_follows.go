package transport

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
)

// wsJoin is one subscription of a connection: a location topic narrowed by
// a predicate. A native subscribe makes one per location topic it names, a
// Phoenix join one per channel topic, a zKillboard sub one per channel.
type wsJoin struct {
	// key names the subscription on its connection: a subscribe of a key
	// that is joined already is the same subscription.
	key string
	// topic is what a push names (Phoenix's topic); loc the location
	// topic it reads ("system:<id>", "region:<id>", "all"…).
	topic, loc string
	systems    []int64 // loc expanded; [eventlog.AllSystems] for all
	where      selection.Predicate
	topics     []string // the PubSub topics that carry its events
	// exact says that every event published on topics is one of its
	// events (see topicsExact).
	exact    bool
	clientID string          // the client_id it was joined with, if any
	joinRef  json.RawMessage // Phoenix join_ref
	seq      uint64          // joined order on its connection
	// Every event of the join's selection with start < id <= from was
	// sent by its replay or by another subscription; live events after
	// from are its own to send.
	start, from uint64
}

// covers says whether ev is one of j's events.
func (j *wsJoin) covers(ev eventlog.Event) bool {
	if len(j.systems) != 1 || j.systems[0] != eventlog.AllSystems {
		if !slices.Contains(j.systems, ev.SystemID) {
			return false
		}
	}
	return j.where.Match(ev.Facts)
}

// wsFollow is the state of one followed system (eventlog.AllSystems for
// all). A system in several subscriptions is followed once.
type wsFollow struct {
	system int64
	// Every live event of the system at or below floor was dealt with
	// (sent when a subscription wanted it); it is not looked at again.
	floor    uint64
	clientID string    // advanced as events are written, when set
	joins    []*wsJoin // the subscriptions holding it, system topics first
}

// wsSent remembers what an ended subscription sent: every event of its
// selection in (start, end].
type wsSent struct {
	j          *wsJoin
	start, end uint64
}

// wsMaxRemembered is how many ended subscriptions a connection remembers,
// so that subscribing again does not send their events a second time.
const wsMaxRemembered = 32

// wsFollows is what one connection follows, and the rule that it sends an
// event once: a live event goes out on the first subscription that wants
// it, and a subscribe's replay skips what the connection's subscriptions,
// current or among the last ended ones, sent or will send. It holds no
// socket and does no I/O.
type wsFollows struct {
	// What live reads of a connection that follows no single system comes
	// first, with the follow of all inline: a drain writes to thousands
	// of connections in turn, and each object it touches is a cache miss.
	all  *wsFollow // follows[eventlog.AllSystems]: &allFollow, or nil
	last *wsFollow // the follow of the last live event's system
	// systems counts the follows of single systems (all aside): none
	// spares live a map lookup per event.
	systems int
	// sole is the connection's one and only subscription so far, when its
	// topics carry exactly its events (wsJoin.exact): every event its
	// queue ever held is one of them, so live asks no predicate. nil once
	// a second subscription joined or this one left, for good: events of
	// another's topics may still wait in the queue. soleFrom is its from.
	sole      *wsJoin
	soleFrom  uint64
	allFollow wsFollow

	joins   map[string]*wsJoin
	order   []*wsJoin // joined order
	follows map[int64]*wsFollow
	clients int      // follows with a client id
	sent    []wsSent // ended subscriptions, oldest first
	seq     uint64   // joins so far
	// held counts the subscriptions whose topics the queue was given,
	// joined or not (a subscribe that failed after it).
	held int
}

func newWSFollows() *wsFollows {
	return &wsFollows{joins: make(map[string]*wsJoin), follows: make(map[int64]*wsFollow)}
}

// systemsWith counts the followed systems, all aside, with extra added.
func (w *wsFollows) systemsWith(extra []int64) int {
	n := 0
	for id := range w.follows {
		if id != eventlog.AllSystems {
			n++
		}
	}
	for _, id := range extra {
		if _, ok := w.follows[id]; !ok && id != eventlog.AllSystems {
			n++
		}
	}
	return n
}

// covered says whether the connection sent ev or will send it live, by a
// subscription other than the one being joined.
func (w *wsFollows) covered(ev eventlog.Event) bool {
	if ev.Facts == nil {
		ev.Facts = selection.Extract(ev.Killmail)
	}
	for _, f := range [2]*wsFollow{w.follows[ev.SystemID], w.all} {
		if f == nil {
			continue
		}
		for _, j := range f.joins {
			if ev.ID > j.start && j.where.Match(ev.Facts) {
				return true
			}
		}
	}
	for _, s := range w.sent {
		if ev.ID > s.start && ev.ID <= s.end && s.j.covers(ev) {
			return true
		}
	}
	return false
}

// add records joins as followed. New follows have dealt with every event
// up to head; existing ones keep their floor.
func (w *wsFollows) add(joins []*wsJoin, head uint64) {
	for _, j := range joins {
		w.seq++
		j.seq = w.seq
		w.joins[j.key] = j
		w.order = append(w.order, j)
		w.sole = nil
		if w.seq == 1 && w.held <= 1 && len(joins) == 1 && j.exact {
			w.sole, w.soleFrom = j, j.from
		}
		for _, id := range j.systems {
			f, ok := w.follows[id]
			if !ok {
				if id == eventlog.AllSystems {
					w.allFollow = wsFollow{system: id, floor: head}
					f, w.all = &w.allFollow, &w.allFollow
				} else {
					f = &wsFollow{system: id, floor: head}
					w.systems++
				}
				w.follows[id] = f
			}
			if strings.HasPrefix(j.loc, "system:") {
				f.joins = slices.Insert(f.joins, 0, j) // the most specific topic carries it
			} else {
				f.joins = append(f.joins, j)
			}
			if f.clientID == "" && j.clientID != "" {
				f.clientID = j.clientID
				w.clients++
			}
		}
	}
}

// leave drops a subscription, remembering what it sent, and returns the
// systems no other subscription holds, which are no longer followed.
func (w *wsFollows) leave(j *wsJoin) []int64 {
	delete(w.joins, j.key)
	w.order = slices.DeleteFunc(w.order, func(x *wsJoin) bool { return x == j })
	w.sole = nil
	// Every event of j up to from, and up to the lowest floor of its
	// follows, went out.
	var floor uint64
	have := false
	var gone []int64
	for _, id := range j.systems {
		f := w.follows[id]
		if f == nil {
			continue
		}
		if !have || f.floor < floor {
			floor, have = f.floor, true
		}
		f.joins = slices.DeleteFunc(f.joins, func(x *wsJoin) bool { return x == j })
		if len(f.joins) == 0 {
			if f.clientID != "" {
				w.clients--
			}
			delete(w.follows, id)
			if id == eventlog.AllSystems {
				w.all = nil
			} else {
				w.systems--
			}
			if w.last == f {
				w.last = nil
			}
			gone = append(gone, id)
		}
	}
	end := max(j.from, floor)
	if end > j.start {
		if len(w.sent) == wsMaxRemembered {
			w.sent = slices.Delete(w.sent, 0, 1)
		}
		w.sent = append(w.sent, wsSent{j: j, start: j.start, end: end})
	}
	return gone
}

// live decides about a published event: the subscription it goes out on
// (nil: none wants it, or it was dealt with) — a system topic's when one
// wants it, else the first joined that does — and the follows that have
// now dealt with it, whose client ids advance (at most two: the event's
// system's and all; nil when fewer).
func (w *wsFollows) live(ev eventlog.Event) (to *wsJoin, dealt [2]*wsFollow) {
	if f := w.all; w.sole != nil && w.systems == 0 && f != nil {
		// The usual connection: one subscription of every system, whose
		// topics carry its events. Nothing but w is read.
		if ev.ID > f.floor {
			f.floor, dealt[0] = ev.ID, f
			if ev.ID > w.soleFrom {
				to = w.sole
			}
		}
		return to, dealt
	}
	if ev.Facts == nil {
		ev.Facts = selection.Extract(ev.Killmail)
	}
	f := w.last
	if w.systems == 0 {
		f = nil
	} else if f == nil || f.system != ev.SystemID {
		if f = w.follows[ev.SystemID]; f != nil {
			w.last = f
		}
	}
	for _, f := range [2]*wsFollow{f, w.all} {
		if f == nil || ev.ID <= f.floor {
			continue
		}
		f.floor = ev.ID
		if dealt[0] == nil {
			dealt[0] = f
		} else {
			dealt[1] = f
		}
		for _, j := range f.joins {
			if ev.ID > j.from && (to == nil || carries(j, to)) && (j == w.sole || j.where.Match(ev.Facts)) {
				to = j
			}
		}
	}
	return to, dealt
}

// topicsExact says whether every event published on sel's PubSub topics
// (selectionTopics) is one of sel's: sel has no predicate, or entities is
// set and sel is every system narrowed by one entity term alone, of either
// side, whose entity topics then carry exactly its events (Topics
// publishes an event on the topic of each of its parties, victim or
// attacker).
func topicsExact(sel selection.Selection, entities bool) bool {
	if sel.Where.Empty() {
		return true
	}
	if !entities || !sel.IsAll() {
		return false
	}
	t := sel.Where.Terms()
	if (t.Side != "" && t.Side != "any") || len(t.Labels) > 0 || t.MinValue != nil || len(t.Locations) > 0 || t.Filter != "" {
		return false
	}
	lists := 0
	for _, ids := range [...][]int64{t.Characters, t.Corporations, t.Alliances, t.Factions, t.Ships, t.Groups} {
		if len(ids) > 0 {
			lists++
		}
	}
	return lists == 1
}

// carries says whether a rather than b carries an event both want: a
// system topic first, else the one joined first.
func carries(a, b *wsJoin) bool {
	as, bs := strings.HasPrefix(a.loc, "system:"), strings.HasPrefix(b.loc, "system:")
	if as != bs {
		return as
	}
	return a.seq < b.seq
}

// accept is the subscription queue's filter: whether some subscription
// may want ev. The queue carries only its subscriptions' topics, so when
// each subscription wants every event of its topics (no predicate, or an
// entity term alone on its entity topics: see topicsExact) every event
// handed over is wanted, and accept is nil: PubSub then asks nothing per
// event, and live decides alone.
func (w *wsFollows) accept() func(eventlog.Event) bool {
	narrowed := false
	for _, j := range w.order {
		narrowed = narrowed || !j.exact
	}
	if !narrowed {
		return nil
	}
	joins := slices.Clone(w.order) // PubSub's goroutine reads it; the joins' selections never change
	return func(ev eventlog.Event) bool {
		for _, j := range joins {
			if j.covers(ev) {
				return true
			}
		}
		return false
	}
}
