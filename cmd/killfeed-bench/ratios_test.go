package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// The due count of a run is what the servers deliver: subscribers
// following corporations get, from killfeed and the floor alike, exactly
// as many killmails as fanOut says, so that "delivered every due delivery"
// tells a server that kept up from one that did not.
func TestDueCountsWhatIsDelivered(t *testing.T) {
	kms := fixture.Killmails()
	// The last killmail goes to every subscriber: each follows one of its
	// corporations.
	var last killmail.Killmail
	var corps []int64
	for _, km := range kms {
		f := selection.Extract(km.JSON)
		ids := slices.Compact(slices.Sorted(slices.Values(append([]int64{f.Victim[selection.Corporation]}, f.Attackers[selection.Corporation]...))))
		ids = slices.DeleteFunc(ids, func(id int64) bool { return id == 0 })
		if len(ids) >= 3 {
			last, corps = km, ids[:3]
			break
		}
	}
	if corps == nil {
		t.Fatal("no fixture killmail with three corporations")
	}
	d := &day{kms: kms}
	followed := [][]int64{{corps[0]}, {corps[1]}, {corps[2]}}
	fan := d.fanOut(followCorporations, followed, len(followed))
	want := due(fan, len(kms))
	if want == 0 {
		t.Fatal("nothing due: the test shows nothing")
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	lastFrame := map[string][]byte{} // the last killmail's frame, as each pushed it
	for _, kind := range []string{"killfeed", "floor"} {
		t.Run(kind, func(t *testing.T) {
			tgt, err := startKind(kind, "", logger)
			if err != nil {
				t.Fatal(err)
			}
			defer tgt.stop()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var conns []*rawWS
			for _, ids := range followed {
				c, err := dialRaw(ctx, tgt.wsURL)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a missing event fails, not hangs
				if err := c.writeText(subscribeFrame(followCorporations, idList(ids))); err != nil {
					t.Fatal(err)
				}
				var head [64]byte
				if _, _, err := c.next(head[:]); err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			var lastID uint64
			for i, km := range append(slices.Clone(kms), last) {
				km.ID = 5_000_000_000 + int64(i) // distinct killmails for killfeed
				if lastID, err = tgt.insert(km); err != nil {
					t.Fatal(err)
				}
			}
			got := 0
			head := make([]byte, 1<<20)
			for _, c := range conns {
				for {
					n, _, err := c.next(head)
					if err != nil {
						t.Fatal(err)
					}
					if eventID(head[:n]) == lastID {
						lastFrame[kind] = bytes.Clone(head[:n])
						break
					}
					got++
				}
			}
			if got != want {
				t.Fatalf("%d deliveries before the last killmail, %d due", got, want)
			}
		})
	}
	// Both pushed the same bytes (the event ids aside): the floor's work is
	// the least for killfeed's deliveries, names included.
	strip := func(b []byte) []byte { return bytes.Replace(b, strconv.AppendUint(nil, eventID(b), 10), nil, 1) }
	if a, b := strip(lastFrame["killfeed"]), strip(lastFrame["floor"]); !bytes.Equal(a, b) {
		t.Fatalf("killfeed pushed\n%s\nthe floor\n%s", a, b)
	}
}
