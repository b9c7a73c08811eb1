// Package storetest holds the contract of the store actor: one spec body
// that every implementation of the store messages must pass, run against
// the KillmailStore of a single node and against an edge's relay, which
// answers them by asking its core (as eventlog/logtest does for the
// eventlog backends). A client of actors.Service cannot tell the two
// apart: same batches, same errors, same offsets.
package storetest

import (
	"context"
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/logtest"
	"github.com/killfeed/killfeed/selection"
)

// specTimeout bounds one spec.
const specTimeout = 30 * time.Second

// Target is a running implementation to check.
type Target struct {
	// Svc is the service whose store actor the specs talk to: a single
	// node's, or an edge's.
	Svc *actors.Service
	// Core is the service that owns the log: Svc itself on a single node,
	// the core behind an edge. The specs insert there and stall its store.
	Core *actors.Service
}

// Starter starts a fresh target whose log has cfg, ready for requests; it
// stops it with DeferCleanup.
type Starter func(cfg eventlog.Config) Target

// Specs registers the contract for an implementation; it returns true so
// that a suite can call it at package level (var _ = Specs(…)).
func Specs(name string, start Starter) bool {
	Describe("the store contract on "+name, func() {
		const jita, amarr = int64(30000142), int64(30002187)
		var (
			t   Target
			cfg eventlog.Config
		)
		ids := func(b eventlog.Batch) []uint64 {
			out := make([]uint64, len(b.Events))
			for i, e := range b.Events {
				out[i] = e.ID
			}
			return out
		}
		insert := func(ctx context.Context, system int64, from, n int) []uint64 {
			GinkgoHelper()
			res, err := t.Core.Insert(ctx, logtest.InSystem(system, from, n), nil)
			Expect(err).NotTo(HaveOccurred())
			out := make([]uint64, len(res))
			for i, r := range res {
				out[i] = r.EventID
			}
			return out
		}
		fetch := func(ctx context.Context, msg any) eventlog.Batch {
			GinkgoHelper()
			b, err := t.Svc.Fetch(ctx, msg)
			Expect(err).NotTo(HaveOccurred())
			return b
		}
		JustBeforeEach(func() { t = start(cfg) })
		BeforeEach(func() { cfg = eventlog.Config{} })

		It("reads a client's unread events once, peeks without advancing, and advances on request", func(ctx SpecContext) {
			want := insert(ctx, jita, 0, 3)
			insert(ctx, amarr, 3, 1)
			Expect(ids(fetch(ctx, &actors.PeekForClient{ClientID: "c", Selection: selection.Selection{Systems: []int64{jita}}}))).To(Equal(want))
			b := fetch(ctx, &actors.FetchForClient{ClientID: "c", Selection: selection.Selection{Systems: []int64{jita}}, Limit: 2})
			Expect(ids(b)).To(Equal(want[:2]))
			Expect(b.Head).To(Equal(want[2] + 1))
			Expect(b.Events[0].Killmail).To(MatchJSON(logtest.InSystem(jita, 0, 1)[0].JSON))
			Expect(ids(fetch(ctx, &actors.FetchOneEvent{ClientID: "c", Selection: selection.Selection{Systems: []int64{jita}}}))).To(Equal(want[2:]))
			Expect(fetch(ctx, &actors.FetchForClient{ClientID: "c", Selection: selection.Selection{Systems: []int64{jita}}}).Events).To(BeEmpty())

			more := insert(ctx, jita, 4, 2)
			Expect(t.Svc.Advance(ctx, "c", []int64{jita}, more[0])).To(Succeed())
			Expect(ids(fetch(ctx, &actors.FetchForClient{ClientID: "c", Selection: selection.Selection{Systems: []int64{jita}}}))).To(Equal(more[1:]))
			Expect(ids(fetch(ctx, &actors.FetchSince{Selection: selection.Selection{Systems: []int64{jita}}, After: want[1]}))).To(Equal(append(want[2:], more...)))
		}, SpecTimeout(specTimeout))

		It("starts a new queue at the head when asked to", func(ctx SpecContext) {
			insert(ctx, jita, 0, 2)
			b := fetch(ctx, &actors.FetchOneEvent{ClientID: "q", Selection: selection.Selection{Systems: []int64{jita}}, NewAtHead: true})
			Expect(b.Events).To(BeEmpty())
			later := insert(ctx, jita, 2, 1)
			Expect(ids(fetch(ctx, &actors.FetchOneEvent{ClientID: "q", Selection: selection.Selection{Systems: []int64{jita}}, NewAtHead: true}))).To(Equal(later))
		}, SpecTimeout(specTimeout))

		It("binds a client to its first owner: another owner gets ErrNotOwner on every read and moves no offset", func(ctx SpecContext) {
			want := insert(ctx, jita, 0, 3)
			Expect(ids(fetch(ctx, &actors.FetchForClient{ClientID: "o", Selection: selection.Selection{Systems: []int64{jita}}, Limit: 1, Owner: "alpha"}))).To(Equal(want[:1]))
			for _, msg := range []any{
				&actors.FetchForClient{ClientID: "o", Selection: selection.Selection{Systems: []int64{jita}}, Owner: "beta"},
				&actors.FetchOneEvent{ClientID: "o", Selection: selection.Selection{Systems: []int64{jita}}, Owner: "beta"},
				&actors.FetchOneEvent{ClientID: "o", Selection: selection.Selection{Systems: []int64{jita}}, Owner: "beta", NewAtHead: true},
				&actors.PeekForClient{ClientID: "o", Selection: selection.Selection{Systems: []int64{jita}}, Owner: "beta"},
			} {
				_, err := t.Svc.Fetch(ctx, msg)
				Expect(errors.Is(err, eventlog.ErrNotOwner)).To(BeTrue(), "%T: %v", msg, err)
			}
			Expect(ids(fetch(ctx, &actors.FetchForClient{ClientID: "o", Selection: selection.Selection{Systems: []int64{jita}}, Owner: "alpha"}))).To(Equal(want[1:]))
		}, SpecTimeout(specTimeout))

		Context("with a cap on clients", func() {
			BeforeEach(func() { cfg.MaxClients = 1 })

			It("refuses a new client past it with ErrTooManyClients; the existing one reads on", func(ctx SpecContext) {
				want := insert(ctx, jita, 0, 1)
				Expect(ids(fetch(ctx, &actors.FetchForClient{ClientID: "first", Selection: selection.Selection{Systems: []int64{jita}}}))).To(Equal(want))
				_, err := t.Svc.Fetch(ctx, &actors.FetchForClient{ClientID: "second", Selection: selection.Selection{Systems: []int64{jita}}})
				Expect(errors.Is(err, eventlog.ErrTooManyClients)).To(BeTrue(), "%v", err)
				_, err = t.Svc.Fetch(ctx, &actors.FetchOneEvent{ClientID: "third", Selection: selection.Selection{Systems: []int64{jita}}, Owner: "alpha"})
				Expect(errors.Is(err, eventlog.ErrTooManyClients)).To(BeTrue(), "%v", err)
				more := insert(ctx, jita, 1, 1)
				Expect(ids(fetch(ctx, &actors.FetchForClient{ClientID: "first", Selection: selection.Selection{Systems: []int64{jita}}}))).To(Equal(more))
			}, SpecTimeout(specTimeout))
		})

		It("puts an answer back when its reader could not deliver it (Batch.Unread)", func(ctx SpecContext) {
			want := insert(ctx, jita, 0, 3)
			b := fetch(ctx, &actors.FetchForClient{ClientID: "u", Selection: selection.Selection{Systems: []int64{jita}}})
			Expect(ids(b)).To(Equal(want))
			b.Unread()
			Expect(ids(fetch(ctx, &actors.FetchForClient{ClientID: "u", Selection: selection.Selection{Systems: []int64{jita}}, Limit: 2}))).To(Equal(want[:2]))
			one := fetch(ctx, &actors.FetchOneEvent{ClientID: "u", Selection: selection.Selection{Systems: []int64{jita}}})
			Expect(ids(one)).To(Equal(want[2:]))
			one.Unread()
			Expect(ids(fetch(ctx, &actors.FetchOneEvent{ClientID: "u", Selection: selection.Selection{Systems: []int64{jita}}}))).To(Equal(want[2:]))
		}, SpecTimeout(specTimeout))

		It("advances nothing for a read whose asker gave up before the store got to it", func(ctx SpecContext) {
			want := insert(ctx, jita, 0, 2)
			// The store sleeps past the read's deadline: the read waits
			// behind the stall in its mailbox.
			t.Core.System().Root.Send(t.Core.Store(), &actors.Stall{D: 500 * time.Millisecond})
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, err := t.Svc.Fetch(short, &actors.FetchForClient{ClientID: "late", Selection: selection.Selection{Systems: []int64{jita}}})
			Expect(errors.Is(err, actors.ErrUnavailable)).To(BeTrue(), "%v", err)
			// Once the store is back, the client reads everything.
			Eventually(func(g Gomega) {
				b, err := t.Svc.Fetch(ctx, &actors.FetchForClient{ClientID: "late", Selection: selection.Selection{Systems: []int64{jita}}})
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(ids(b)).To(Equal(want))
			}).WithContext(ctx).Should(Succeed())
		}, SpecTimeout(specTimeout))
	})
	return true
}
