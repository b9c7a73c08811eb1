package edge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/edge/edgepb"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Proto.Actor starts this once per process and never stops it.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.(*eventStream).Subscribe.func1"),
		// A dead letter (a ping to a stopped forwarder) starts a throttle
		// timer that ends on its own a second later.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	)
}

func TestTailAnswersSinceWithinWhatItHolds(t *testing.T) {
	tl := tail{max: 3}
	for id := uint64(1); id <= 7; id++ {
		tl.add(eventlog.Event{ID: id, SystemID: int64(id % 2)})
	}
	// Held: 7 events > 2*max evicts down to max once the 7th arrives.
	if tl.floor != 4 {
		t.Fatalf("floor = %d, want 4 (events 1…4 evicted)", tl.floor)
	}
	ids := func(evs []eventlog.Event) []uint64 {
		var out []uint64
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	if got := ids(tl.since(4, []int64{1}, false, 0)); !slices.Equal(got, []uint64{5, 7}) {
		t.Fatalf("since 4 of system 1 = %v, want [5 7]", got)
	}
	if got := ids(tl.since(4, nil, true, 2)); !slices.Equal(got, []uint64{5, 6}) {
		t.Fatalf("since 4 of all, limit 2 = %v, want [5 6]", got)
	}
	tl.reset(9)
	if got := tl.since(0, nil, true, 0); len(got) != 0 || tl.floor != 9 {
		t.Fatalf("after reset: %v, floor %d", got, tl.floor)
	}
}

func TestFailuresMapBackToTheStoresErrors(t *testing.T) {
	for _, err := range []error{actors.ErrUnavailable, actors.ErrCrashed, eventlog.ErrWrite} {
		back := failureError(failure(fmt.Errorf("wrapped: %w", err)))
		if !errors.Is(back, err) {
			t.Errorf("%v came back as %v", err, back)
		}
	}
	if failureError(failure(nil)) != nil {
		t.Error("no failure came back as an error")
	}
	// The core going away is, to an edge's clients, the store unavailable.
	if back := failureError(failure(actors.ErrStopped)); !errors.Is(back, actors.ErrUnavailable) {
		t.Errorf("ErrStopped came back as %v", back)
	}
}

func TestTopicSystems(t *testing.T) {
	if s, ok := topicSystems([]string{"system:1", "system:2"}); !ok || !slices.Equal(s, []int64{1, 2}) {
		t.Errorf("systems: %v %v", s, ok)
	}
	if s, ok := topicSystems([]string{"system:1", "all"}); !ok || !slices.Equal(s, []int64{eventlog.AllSystems}) {
		t.Errorf("all: %v %v", s, ok)
	}
	if _, ok := topicSystems([]string{"region:10000002"}); ok {
		t.Error("a region topic cannot be read back by system")
	}
}

func TestNodeConfigNamesTheBadField(t *testing.T) {
	for cfg, field := range map[*NodeConfig]string{
		{Core: ""}:                                   "core:",
		{Core: "127.0.0.1:0"}:                        "core:",
		{Core: "127.0.0.1:7000", CoreGrace: -1}:      "core-grace:",
		{Core: "127.0.0.1:7000", CacheEvents: -1}:    "edge-cache:",
		{Core: "127.0.0.1:7000", PingInterval: -1e9}: "core-ping:",
	} {
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%+v: %v, want it to name %s", *cfg, err, field)
		}
	}
	if err := (NodeConfig{Core: "core.internal:7000"}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// coreHarness is a core's service and edge endpoint on one actor system,
// with a probe actor standing in for an edge's relay (no remote: the
// messages are the wire's, delivered locally).
type coreHarness struct {
	svc    *actors.Service
	core   *Core
	root   *actor.RootContext
	relay  *actor.PID
	pushed chan *edgepb.Event
}

func startCoreHarness(t *testing.T, cfg CoreConfig) *coreHarness {
	t.Helper()
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := actors.Start(log, false, actors.Config{})
	if err != nil {
		t.Fatal(err)
	}
	core, err := StartCore(svc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &coreHarness{svc: svc, core: core, root: svc.System().Root, pushed: make(chan *edgepb.Event, 1024)}
	h.relay = h.root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch msg := ctx.Message().(type) {
		case *edgepb.Events:
			for _, e := range msg.GetEvents() {
				h.pushed <- e
			}
		case *edgepb.Ping: // a round trip: what came before was handled
			ctx.Respond(&edgepb.Pong{})
		}
	}))
	t.Cleanup(func() {
		core.Stop()
		svc.Stop()
		_ = log.Close()
	})
	return h
}

func (h *coreHarness) ask(t *testing.T, to *actor.PID, msg any) any {
	t.Helper()
	res, err := h.root.RequestFuture(to, msg, 5*time.Second).Result()
	if err != nil {
		t.Fatalf("%T: %v", msg, err)
	}
	return res
}

func (h *coreHarness) endpoint() *actor.PID { return h.svc.System().NewLocalPID(DefaultEndpointName) }

func (h *coreHarness) insert(t *testing.T, system int64, kms ...killmail.Killmail) []uint64 {
	t.Helper()
	for i := range kms {
		kms[i].SystemID = system
	}
	res, err := h.svc.Insert(context.Background(), kms, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, r := range res {
		ids = append(ids, r.EventID)
	}
	return ids
}

func TestCoreRefusesAnotherProtocolVersion(t *testing.T) {
	h := startCoreHarness(t, CoreConfig{})
	res := h.ask(t, h.endpoint(), &edgepb.Hello{Version: edgepb.Version + 1, RelayAddress: h.relay.Address, RelayId: h.relay.Id}).(*edgepb.HelloResult)
	if res.GetFailure().GetCode() != edgepb.Code_CODE_VERSION || res.GetForwarderId() != "" {
		t.Fatalf("hello of version %d: %v", edgepb.Version+1, res)
	}
}

func TestCoreForwarderPushesOnlyFollowedTopicsAfterTheHead(t *testing.T) {
	h := startCoreHarness(t, CoreConfig{})
	kms := fixture.Killmails()
	const jita, amarr = 30000142, 30002187
	before := h.insert(t, jita, kms[0])

	hello := h.ask(t, h.endpoint(), &edgepb.Hello{Version: edgepb.Version, RelayAddress: h.relay.Address, RelayId: h.relay.Id}).(*edgepb.HelloResult)
	if hello.GetFailure() != nil {
		t.Fatal(hello.GetFailure())
	}
	fwd := h.svc.System().NewLocalPID(hello.GetForwarderId())
	fr := h.ask(t, fwd, &edgepb.Follow{Topics: []string{actors.SystemTopic(jita)}}).(*edgepb.FollowResult)
	if fr.GetHead() != before[0] {
		t.Fatalf("follow head = %d, want %d", fr.GetHead(), before[0])
	}
	h.insert(t, amarr, kms[1])
	want := h.insert(t, jita, kms[2], kms[3])
	for _, id := range want {
		select {
		case e := <-h.pushed:
			if e.GetEventId() != id || e.GetSystemId() != jita || len(e.GetKillmail()) == 0 {
				t.Fatalf("pushed %d/%d, want event %d of %d", e.GetEventId(), e.GetSystemId(), id, jita)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d was not pushed", id)
		}
	}
	// Unfollowed: once the forwarder handled the Unfollow (a Ping after it
	// is answered), PubSub its Unsubscribe (a round trip through PubSub),
	// and PubSub, forwarder and relay the next jita event, none was pushed.
	h.root.Send(fwd, &edgepb.Unfollow{Topics: []string{actors.SystemTopic(jita)}})
	h.ask(t, fwd, &edgepb.Ping{})
	pubsubRoundTrip := &actors.Unsubscribe{Subscriber: &actors.PIDSubscriber{PID: h.relay}, Topics: []string{"none"}}
	h.ask(t, h.svc.PubSub(), pubsubRoundTrip)
	last := h.insert(t, jita, kms[4])
	h.ask(t, h.svc.PubSub(), pubsubRoundTrip)
	h.ask(t, fwd, &edgepb.Ping{})
	h.ask(t, h.relay, &edgepb.Ping{})
	select {
	case e := <-h.pushed:
		t.Fatalf("pushed %d after unfollow", e.GetEventId())
	default:
	}
	pong := h.ask(t, fwd, &edgepb.Ping{}).(*edgepb.Pong)
	if pong.GetHead() != last[0] || pong.GetEvents() != 5 {
		t.Fatalf("pong %v, want head %d and 5 events", pong, last[0])
	}
}

func TestCoreAnswersStoreRequestsLikeTheStore(t *testing.T) {
	h := startCoreHarness(t, CoreConfig{})
	kms := fixture.Killmails()[:3]
	const jita = 30000142
	ins := h.ask(t, h.endpoint(), &edgepb.Insert{Killmails: []*edgepb.Killmail{
		{Id: kms[0].ID, SystemId: jita, Json: kms[0].JSON},
		{Id: kms[1].ID, SystemId: jita, Json: kms[1].JSON},
		{Id: kms[0].ID, SystemId: jita, Json: kms[0].JSON},
	}}).(*edgepb.InsertResult)
	if ins.GetFailure() != nil || len(ins.GetResults()) != 3 || !ins.GetResults()[2].GetDuplicate() {
		t.Fatalf("insert: %v", ins)
	}
	bad := h.ask(t, h.endpoint(), &edgepb.Insert{Killmails: []*edgepb.Killmail{{Id: 1}}}).(*edgepb.InsertResult)
	if bad.GetFailure().GetCode() != edgepb.Code_CODE_BAD_KILLMAIL {
		t.Fatalf("insert without a system: %v", bad)
	}
	f := h.ask(t, h.endpoint(), &edgepb.Fetch{Kind: edgepb.FetchKind_FETCH_FOR_CLIENT, ClientId: "c", Systems: []int64{jita}, Limit: 1}).(*edgepb.FetchResult)
	if len(f.GetEvents()) != 1 || f.GetEvents()[0].GetEventId() != 1 || f.GetHead() != 2 {
		t.Fatalf("fetch: %v", f)
	}
	adv := h.ask(t, h.endpoint(), &edgepb.Advance{ClientId: "c", Systems: []int64{jita}, Through: 2}).(*edgepb.AdvanceResult)
	if adv.GetFailure() != nil {
		t.Fatal(adv.GetFailure())
	}
	b, err := h.svc.FetchForClient(context.Background(), "c", selection.Of([]int64{jita}))
	if err != nil || len(b.Events) != 0 {
		t.Fatalf("after the edge's advance: %v %v", b.Events, err)
	}
	since := h.ask(t, h.endpoint(), &edgepb.Fetch{Kind: edgepb.FetchKind_FETCH_SINCE, Systems: []int64{jita}, After: 1}).(*edgepb.FetchResult)
	if len(since.GetEvents()) != 1 || since.GetEvents()[0].GetEventId() != 2 {
		t.Fatalf("since: %v", since)
	}
}

func TestCoreForwarderDropsAnEdgeTooFarBehind(t *testing.T) {
	h := startCoreHarness(t, CoreConfig{MaxUnacked: 2})
	kms := fixture.Killmails()
	const jita = 30000142
	hello := h.ask(t, h.endpoint(), &edgepb.Hello{Version: edgepb.Version, RelayAddress: h.relay.Address, RelayId: h.relay.Id}).(*edgepb.HelloResult)
	fwd := h.svc.System().NewLocalPID(hello.GetForwarderId())
	h.ask(t, fwd, &edgepb.Follow{Topics: []string{actors.SystemTopic(jita)}})
	ids := h.insert(t, jita, kms[0], kms[1])
	for range ids {
		<-h.pushed
	}
	// Acknowledged: two more fit.
	h.ask(t, fwd, &edgepb.Ping{LastEventId: ids[1]})
	ids = h.insert(t, jita, kms[2], kms[3])
	for range ids {
		<-h.pushed
	}
	// Not acknowledged: the next one is one too many.
	h.insert(t, jita, kms[4])
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := h.root.RequestFuture(fwd, &edgepb.Ping{}, time.Second).Result()
		if _, dead := res.(*actor.DeadLetterResponse); dead || err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the forwarder still runs past MaxUnacked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case e := <-h.pushed:
		t.Fatalf("pushed %d past MaxUnacked", e.GetEventId())
	default:
	}
}

func TestCoreHoldsUnreadTokensForAWhileAndBounded(t *testing.T) {
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	const jita = 30000142
	kms := fixture.Killmails()[:4]
	for i := range kms {
		kms[i].SystemID = jita
	}
	if _, err := log.Append(kms, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	u := newUnreads(30*time.Second, 2)
	u.now = func() time.Time { return now }
	fetch := func(client string) eventlog.Batch {
		b, err := log.Fetch(client, selection.Selection{Systems: []int64{jita}}, 1)
		if err != nil || len(b.Events) != 1 {
			t.Fatalf("fetch %s: %v %v", client, b.Events, err)
		}
		return b
	}
	first := func(client string) uint64 { return fetch(client).Events[0].ID }

	// Held: put back.
	a := u.hold(fetch("a"))
	u.unread(a)
	if id := first("a"); id != 1 {
		t.Fatalf("after unread, a reads %d, want 1 again", id)
	}
	// Past the hold: forgotten, the offsets stay.
	b := u.hold(fetch("b"))
	now = now.Add(31 * time.Second)
	u.hold(fetch("c"))
	u.unread(b)
	if id := first("b"); id != 2 {
		t.Fatalf("an expired token put b back: reads %d, want 2", id)
	}
	// Past the bound: the oldest goes.
	d := u.hold(fetch("d"))
	u.hold(fetch("e"))
	u.hold(fetch("f"))
	u.unread(d)
	if id := first("d"); id != 2 {
		t.Fatalf("a token past the bound put d back: reads %d, want 2", id)
	}
	if len(u.held) > 2 {
		t.Fatalf("%d tokens held, bound 2", len(u.held))
	}
	// A token of nothing (another incarnation's, or 0) is ignored.
	u.unread(0)
	u.unread(12345)
}
