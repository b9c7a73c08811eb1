// Command follow is a killfeed client that loses nothing: it backfills over
// HTTP (GET /api/killfeed with a client_id), then follows GET /api/ws with
// since = the last event it has, and after a dropped socket reconnects with
// since again, so that no event is lost or repeated.
//
//	go run ./examples/follow -url http://127.0.0.1:8080 -systems 30000142,30002187
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// event is a killmail as both the poll API and the websocket deliver it.
type event struct {
	EventID  uint64          `json:"event_id"`
	SystemID int64           `json:"system_id"`
	Killmail json.RawMessage `json:"killmail"`
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "killfeed base URL")
	systemsFlag := flag.String("systems", "30000142", "comma-separated solar system ids")
	client := flag.String("client", "follow-example", "client_id used for the HTTP backfill")
	flag.Parse()
	var systems []int64
	for _, s := range strings.Split(*systemsFlag, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			log.Fatalf("systems: %q is not a system id", s)
		}
		systems = append(systems, id)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	since, err := backfill(ctx, *base, *client, systems)
	if err != nil {
		log.Fatalf("backfill: %v", err)
	}
	log.Printf("backfilled through event %d; following", since)
	for backoff := time.Second; ctx.Err() == nil; {
		start := time.Now()
		err := follow(ctx, *base, systems, &since)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		log.Printf("socket dropped (%v); resuming after event %d in %s", err, since, backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func handle(ev event) {
	var km struct {
		KillmailID int64  `json:"killmail_id"`
		Time       string `json:"killmail_time"`
	}
	_ = json.Unmarshal(ev.Killmail, &km)
	fmt.Printf("event %d system %d killmail %d at %s\n", ev.EventID, ev.SystemID, km.KillmailID, km.Time)
}

// backfill polls until caught up and returns the position to follow from:
// every event of the systems up to it was handled.
func backfill(ctx context.Context, base, client string, systems []int64) (uint64, error) {
	q := url.Values{"client_id": {client}, "limit": {"1000"}}
	for _, s := range systems {
		q.Add("systems[]", strconv.FormatInt(s, 10))
	}
	var last uint64
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/killfeed?"+q.Encode(), nil)
		if err != nil {
			return 0, err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		var page struct {
			Events []event `json:"events"`
			Missed bool    `json:"missed"`
			Head   uint64  `json:"head"`
			Error  string  `json:"error"`
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if err != nil {
			return 0, err
		}
		if res.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s: %s", res.Status, page.Error)
		}
		if page.Missed {
			log.Printf("some events were dropped by retention before this client read them")
		}
		for _, ev := range page.Events {
			handle(ev)
			last = ev.EventID
		}
		if len(page.Events) < 1000 {
			// A full poll moved the offsets to the head: nothing of these
			// systems up to it is left.
			return max(last, page.Head), nil
		}
	}
}

// follow subscribes with since and handles events until the socket drops;
// since always holds the last event handled.
func follow(ctx context.Context, base string, systems []int64, since *uint64) error {
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/ws", nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20) // the largest killmails are ~100 KB
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "systems": systems, "since": *since})
	if err := c.Write(ctx, websocket.MessageText, sub); err != nil {
		return err
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return err
		}
		var f struct {
			Type   string `json:"type"`
			Missed bool   `json:"missed"`
			Head   uint64 `json:"head"`
			Error  string `json:"error"`
			event
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		switch f.Type {
		case "subscribed":
			if f.Missed {
				log.Printf("some events after %d were dropped by retention while away", *since)
			}
		case "killmail":
			if f.EventID <= *since {
				continue // cannot happen with since; kept as a guard
			}
			handle(f.event)
			*since = f.EventID
		case "error":
			return errors.New(f.Error)
		}
	}
}
