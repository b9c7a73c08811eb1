package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/internal/fixture"
)

// FuzzWebsocketSession sends up to 8 client frames (the input split at
// newlines) over a real websocket, native or Phoenix, to a server whose log
// holds a few real killmails, then a frame whose answer is known. Every
// server frame before that answer must be well formed, every error must
// name its field, and the answer must come: no frame closes, crashes or
// stalls the session.
func FuzzWebsocketSession(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","systems":[30000142],"since":0}`,
		`{"type":"subscribe","all":true,"since":0}` + "\n" + `{"type":"unsubscribe","all":true}`,
		`{"type":"subscribe","regions":[` + seedRegion + `],"constellations":[` + seedConstellation + `],"client_id":"fz"}`,
		`{"type":"subscribe","regions":[1]}` + "\n" + `{"type":"subscribe","systems":[1],"since":99999}`,
		`{"type":"subscribe","systems":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51]}`,
		`{"type":"ping"}` + "\n" + `not json` + "\n",
	} {
		f.Add([]byte(s), false)
	}
	for _, s := range []string{
		`["1","1","all","phx_join",{"since":0}]`,
		`["1","1","region:` + seedRegion + `","phx_join",{"client_id":"fz"}]` + "\n" + `["1","2","region:` + seedRegion + `","phx_leave",{}]`,
		`["1","1","system:30000142","phx_join",{}]` + "\n" + `["2","2","system:30000142","phx_join",{"since":1}]`,
		`["1","1","region:1","phx_join",{}]` + "\n" + `[1,2,3]` + "\n" + `["1","1","phoenix","heartbeat",{}]`,
	} {
		f.Add([]byte(s), true)
	}
	svc := startService(f)
	kms := fixture.Killmails()[:5]
	if _, err := svc.Insert(context.Background(), kms, nil); err != nil {
		f.Fatal(err)
	}
	srv := New(svc, Config{Websocket: WebsocketConfig{MaxSystems: fuzzMaxSystems, PingInterval: -1}, Limits: NoLimits()}) // one address dials for every input
	ts := httptest.NewServer(srv.Handler())
	f.Cleanup(ts.Close)
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http")

	const barrierRef = `"fuzz-barrier-7f3a"`
	f.Fuzz(func(t *testing.T, data []byte, phoenix bool) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		frames := bytes.SplitN(data, []byte("\n"), 8)
		path, barrier := "/api/ws", []byte(`{"type":"unsubscribe","systems":[9000000000000001]}`)
		if phoenix {
			path, barrier = "/socket/websocket?vsn=2.0.0", []byte(`[`+barrierRef+`,`+barrierRef+`,"phoenix","heartbeat",{}]`)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, wsURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for _, fr := range append(frames, barrier) {
			if err := c.Write(ctx, websocket.MessageText, fr); err != nil {
				t.Fatalf("write %q: %v", fr, err)
			}
		}
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("no answer to the last frame after %q: %v", data, err)
			}
			if typ != websocket.MessageText {
				t.Fatalf("binary frame %q", b)
			}
			if phoenix {
				if checkPhoenixServerFrame(t, b, barrierRef) {
					return
				}
			} else if checkNativeServerFrame(t, b) {
				return
			}
		}
	})
}

var sessionFields = append(nativeFields, "topic")

// checkNativeServerFrame fails unless b is a native server frame; it
// reports whether b answers the barrier.
func checkNativeServerFrame(t *testing.T, b []byte) bool {
	t.Helper()
	var fr struct {
		Type    string
		Error   string
		Systems []int64
		EventID uint64 `json:"event_id"`
	}
	if err := json.Unmarshal(b, &fr); err != nil {
		t.Fatalf("server frame %s is not JSON: %v", b, err)
	}
	switch fr.Type {
	case "subscribed", "pong":
	case "unsubscribed":
		return len(fr.Systems) == 1 && fr.Systems[0] == 9000000000000001
	case "killmail":
		if fr.EventID == 0 {
			t.Fatalf("killmail frame without event_id: %.200s", b)
		}
	case "error":
		if !startsWithField(fr.Error, sessionFields) {
			t.Fatalf("error %q does not start with a field name", fr.Error)
		}
	default:
		t.Fatalf("server frame %.200s", b)
	}
	return false
}

// checkPhoenixServerFrame fails unless b is a Phoenix server frame; it
// reports whether b answers the barrier.
func checkPhoenixServerFrame(t *testing.T, b []byte, barrierRef string) bool {
	t.Helper()
	var fr []json.RawMessage
	if err := json.Unmarshal(b, &fr); err != nil || len(fr) != 5 {
		t.Fatalf("server frame %.200s is not a Phoenix frame: %v", b, err)
	}
	switch string(fr[3]) {
	case `"phx_close"`, `"new_killmail"`:
		return false
	case `"phx_reply"`:
	default:
		t.Fatalf("server frame %.200s", b)
	}
	if string(fr[1]) == barrierRef && string(fr[2]) == `"phoenix"` {
		return true
	}
	var payload struct {
		Status   string
		Response struct{ Reason *string }
	}
	if err := json.Unmarshal(fr[4], &payload); err != nil {
		t.Fatalf("reply payload %s: %v", fr[4], err)
	}
	if payload.Status == "error" {
		r := payload.Response.Reason
		if r == nil || *r != "unknown event" && *r != "unmatched topic" && !startsWithField(*r, sessionFields) {
			t.Fatalf("error reply %.200s gives no reason naming a field", b)
		}
	}
	return false
}
