// Package logtest holds the store-semantics specs that every eventlog
// backend must pass: one spec body, run against the memory backend and the
// durable one.
package logtest

import (
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// Opener opens a fresh, empty Log with cfg; the spec closes it.
type Opener func(cfg eventlog.Config) *eventlog.Log

// Clock is a settable clock for Config.Now.
type Clock struct{ ns atomic.Int64 }

// NewClock starts a clock at a fixed time.
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// InSystem returns fixture killmails moved into one system, n of them,
// starting at fixture index from.
func InSystem(system int64, from, n int) []killmail.Killmail {
	all := fixture.Killmails()
	out := make([]killmail.Killmail, n)
	for i := range out {
		km := all[(from+i)%len(all)]
		km.SystemID = system
		out[i] = km
	}
	return out
}

func ids(b eventlog.Batch) []uint64 {
	out := make([]uint64, len(b.Events))
	for i, e := range b.Events {
		out[i] = e.ID
	}
	return out
}

// Specs registers the store-semantics specs for a backend; it returns true
// so that a suite can call it at package level (var _ = Specs(…)).
func Specs(name string, open Opener) bool {
	Describe("eventlog semantics on the "+name+" backend", func() {
		const jita, amarr, dodixie = int64(30000142), int64(30002187), int64(30002659)
		var (
			clock *Clock
			log   *eventlog.Log
			cfg   eventlog.Config
		)
		openLog := func() {
			cfg.Now = clock.Now
			log = open(cfg)
			DeferCleanup(func() { _ = log.Close() })
		}
		appendAll := func(kms []killmail.Killmail) []eventlog.AppendResult {
			GinkgoHelper()
			res, err := log.Append(kms, nil)
			Expect(err).NotTo(HaveOccurred())
			return res
		}
		fetch := func(client string, systems []int64, limit int) eventlog.Batch {
			GinkgoHelper()
			b, err := log.Fetch(client, selection.Of(systems), limit)
			Expect(err).NotTo(HaveOccurred())
			Expect(b.ReadBodies()).To(Succeed())
			return b
		}
		collect := func() eventlog.CollectStats {
			GinkgoHelper()
			st, err := log.Collect()
			Expect(err).NotTo(HaveOccurred())
			return st
		}

		BeforeEach(func() {
			clock = NewClock()
			cfg = eventlog.Config{}
		})

		Context("with default limits", func() {
			BeforeEach(openLog)

			It("returns three inserts in one system with increasing event ids, starting at 1", func() {
				kms := InSystem(jita, 0, 3)
				res := appendAll(kms)
				Expect(res).To(Equal([]eventlog.AppendResult{{EventID: 1}, {EventID: 2}, {EventID: 3}}))
				b := fetch("foo", []int64{jita}, 0)
				Expect(ids(b)).To(Equal([]uint64{1, 2, 3}))
				for i, ev := range b.Events {
					Expect(ev.SystemID).To(Equal(jita))
					Expect(ev.Killmail).To(MatchJSON(kms[i].JSON))
				}
				Expect(b.Head).To(Equal(uint64(3)))
				Expect(b.Missed).To(BeFalse())
			})

			It("returns nothing on a second fetch, then only the new event, one at a time", func() {
				appendAll(InSystem(jita, 0, 3))
				Expect(fetch("foo", []int64{jita}, 0).Events).To(HaveLen(3))
				Expect(fetch("foo", []int64{jita}, 0).Events).To(BeEmpty())
				appendAll(InSystem(jita, 3, 1))
				Expect(ids(fetch("foo", []int64{jita}, 1))).To(Equal([]uint64{4}))
				Expect(fetch("foo", []int64{jita}, 1).Events).To(BeEmpty())
			})

			It("tracks the offsets of two clients with overlapping systems independently", func() {
				appendAll(InSystem(jita, 0, 2))  // 1, 2
				appendAll(InSystem(amarr, 2, 2)) // 3, 4
				Expect(ids(fetch("a", []int64{jita}, 0))).To(Equal([]uint64{1, 2}))
				Expect(ids(fetch("b", []int64{jita, amarr}, 0))).To(Equal([]uint64{1, 2, 3, 4}))
				appendAll(InSystem(jita, 4, 1))  // 5
				appendAll(InSystem(amarr, 5, 1)) // 6
				Expect(ids(fetch("a", []int64{jita, amarr}, 0))).To(Equal([]uint64{3, 4, 5, 6}))
				Expect(ids(fetch("b", []int64{amarr}, 0))).To(Equal([]uint64{6}))
				Expect(ids(fetch("b", []int64{jita}, 0))).To(Equal([]uint64{5}))
			})

			It("collects events at or below the minimum offset and keeps later ones", func() {
				appendAll(InSystem(jita, 0, 3)) // 1..3
				fetch("a", []int64{jita}, 0)    // a at 3
				fetch("b", []int64{jita}, 2)    // b at 2
				appendAll(InSystem(jita, 3, 2)) // 4, 5
				st := collect()
				Expect(st.Dropped).To(Equal(2))
				Expect(st.Through).To(Equal(uint64(2)))
				Expect(ids(fetch("c", []int64{jita}, 0))).To(Equal([]uint64{3, 4, 5}))
				Expect(ids(fetch("b", []int64{jita}, 0))).To(Equal([]uint64{3, 4, 5}))
			})

			It("does not let a client polling a quiet system pin GC", func() {
				fetch("quiet", []int64{dodixie}, 0)
				appendAll(InSystem(jita, 0, 5))
				fetch("quiet", []int64{dodixie}, 0) // considers up to the head
				fetch("busy", []int64{jita}, 0)
				st := collect()
				Expect(st.Dropped).To(Equal(5))
				Expect(log.Stats().Events).To(BeZero())
			})

			It("starts a new client, and a system new to a client, at the oldest retained event", func() {
				appendAll(InSystem(jita, 0, 3))
				appendAll(InSystem(amarr, 3, 2))
				fetch("a", []int64{jita}, 3)        // a at 3
				fetch("b", []int64{jita, amarr}, 0) // b at 5
				Expect(collect().Through).To(Equal(uint64(3)))
				Expect(ids(fetch("new", []int64{jita, amarr}, 0))).To(Equal([]uint64{4, 5}))
				b := fetch("a", []int64{amarr}, 0)
				Expect(ids(b)).To(Equal([]uint64{4, 5}))
				Expect(b.Missed).To(BeFalse())
			})

			It("advances every polled system to the last returned event when the limit cuts the batch", func() {
				appendAll(InSystem(jita, 0, 2))  // 1, 2
				appendAll(InSystem(amarr, 2, 2)) // 3, 4
				appendAll(InSystem(jita, 4, 1))  // 5
				Expect(ids(fetch("a", []int64{jita, amarr}, 3))).To(Equal([]uint64{1, 2, 3}))
				Expect(ids(fetch("a", []int64{jita, amarr}, 3))).To(Equal([]uint64{4, 5}))
			})

			It("stores a killmail id once and answers the existing event id", func() {
				kms := InSystem(jita, 0, 2)
				Expect(appendAll(kms)).To(Equal([]eventlog.AppendResult{{EventID: 1}, {EventID: 2}}))
				res := appendAll([]killmail.Killmail{kms[1], InSystem(jita, 2, 1)[0], kms[0]})
				Expect(res).To(Equal([]eventlog.AppendResult{{EventID: 2, Duplicate: true}, {EventID: 3}, {EventID: 1, Duplicate: true}}))
				Expect(ids(fetch("a", []int64{jita}, 0))).To(Equal([]uint64{1, 2, 3}))
			})

			It("reads a system listed twice once", func() {
				appendAll(InSystem(jita, 0, 2))
				Expect(ids(fetch("twice", []int64{jita, amarr, jita}, 0))).To(Equal([]uint64{1, 2}))
				b, err := log.Since(selection.Of([]int64{jita, jita}), 0, 0)
				Expect(err).NotTo(HaveOccurred())
				Expect(b.ReadBodies()).To(Succeed())
				Expect(ids(b)).To(Equal([]uint64{1, 2}))
			})

			It("deduplicates within one batch", func() {
				km := InSystem(jita, 0, 1)[0]
				res := appendAll([]killmail.Killmail{km, km})
				Expect(res).To(Equal([]eventlog.AppendResult{{EventID: 1}, {EventID: 1, Duplicate: true}}))
			})

			It("remembers killmail ids after their events were collected", func() {
				kms := InSystem(jita, 0, 2)
				appendAll(kms)
				fetch("a", []int64{jita}, 0)
				Expect(collect().Dropped).To(Equal(2))
				res := appendAll(kms[:1])
				Expect(res).To(Equal([]eventlog.AppendResult{{EventID: 1, Duplicate: true}}))
				Expect(log.Stats().Events).To(BeZero())
			})

			It("expires idle clients so that they stop holding GC back", func() {
				appendAll(InSystem(jita, 0, 3))
				fetch("idle", []int64{jita}, 1) // idle at 1
				clock.Advance(23 * time.Hour)
				fetch("live", []int64{jita}, 0) // live at 3
				Expect(collect().Through).To(Equal(uint64(1)))
				clock.Advance(2 * time.Hour) // idle is 25h idle, live 2h
				st := collect()
				Expect(st.ExpiredClients).To(Equal(1))
				Expect(st.Through).To(Equal(uint64(3)))
				Expect(log.Stats().Clients).To(Equal(1))
			})

			It("never returns the same event twice to concurrent polls of one client", func() {
				for i := range 10 {
					appendAll(InSystem(jita, i*10, 10))
				}
				var mu sync.Mutex
				seen := map[uint64]int{}
				var wg sync.WaitGroup
				for range 8 {
					wg.Add(1)
					go func() {
						defer GinkgoRecover()
						defer wg.Done()
						for range 20 {
							b, err := log.Fetch("same", selection.Of([]int64{jita}), 3)
							Expect(err).NotTo(HaveOccurred())
							Expect(b.ReadBodies()).To(Succeed())
							mu.Lock()
							for _, e := range b.Events {
								seen[e.ID]++
							}
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				Expect(seen).To(HaveLen(100))
				for id, n := range seen {
					Expect(n).To(Equal(1), "event %d", id)
				}
			})

			It("serves Since without touching client offsets and flags a dropped range", func() {
				appendAll(InSystem(jita, 0, 3))
				appendAll(InSystem(amarr, 3, 1))
				b, err := log.Since(selection.Of([]int64{jita, amarr}), 1, 0)
				Expect(err).NotTo(HaveOccurred())
				Expect(b.ReadBodies()).To(Succeed())
				Expect(ids(b)).To(Equal([]uint64{2, 3, 4}))
				Expect(b.Missed).To(BeFalse())
				fetch("a", []int64{jita}, 2) // a at 2
				Expect(collect().Through).To(Equal(uint64(2)))
				b, err = log.Since(selection.Of([]int64{jita}), 1, 0)
				Expect(err).NotTo(HaveOccurred())
				Expect(b.ReadBodies()).To(Succeed())
				Expect(b.Missed).To(BeTrue())
				Expect(b.Oldest).To(Equal(uint64(3)))
				Expect(ids(b)).To(Equal([]uint64{3}))
			})

			It("starts a joining client at the head and leaves an existing one alone", func() {
				appendAll(InSystem(jita, 0, 3))
				Expect(log.Join("late", []int64{jita})).To(Succeed())
				Expect(fetch("late", []int64{jita}, 0).Events).To(BeEmpty())
				appendAll(InSystem(jita, 3, 1))
				Expect(log.Join("late", []int64{jita})).To(Succeed())
				Expect(ids(fetch("late", []int64{jita}, 0))).To(Equal([]uint64{4}))
			})

			It("persists nothing of a peek and advances on demand", func() {
				appendAll(InSystem(jita, 0, 3))
				b, err := log.Peek("ws", selection.Of([]int64{jita}), 0)
				Expect(err).NotTo(HaveOccurred())
				Expect(b.ReadBodies()).To(Succeed())
				Expect(ids(b)).To(Equal([]uint64{1, 2, 3}))
				Expect(log.Advance("ws", []int64{jita}, 2)).To(Succeed())
				Expect(ids(fetch("ws", []int64{jita}, 0))).To(Equal([]uint64{3}))
			})

			It("puts an unread fetch back, except the systems a later fetch moved on", func() {
				appendAll(InSystem(jita, 0, 2))  // 1, 2
				appendAll(InSystem(amarr, 2, 1)) // 3
				Expect(ids(fetch("u", []int64{jita}, 0))).To(Equal([]uint64{1, 2}))
				lost := fetch("u", []int64{jita, amarr}, 0) // never reached the client
				Expect(ids(lost)).To(Equal([]uint64{3}))
				appendAll(InSystem(jita, 3, 1))                                  // 4
				Expect(ids(fetch("u", []int64{jita}, 0))).To(Equal([]uint64{4})) // jita moves on
				lost.Unread()
				lost.Unread() // a second call does nothing
				Expect(ids(fetch("u", []int64{jita, amarr}, 0))).To(Equal([]uint64{3}))
				Expect(fetch("u", []int64{jita, amarr}, 0).Events).To(BeEmpty())

				empty := fetch("u", []int64{jita}, 0)
				Expect(empty.Events).To(BeEmpty())
				empty.Unread() // nothing to put back
				Expect(fetch("u", []int64{jita}, 0).Events).To(BeEmpty())
			})

			It("stores a cursor with the killmails it produced", func() {
				_, err := log.Append(InSystem(jita, 0, 1), &eventlog.Cursor{Name: "r2z2", Value: 42})
				Expect(err).NotTo(HaveOccurred())
				v, ok := log.Cursor("r2z2")
				Expect(ok).To(BeTrue())
				Expect(v).To(Equal(uint64(42)))
			})

			It("publishes newly visible events in event id order", func() {
				var got []uint64
				log.SetNotify(func(evs []eventlog.Event) {
					for _, e := range evs {
						got = append(got, e.ID)
					}
				})
				appendAll(InSystem(jita, 0, 2))
				appendAll(InSystem(amarr, 2, 1))
				Expect(got).To(Equal([]uint64{1, 2, 3}))
			})
		})

		Context("following AllSystems", func() {
			const unknown = int64(31999999) // in no region of the static data
			all := []int64{eventlog.AllSystems}

			It("reads every system's events once, in order, and only new ones on the next fetch", func() {
				openLog()
				appendAll(InSystem(jita, 0, 2))    // 1, 2
				appendAll(InSystem(unknown, 2, 1)) // 3
				appendAll(InSystem(amarr, 3, 2))   // 4, 5
				b := fetch("all", all, 0)
				Expect(ids(b)).To(Equal([]uint64{1, 2, 3, 4, 5}))
				Expect(b.Events[2].SystemID).To(Equal(unknown))
				Expect(b.Head).To(Equal(uint64(5)))
				Expect(fetch("all", all, 0).Events).To(BeEmpty())
				appendAll(InSystem(dodixie, 5, 3)) // 6, 7, 8
				Expect(ids(fetch("all", all, 2))).To(Equal([]uint64{6, 7}))
				Expect(ids(fetch("all", all, 2))).To(Equal([]uint64{8}))
			})

			It("returns an event once when explicit systems are followed with it", func() {
				openLog()
				appendAll(InSystem(jita, 0, 2))  // 1, 2
				appendAll(InSystem(amarr, 2, 2)) // 3, 4
				Expect(ids(fetch("mixed", []int64{jita, eventlog.AllSystems, amarr}, 0))).To(Equal([]uint64{1, 2, 3, 4}))
				b, err := log.Since(selection.Of([]int64{amarr, eventlog.AllSystems}), 1, 0)
				Expect(err).NotTo(HaveOccurred())
				Expect(b.ReadBodies()).To(Succeed())
				Expect(ids(b)).To(Equal([]uint64{2, 3, 4}))
				b, err = log.Peek("fresh", selection.Of([]int64{eventlog.AllSystems, jita}), 3)
				Expect(err).NotTo(HaveOccurred())
				Expect(b.ReadBodies()).To(Succeed())
				Expect(ids(b)).To(Equal([]uint64{1, 2, 3}))
			})

			It("holds GC at its offset, and lets it go once read", func() {
				openLog()
				appendAll(InSystem(jita, 0, 2))  // 1, 2
				fetch("all", all, 1)             // all at 1
				appendAll(InSystem(amarr, 2, 2)) // 3, 4
				fetch("jita", []int64{jita}, 0)  // jita at 4
				Expect(collect().Through).To(Equal(uint64(1)))
				Expect(ids(fetch("all", all, 0))).To(Equal([]uint64{2, 3, 4}))
				Expect(collect().Through).To(Equal(uint64(4)))
				Expect(log.Stats().Events).To(BeZero())
			})

			It("says missed when caps dropped an event it had not read, whatever its system", func() {
				cfg.MaxEvents = 2
				openLog()
				appendAll(InSystem(jita, 0, 1)) // 1
				fetch("all", all, 0)            // all at 1
				appendAll(InSystem(amarr, 1, 1))
				appendAll(InSystem(unknown, 2, 2)) // 2..4: 2 is dropped
				b := fetch("all", all, 0)
				Expect(b.Missed).To(BeTrue())
				Expect(ids(b)).To(Equal([]uint64{3, 4}))
				Expect(fetch("all", all, 0).Missed).To(BeFalse())

				b, err := log.Since(selection.Of(all), 1, 0)
				Expect(err).NotTo(HaveOccurred())
				Expect(b.ReadBodies()).To(Succeed())
				Expect(b.Missed).To(BeTrue())
				b, err = log.Since(selection.Of(all), 2, 0)
				Expect(err).NotTo(HaveOccurred())
				Expect(b.ReadBodies()).To(Succeed())
				Expect(b.Missed).To(BeFalse())
				Expect(ids(b)).To(Equal([]uint64{3, 4}))
			})
		})

		Context("with a retention floor", func() {
			It("keeps events younger than MinRetention that every client has read, then drops them", func() {
				cfg.MinRetention = time.Hour
				openLog()
				appendAll(InSystem(jita, 0, 2)) // 1, 2
				clock.Advance(40 * time.Minute)
				appendAll(InSystem(amarr, 2, 1)) // 3
				Expect(ids(fetch("a", []int64{jita, amarr}, 0))).To(Equal([]uint64{1, 2, 3}))
				Expect(collect().Dropped).To(BeZero())
				// A new client backfills what every live client had read.
				Expect(ids(fetch("new", []int64{jita}, 0))).To(Equal([]uint64{1, 2}))
				clock.Advance(30 * time.Minute) // 1, 2 are 70 min old, 3 is 30
				fetch("a", []int64{jita, amarr}, 0)
				st := collect()
				Expect(st.Dropped).To(Equal(2))
				Expect(st.DroppedByCaps).To(BeZero())
				b := fetch("late", []int64{amarr}, 0)
				Expect(ids(b)).To(Equal([]uint64{3}))
				Expect(b.Missed).To(BeFalse())
			})
		})

		Context("with caps", func() {
			It("drops the oldest events past the event cap and tells a reader it missed some", func() {
				cfg.MaxEvents = 3
				openLog()
				appendAll(InSystem(jita, 0, 1)) // 1
				fetch("a", []int64{jita}, 0)    // a at 1
				appendAll(InSystem(jita, 1, 4)) // 2..5: 2 is dropped
				Expect(log.Stats().Events).To(Equal(3))
				b := fetch("a", []int64{jita}, 0)
				Expect(b.Missed).To(BeTrue())
				Expect(b.Oldest).To(Equal(uint64(3)))
				Expect(ids(b)).To(Equal([]uint64{3, 4, 5}))
				b = fetch("a", []int64{jita}, 0)
				Expect(b.Missed).To(BeFalse())
			})

			It("does not flag missed for a system whose dropped events the client had read", func() {
				cfg.MaxEvents = 2
				openLog()
				appendAll(InSystem(jita, 0, 1)) // 1
				fetch("a", []int64{jita, amarr}, 0)
				appendAll(InSystem(amarr, 1, 2)) // 2, 3: drops 1, read by a
				b := fetch("a", []int64{jita, amarr}, 0)
				Expect(b.Missed).To(BeFalse())
				Expect(ids(b)).To(Equal([]uint64{2, 3}))
			})

			It("drops the oldest events past the byte cap", func() {
				kms := InSystem(jita, 0, 4)
				cfg.MaxBytes = int64(len(kms[2].JSON) + len(kms[3].JSON))
				openLog()
				appendAll(kms)
				st := log.Stats()
				Expect(st.Events).To(Equal(2))
				Expect(st.Bytes).To(BeNumerically("<=", cfg.MaxBytes))
				Expect(ids(fetch("a", []int64{jita}, 0))).To(Equal([]uint64{3, 4}))
			})

			It("counts the events the caps dropped as appends came in at the next collect", func() {
				cfg.MaxEvents = 10
				openLog()
				appendAll(InSystem(jita, 0, 40))
				Expect(log.Stats().Events).To(Equal(10))
				st := collect()
				Expect(st.Dropped).To(Equal(30))
				Expect(st.DroppedByCaps).To(Equal(30))
				Expect(st.DroppedByAge).To(BeZero())
				Expect(collect().Dropped).To(BeZero()) // counted once
			})

			It("drops events older than the age cap on collect, even with no clients", func() {
				cfg.MaxAge = time.Hour
				openLog()
				appendAll(InSystem(jita, 0, 2))
				clock.Advance(30 * time.Minute)
				appendAll(InSystem(jita, 2, 1))
				clock.Advance(45 * time.Minute)
				st := collect()
				Expect(st.DroppedByCaps).To(Equal(2))
				Expect(st.DroppedByAge).To(Equal(2))
				Expect(ids(fetch("a", []int64{jita}, 0))).To(Equal([]uint64{3}))
			})
		})
	})
	return true
}
