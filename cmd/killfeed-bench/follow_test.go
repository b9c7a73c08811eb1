package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// A subscriber following alliances gets, from killfeed and from both
// references alike, every killmail with a party (victim or attacker) in it,
// once, and nothing else: the filtered figures compare the same work.
func TestFollowAlliancesDeliversTheirKillmailsOnce(t *testing.T) {
	// Two alliances among a killmail's attackers, both followed by one
	// subscriber, and a killmail without the first.
	var km, other killmail.Killmail
	var alliance, second int64
	kms := fixture.Killmails()
	for _, k := range kms {
		f := selection.Extract(k.JSON)
		if a := f.Attackers[selection.Alliance]; alliance == 0 && len(a) > 1 {
			alliance, second, km = a[0], a[1], k
		}
	}
	if alliance == 0 {
		t.Fatal("no fixture killmail with two alliances among its attackers")
	}
	for _, k := range kms {
		if !selection.Extract(k.JSON).Has(selection.SideAny, selection.Alliance, alliance) {
			other = k
			break
		}
	}
	keys := killmailKeys(nil, km, true)
	if !slices.Contains(keys, followKey{followAlliances, alliance}) || slices.Contains(killmailKeys(nil, other, true), followKey{followAlliances, alliance}) {
		t.Fatalf("killmailKeys: %v", keys)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, kind := range []string{"killfeed", "floor", "bare"} {
		t.Run(kind, func(t *testing.T) {
			tgt, err := startKind(kind, "", logger)
			if err != nil {
				t.Fatal(err)
			}
			defer tgt.stop()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := dialRaw(ctx, tgt.wsURL)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a missing event fails, not hangs
			if err := c.writeText(subscribeFrame(followAlliances, idList([]int64{alliance, second}))); err != nil {
				t.Fatal(err)
			}
			var head [256]byte
			if n, _, err := c.next(head[:]); err != nil || !strings.Contains(string(head[:n]), `"subscribed"`) {
				t.Fatalf("first frame %q, %v", head[:n], err)
			}
			var want []uint64
			for i, k := range []killmail.Killmail{km, other, km, other, km} {
				k.ID += int64(i) * 1_000_000_000 // distinct killmails for killfeed
				id, err := tgt.insert(k)
				if err != nil {
					t.Fatal(err)
				}
				if i%2 == 0 {
					want = append(want, id)
				}
			}
			for _, id := range want {
				n, _, err := c.next(head[:])
				if err != nil {
					t.Fatal(err)
				}
				if got := eventID(head[:n]); got != id {
					t.Fatalf("event_id %d, want %d", got, id)
				}
			}
		})
	}
}
