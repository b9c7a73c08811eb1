package actors

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/killfeed/killfeed/eventlog"
)

// Every subscriber that asks with the key gets the same bytes, built from
// the event; once one build is kept, asking builds nothing more. Another
// key never gets them.
func TestEncodedIsSharedBySubscribers(t *testing.T) {
	ev := &KillmailInserted{EventID: 9, SystemID: 30000142, Killmail: []byte(`{"killmail_id":1}`)}
	native, other := new(EncodingKey), new(EncodingKey)
	var builds atomic.Int32
	build := func(e eventlog.Event) []byte {
		builds.Add(1)
		return strconv.AppendUint(append([]byte(nil), e.Killmail...), e.ID, 10)
	}
	got := make([][]byte, 16)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = ev.Encoded(native, build) })
	}
	wg.Wait()
	for _, b := range got {
		if string(b) != `{"killmail_id":1}9` || &b[0] != &got[0][0] {
			t.Fatalf("got %q at %p, want the one shared encoding %q at %p", b, &b[0], got[0], &got[0][0])
		}
	}
	n := builds.Load()
	if b := ev.Encoded(native, build); &b[0] != &got[0][0] || builds.Load() != n {
		t.Fatalf("a later call built again (%d builds, then %d)", n, builds.Load())
	}
	for _, key := range []*EncodingKey{other, nil} {
		b := ev.Encoded(key, func(eventlog.Event) []byte { return []byte("mine") })
		if string(b) != "mine" {
			t.Fatalf("key %p got %q, not its own encoding", key, b)
		}
	}
}

// A few keys (a protocol with and without names, …) are each built once;
// past encodedKeys, a key is built at every call.
func TestEncodedKeepsAFewKeys(t *testing.T) {
	ev := &KillmailInserted{EventID: 9, Killmail: []byte(`{}`)}
	keys := make([]*EncodingKey, encodedKeys+1)
	builds := make([]int, len(keys))
	for i := range keys {
		keys[i] = new(EncodingKey)
	}
	for range 3 {
		for i, k := range keys {
			b := ev.Encoded(k, func(eventlog.Event) []byte { builds[i]++; return []byte(strconv.Itoa(i)) })
			if string(b) != strconv.Itoa(i) {
				t.Fatalf("key %d got %q", i, b)
			}
		}
	}
	for i := range encodedKeys {
		if builds[i] != 1 {
			t.Errorf("key %d built %d times, want 1", i, builds[i])
		}
	}
	if builds[encodedKeys] != 3 {
		t.Errorf("the key past the kept ones built %d times, want 3", builds[encodedKeys])
	}
}
