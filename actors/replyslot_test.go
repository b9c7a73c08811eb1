package actors

import (
	"testing"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/selection"
)

// An answer that comes after its asker gave up is put back: the client
// reads its events again. One that comes first is handed over once.
func TestReplySlotAnswerAfterAbandonIsUnread(t *testing.T) {
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = log.Close() }()
	kms := fixture.Killmails()[:5]
	if _, err := log.Append(kms, nil); err != nil {
		t.Fatal(err)
	}
	sel := selection.All()
	b, err := log.Fetch("late", sel, 0)
	if err != nil || len(b.Events) != len(kms) {
		t.Fatalf("fetch: %d events, %v", len(b.Events), err)
	}
	slot := &replySlot{ch: make(chan *FetchResult, 1)}
	if !slot.abandon() {
		t.Fatal("abandon of a slot not answered failed")
	}
	slot.answer(&FetchResult{Batch: b})
	if len(slot.ch) != 0 {
		t.Fatal("an abandoned slot was handed the answer")
	}
	again, err := log.Fetch("late", sel, 0)
	if err != nil || len(again.Events) != len(kms) {
		t.Fatalf("after the late answer: %d events, %v; want %d again", len(again.Events), err, len(kms))
	}

	slot = &replySlot{ch: make(chan *FetchResult, 1)}
	slot.answer(&FetchResult{Batch: again})
	if slot.abandon() {
		t.Fatal("abandon won over an answer already given")
	}
	if res := <-slot.ch; len(res.Batch.Events) != len(kms) {
		t.Fatalf("handed %d events", len(res.Batch.Events))
	}
	if after, _ := log.Fetch("late", sel, 0); len(after.Events) != 0 {
		t.Fatalf("an answer handed over was put back: %d events", len(after.Events))
	}
}
