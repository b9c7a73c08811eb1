package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fakeesi"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/names"
	"github.com/killfeed/killfeed/transport"
)

var jsonUnmarshal = json.Unmarshal

// target is a server under load: killfeed (in-process or remote) or the
// bare fan-out.
type target struct {
	wsURL string
	// local says the server runs in this process, so its memory is measured.
	local  bool
	insert func(killmail.Killmail) (uint64, error)
	stop   func()
}

// namesMode is -names: static, esi or off.
var namesMode = "static"

// referenceNames is the renderer of a reference's killmails (see
// referenceBody), one per reference: it keeps renders by event id.
func referenceNames() *names.Renderer {
	if namesMode != "static" {
		return nil
	}
	return names.NewRenderer(nil, nil, 0)
}

// referenceBody is the killmail the floor and the bare fan-out push as
// event id: with -names static (the default) the one killfeed pushes, ship
// and system names added by r, so that both sides send the same bytes (a
// named killmail is about a quarter longer); as stored otherwise, r nil
// (with -names esi killfeed also names characters, corporations and
// alliances, which the references do not).
func referenceBody(r *names.Renderer, id uint64, km killmail.Killmail) []byte {
	if r == nil {
		return km.JSON
	}
	return r.Render(eventlog.Event{ID: id, SystemID: km.SystemID, Killmail: km.JSON})
}

// ingestURL, when set, is where an external target's killmails are posted
// (the core, when -url lists edge nodes).
var ingestURL string

func startTarget(url string, logger *slog.Logger) (*target, error) {
	if url != "" {
		// Several comma-separated URLs (edge nodes): subscribers are spread
		// over them; killmails go to ingestURL, or the first.
		var ws []string
		for _, u := range strings.Split(url, ",") {
			ws = append(ws, "ws"+strings.TrimPrefix(strings.TrimRight(u, "/"), "http")+"/api/ws")
		}
		base := strings.TrimRight(strings.Split(url, ",")[0], "/")
		if ingestURL != "" {
			base = strings.TrimRight(ingestURL, "/")
		}
		return &target{
			wsURL: strings.Join(ws, ","),
			insert: func(km killmail.Killmail) (uint64, error) {
				res, err := http.Post(base+"/api/killmails", "application/json", bytes.NewReader(km.JSON))
				if err != nil {
					return 0, err
				}
				defer res.Body.Close()
				var a struct {
					EventID uint64 `json:"event_id"`
				}
				return a.EventID, json.NewDecoder(res.Body).Decode(&a)
			},
			stop: func() {},
		}, nil
	}
	// Every subscriber comes from 127.0.0.1: the per-address limits would
	// refuse all but a few hundred of them.
	cfg := app.Config{Listen: "127.0.0.1:0", Storage: app.StorageMemory, Logger: logger,
		Limits: transport.NoLimits(), MaxClients: -1}
	stopESI := func() {}
	wsPath := "/api/ws"
	switch namesMode {
	case "esi":
		esi := fakeesi.New(true)
		stopESI = esi.Close
		cfg.Names = app.NamesConfig{ESI: true, URL: esi.URL}
	case "off":
		wsPath += "?names=false"
	}
	a, err := app.Start(cfg)
	if err != nil {
		stopESI()
		return nil, err
	}
	svc := a.Actors()
	return &target{
		wsURL: "ws" + strings.TrimPrefix(a.URL(), "http") + wsPath,
		local: true,
		insert: func(km killmail.Killmail) (uint64, error) {
			res, err := svc.Insert(context.Background(), []killmail.Killmail{km}, nil)
			if err != nil {
				return 0, err
			}
			return res[0].EventID, nil
		},
		stop: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = a.Shutdown(ctx)
			stopESI()
		},
	}, nil
}

// bare is the simplest coder/websocket fan-out: per-connection bounded
// channel and writer goroutine, as in coder/websocket's chat example; no
// log, no replay, no actors.
type bare struct {
	mu      sync.Mutex
	nextID  uint64
	subs    map[followKey]map[*bareConn]struct{}
	parties int // subscribers following corporations or alliances
	keys    []followKey
	conns   sync.WaitGroup
	names   *names.Renderer // see referenceBody
}

type bareConn struct {
	ch   chan []byte
	c    *websocket.Conn
	once sync.Once
	last uint64 // the last event sent, to push a killmail once
}

func startBare() (*target, error) {
	b := &bare{subs: map[followKey]map[*bareConn]struct{}{}, names: referenceNames()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(b.serve)}
	go srv.Serve(ln)
	return &target{
		wsURL:  "ws://" + ln.Addr().String() + "/",
		local:  true,
		insert: b.publish,
		stop: func() {
			_ = srv.Close()
			b.mu.Lock()
			for _, set := range b.subs {
				for bc := range set {
					bc.once.Do(func() { close(bc.ch) })
				}
			}
			b.subs = map[followKey]map[*bareConn]struct{}{}
			b.mu.Unlock()
			b.conns.Wait()
		},
	}, nil
}

func (b *bare) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	b.conns.Add(1)
	defer b.conns.Done()
	defer c.CloseNow()
	_, msg, err := c.Read(r.Context())
	if err != nil {
		return
	}
	var sub subscribeFields
	if json.Unmarshal(msg, &sub) != nil {
		return
	}
	bc := &bareConn{ch: make(chan []byte, 1024), c: c}
	b.mu.Lock()
	for _, k := range sub.keys() {
		if b.subs[k] == nil {
			b.subs[k] = map[*bareConn]struct{}{}
		}
		b.subs[k][bc] = struct{}{}
	}
	if len(sub.Corporations)+len(sub.Alliances) > 0 {
		b.parties++
	}
	b.mu.Unlock()
	ctx := c.CloseRead(context.Background())
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribed"}`)); err != nil {
		return
	}
	for frame := range bc.ch {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.Write(wctx, websocket.MessageText, frame)
		cancel()
		if err != nil {
			return
		}
	}
}

func (b *bare) publish(km killmail.Killmail) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	ev := eventlog.Event{ID: b.nextID, SystemID: km.SystemID, Killmail: referenceBody(b.names, b.nextID, km)}
	frame := ev.AppendJSON([]byte(`{"type":"killmail"`))
	frame[len(`{"type":"killmail"`)] = ','
	b.keys = killmailKeys(b.keys, km, b.parties > 0)
	for _, k := range b.keys {
		for bc := range b.subs[k] {
			if bc.last == b.nextID {
				continue
			}
			bc.last = b.nextID
			select {
			case bc.ch <- frame:
			default: // slow: drop it, like killfeed
				for _, k := range b.keys {
					delete(b.subs[k], bc)
				}
				go bc.c.Close(websocket.StatusPolicyViolation, "slow consumer")
			}
		}
	}
	return b.nextID, nil
}
