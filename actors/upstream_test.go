package actors_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
)

// fakeUpstream is an edge's store that records what PubSub asks it to
// follow; refuse makes it answer FollowTopics with ErrUnavailable.
type fakeUpstream struct {
	mu               sync.Mutex
	follows          [][]string
	unfollows        [][]string
	refuse           bool
	pubsub           *actor.PID
	unfollowReceived chan struct{}
}

func (f *fakeUpstream) producer(pubsub *actor.PID) actor.Producer {
	f.pubsub = pubsub
	return func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch msg := ctx.Message().(type) {
			case *actors.FollowTopics:
				f.mu.Lock()
				f.follows = append(f.follows, msg.Topics)
				refuse := f.refuse
				f.mu.Unlock()
				if refuse {
					ctx.Respond(&actors.FollowTopicsResult{Err: actors.ErrUnavailable})
					return
				}
				ctx.Respond(&actors.FollowTopicsResult{})
			case *actors.UnfollowTopics:
				f.mu.Lock()
				f.unfollows = append(f.unfollows, msg.Topics)
				f.mu.Unlock()
				f.unfollowReceived <- struct{}{}
			}
		})
	}
}

func (f *fakeUpstream) counts() (follows, unfollows [][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.follows), slices.Clone(f.unfollows)
}

func startFakeEdge(t *testing.T) (*actors.Service, *fakeUpstream) {
	t.Helper()
	up := &fakeUpstream{unfollowReceived: make(chan struct{}, 16)}
	svc, err := actors.StartEdge(actors.Config{}, actors.Upstream{
		Store: up.producer,
		Stats: func() eventlog.Stats { return eventlog.Stats{Head: 7} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	return svc, up
}

func TestEdgePubSubFollowsATopicUpstreamOnceWhateverItsSubscribers(t *testing.T) {
	svc, up := startFakeEdge(t)
	ctx := context.Background()
	var queues []*actors.Queue
	for range 10 {
		q, err := svc.SubscribeQueue(ctx, 0, nil, "system:1", "system:2")
		if err != nil {
			t.Fatal(err)
		}
		queues = append(queues, q)
	}
	follows, unfollows := up.counts()
	if len(follows) != 1 || !slices.Equal(follows[0], []string{"system:1", "system:2"}) || len(unfollows) != 0 {
		t.Fatalf("follows %v, unfollows %v: want one follow of both topics", follows, unfollows)
	}
	// Events sent by the store reach every local subscriber once.
	svc.System().Root.Send(up.pubsub, &actors.KillmailInserted{EventID: 9, SystemID: 1, Killmail: []byte(`{}`)})
	for _, q := range queues {
		select {
		case <-q.Ready():
		case <-time.After(5 * time.Second):
			t.Fatal("event not delivered")
		}
		if evs, _, _ := q.Take(nil); len(evs) != 1 || evs[0].EventID != 9 {
			t.Fatalf("took %v", evs)
		}
	}
	// The topic goes upstream again only when its last subscriber leaves.
	for _, q := range queues[1:] {
		if err := q.Remove(ctx, "system:2"); err != nil {
			t.Fatal(err)
		}
	}
	if _, unfollows := up.counts(); len(unfollows) != 0 {
		t.Fatalf("unfollowed %v while a subscriber remains", unfollows)
	}
	if err := queues[0].Remove(ctx, "system:2"); err != nil {
		t.Fatal(err)
	}
	<-up.unfollowReceived
	if _, unfollows := up.counts(); len(unfollows) != 1 || !slices.Equal(unfollows[0], []string{"system:2"}) {
		t.Fatalf("unfollows %v, want [[system:2]]", unfollows)
	}
	if st := svc.Stats(); st.Head != 7 {
		t.Fatalf("Stats come from Upstream.Stats: %+v", st)
	}
}

func TestEdgePubSubRefusesASubscriberItCouldNotFollowUpstream(t *testing.T) {
	svc, up := startFakeEdge(t)
	up.mu.Lock()
	up.refuse = true
	up.mu.Unlock()
	_, err := svc.SubscribeQueue(context.Background(), 0, nil, "system:1")
	if !errors.Is(err, actors.ErrUnavailable) {
		t.Fatalf("subscribe while upstream refuses: %v", err)
	}
	// The topic is let go again upstream.
	<-up.unfollowReceived
	up.mu.Lock()
	up.refuse = false
	up.mu.Unlock()
	q, err := svc.SubscribeQueue(context.Background(), 0, nil, "system:1")
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
}

func TestEdgePubSubDropsEverySubscriberOnRequest(t *testing.T) {
	svc, up := startFakeEdge(t)
	q, err := svc.SubscribeQueue(context.Background(), 0, nil, "system:1")
	if err != nil {
		t.Fatal(err)
	}
	svc.System().Root.Send(svc.PubSub(), &actors.DropSubscribers{Err: actors.ErrRestarted})
	select {
	case <-q.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("not dropped")
	}
	if _, ended, err := q.Take(nil); !ended || !errors.Is(err, actors.ErrRestarted) {
		t.Fatalf("ended %v, err %v", ended, err)
	}
	<-up.unfollowReceived
}
