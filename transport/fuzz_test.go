package transport

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/universe"
)

// maxFuzzInput bounds a fuzz input, so that no execution is slow.
const maxFuzzInput = 64 << 10

// Real ids for seeds: Jita, its constellation Kimotoro, its region The Forge.
const (
	seedSystem        = "30000142"
	seedConstellation = "20000020"
	seedRegion        = "10000002"
)

// startsWithField reports whether msg starts with one of fields followed
// by ": ", as every rejection must.
func startsWithField(msg string, fields []string) bool {
	for _, f := range fields {
		if strings.HasPrefix(msg, f+": ") {
			return true
		}
	}
	return false
}

// checkBadParam fails unless err is a 4xx naming one of fields.
func checkBadParam(t *testing.T, err error, fields []string) {
	t.Helper()
	code, msg := statusOf(err)
	if code < 400 || code >= 500 {
		t.Fatalf("rejection %v is HTTP %d, not 4xx", err, code)
	}
	if !startsWithField(msg, fields) {
		t.Fatalf("rejection %q does not start with one of %q", msg, fields)
	}
}

// checkSystems fails unless systems is what a query may follow: all, or
// 1..max distinct positive ids.
func checkSystems(t *testing.T, systems []int64, maxSystems int) {
	t.Helper()
	if len(systems) == 1 && systems[0] == eventlog.AllSystems {
		return
	}
	if len(systems) == 0 || len(systems) > maxSystems {
		t.Fatalf("accepted %d systems", len(systems))
	}
	seen := make(map[int64]bool, len(systems))
	for _, id := range systems {
		if id <= 0 || seen[id] {
			t.Fatalf("accepted system %d in %v", id, systems)
		}
		seen[id] = true
	}
}

// fuzzMaxSystems is small so that the cap is within the fuzzer's reach.
const fuzzMaxSystems = 50

var pollFields = []string{"client_id", "systems", "constellations", "regions", "all", "limit", "wait", "query",
	"characters", "corporations", "alliances", "factions", "ships", "groups", "labels", "min_value", "side", "locations"}

// withQueryKeys adds the keys of a raw query, as an error may name them
// (unknown, indexed or badly escaped), to fields.
func withQueryKeys(fields []string, raw string) []string {
	out := append([]string(nil), fields...)
	for _, pair := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(pair, "=")
		out = append(out, k, strconv.Quote(k))
		if u, err := url.QueryUnescape(k); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// FuzzParsePoll: the query of GET /api/killfeed and /api/killfeed/next.
func FuzzParsePoll(f *testing.F) {
	for _, q := range []string{
		"client_id=foo&systems[]=" + seedSystem + "&systems[]=30000143",
		"client_id=foo&systems=" + seedSystem + ",30000143&limit=10&wait=5",
		"client_id=foo&systems=" + seedSystem + "&systems=30000143&systems=" + seedSystem,
		"client_id=foo&regions[]=" + seedRegion + "&constellations[]=" + seedConstellation,
		"client_id=a.b_c:d@e-f&all=true&limit=10000&wait=30",
		"client_id=foo&all=1&systems[]=1",
		"client_id=foo&regions=10000001,10000002",
		"client_id=&systems=1", "systems=1", "client_id=foo",
		"client_id=foo&systems=0", "client_id=foo&systems=-1", "client_id=foo&systems=9223372036854775808",
		"client_id=foo&systems=+1", "client_id=foo&systems=%201%20,", "client_id=foo&systems[]=1&limit=0",
		"client_id=foo&systems=1&wait=31", "client_id=foo&systems=1&wait=1e1", "client_id=foo&all=yes",
		"client_id=" + strings.Repeat("x", 129) + "&systems=1", "client_id=%00&systems=1",
		"client_id=foo&regions=99", "client_id=foo&systems=1;2", "%zz=1&client_id=foo&systems=1",
	} {
		f.Add(q, true)
	}
	u := universe.Default()
	f.Fuzz(func(t *testing.T, rawQuery string, withLimit bool) {
		if len(rawQuery) > maxFuzzInput {
			t.Skip()
		}
		p, err := parsePoll(u, rawQuery, fuzzMaxSystems, withLimit)
		if err != nil {
			checkBadParam(t, err, withQueryKeys(pollFields, rawQuery))
			return
		}
		q, _ := parseQuery(rawQuery)
		if !clientIDPattern.MatchString(p.clientID) || p.clientID != q.Get("client_id") {
			t.Fatalf("accepted client_id %q", p.clientID)
		}
		checkSystems(t, p.sel.Systems, fuzzMaxSystems)
		if withLimit && (p.limit < 1 || p.limit > MaxLimit) || !withLimit && p.limit != 0 {
			t.Fatalf("accepted limit %d", p.limit)
		}
		if p.wait < 0 || p.wait > MaxWait || p.wait%time.Second != 0 {
			t.Fatalf("accepted wait %s", p.wait)
		}
	})
}

var redisqFields = []string{"queueID", "filter", "systems", "constellations", "regions", "topic"}

// FuzzRedisqQuery: the query of GET /listen.php.
func FuzzRedisqQuery(f *testing.F) {
	for _, q := range []string{
		"queueID=bot", "queueID=bot&ttw=1", "queueID=bot&ttw=0", "queueID=bot&ttw=-5", "queueID=bot&ttw=99999999999999999999",
		"queueID=bot&ttw=%201%20", "queueID=bot&ttw=x",
		"queueID=bot&filter=system:" + seedSystem + ",region:" + seedRegion + ",constellation:" + seedConstellation,
		"queueID=bot&filter=all", "queueID=bot&filter=system:0", "queueID=bot&filter=system:01",
		"queueID=bot&filter=region:1", "queueID=bot&filter=,", "queueID=bot&filter=%20system:1%20,%20system:2",
		"queueID=" + strings.Repeat("q", 101), "queueID=%20", "ttw=1", "queueID=a/b&filter=system:1",
	} {
		f.Add(q)
	}
	u := universe.Default()
	f.Fuzz(func(t *testing.T, rawQuery string) {
		if len(rawQuery) > maxFuzzInput {
			t.Skip()
		}
		rq, err := parseRedisqQuery(u, rawQuery, fuzzMaxSystems)
		if err != nil {
			checkBadParam(t, err, withQueryKeys(redisqFields, rawQuery))
			return
		}
		if rq.queueID == "" || len(rq.queueID) > redisqMaxQueueID || rq.queueID != strings.TrimSpace(rq.queueID) {
			t.Fatalf("accepted queueID %q", rq.queueID)
		}
		if rq.ttw < 1 || rq.ttw > redisqDefaultTTW {
			t.Fatalf("accepted ttw %d", rq.ttw)
		}
		checkSystems(t, rq.sel.Systems, fuzzMaxSystems)
	})
}

// checkTopics fails unless every topic of a subscribe or unsubscribe is
// well formed, and expands them as the session does: into systems, or an
// error naming the field.
func checkTopics(t *testing.T, u *universe.Universe, cmd wsCommand) {
	t.Helper()
	if len(cmd.subs) == 0 {
		t.Fatalf("command %d without subscriptions", cmd.op)
	}
	var topics []string
	for _, sub := range cmd.subs {
		if _, _, ok := selection.ParseTopic(sub.loc); !ok {
			t.Fatalf("accepted location %q", sub.loc)
		}
		topics = append(topics, sub.loc)
	}
	systems, err := selection.ExpandTopics(u, topics, fuzzMaxSystems)
	if err != nil {
		checkBadParam(t, err, []string{"systems", "constellations", "regions"})
		return
	}
	checkSystems(t, systems, fuzzMaxSystems)
}

var nativeFields = []string{"frame", "type", "ping", "unsubscribe", "systems", "constellations", "regions", "all", "since", "client_id", "since, client_id",
	"characters", "corporations", "alliances", "factions", "ships", "groups", "labels", "min_value", "side", "locations", "filter"}

// FuzzNativeFrame: a client frame on GET /api/ws.
func FuzzNativeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","systems":[` + seedSystem + `],"since":12345}`,
		`{"type":"subscribe","systems":[` + seedSystem + `],"client_id":"me"}`,
		`{"type":"subscribe","regions":[` + seedRegion + `],"constellations":[` + seedConstellation + `]}`,
		`{"type":"subscribe","all":true}`, `{"type":"unsubscribe","systems":[` + seedSystem + `]}`,
		`{"type":"ping"}`, `{"type":"ping","all":false}`, `{"type":"pong"}`, `{}`, `[]`, `null`, ``, `{"type":1}`,
		`{"type":"subscribe","systems":[0]}`, `{"type":"subscribe","systems":["1"]}`, `{"type":"subscribe","systems":[1e3]}`,
		`{"type":"subscribe","systems":[99999999999999999999]}`, `{"type":"subscribe","since":-1,"systems":[1]}`,
		`{"type":"subscribe","sinc":1,"systems":[1]}`, `{"type":"subscribe","systems":[1]} {}`,
		`{"type":"subscribe","systems":[1],"since":1,"client_id":"x"}`, `{"type":"unsubscribe","all":true,"since":1}`,
		`{"type":"subscribe","regions":[1]}`, `{"type":"subscribe","client_id":"","systems":[1]}`,
		`{"type":"subscribe","systems":[1],"type":"ping"}`, `{"TYPE":"ping"}`,
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`{"type":"ping"}`), true)
	u := universe.Default()
	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		typ := websocket.MessageText
		if binary {
			typ = websocket.MessageBinary
		}
		cmd := nativeProtocol{}.parse(typ, data)
		switch cmd.op {
		case opReply:
			var reply struct{ Type, Error string }
			if err := json.Unmarshal(cmd.reply, &reply); err != nil {
				t.Fatalf("reply %s is not JSON: %v", cmd.reply, err)
			}
			switch reply.Type {
			case "pong":
			case "error":
				if !startsWithField(reply.Error, nativeFields) {
					t.Fatalf("error %q does not start with a field name", reply.Error)
				}
			default:
				t.Fatalf("reply %s", cmd.reply)
			}
		case opSubscribe, opUnsubscribe:
			checkTopics(t, u, cmd)
			if cmd.clientID != "" && !clientIDPattern.MatchString(cmd.clientID) {
				t.Fatalf("accepted client_id %q", cmd.clientID)
			}
			if cmd.clientID != "" && cmd.hasSince {
				t.Fatal("accepted since and client_id together")
			}
			// The acknowledgement echoes the selection: it must be JSON.
			ack := nativeProtocol{}.subscribed(nil, &cmd, 1, false)
			if !json.Valid(ack) {
				t.Fatalf("acknowledgement %s is not JSON", ack)
			}
		default:
			t.Fatalf("op %d", cmd.op)
		}
	})
}

// FuzzPhoenixFrame: a client frame on GET /socket/websocket.
func FuzzPhoenixFrame(f *testing.F) {
	for _, s := range []string{
		`["1","1","system:` + seedSystem + `","phx_join",{}]`,
		`["1","2","region:` + seedRegion + `","phx_join",{"since":5}]`,
		`["1","2","constellation:` + seedConstellation + `","phx_join",{"client_id":"me"}]`,
		`["1","2","all","phx_join",null]`, `[null,"3","phoenix","heartbeat",{}]`, `["1","4","all","phx_leave",{}]`,
		`["1","4","phoenix","phx_join",{}]`, `["1","4","room:lobby","phx_join",{}]`, `["1","4","system:01","phx_join",{}]`,
		`["1","2","all","phx_join",{"since":1,"client_id":"x"}]`, `["1","2","all","phx_join",{"since":"1"}]`,
		`["1","2","all","phx_join",[1]]`, `["1","2","all","phx_join",{"client_id":"a b"}]`,
		`[1,{"a":[]},"all","phx_join",{}]`, `["1","2","all","shout",{}]`, `["1","2",3,"phx_join",{}]`,
		`[]`, `{}`, `["1","2","all","phx_join"]`, `["1","2","all","phx_join",{},6]`, "[\"\\ud800\",1,\"all\",\"phx_join\",{}]",
	} {
		f.Add([]byte(s))
	}
	u := universe.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		cmd := phoenixProtocol{}.parse(websocket.MessageText, data)
		var frame []json.RawMessage
		if json.Unmarshal(data, &frame) != nil || len(frame) != 5 {
			if cmd.op != opReply || cmd.reply != nil {
				t.Fatalf("not a Phoenix frame, yet answered: op %d %s", cmd.op, cmd.reply)
			}
			return
		}
		var reply []byte
		switch cmd.op {
		case opReply:
			reply = cmd.reply
			if reply == nil {
				return // topic or event is not a string
			}
		case opSubscribe, opUnsubscribe:
			checkTopics(t, u, cmd)
			if cmd.clientID != "" && (!clientIDPattern.MatchString(cmd.clientID) || cmd.hasSince) {
				t.Fatalf("accepted client_id %q (since %v)", cmd.clientID, cmd.hasSince)
			}
			reply = phoenixProtocol{}.subscribed(nil, &cmd, 1, false)
			if cmd.op == opUnsubscribe && !json.Valid(cmd.afterReply) {
				t.Fatalf("phx_close %s is not JSON", cmd.afterReply)
			}
			if fail := (phoenixProtocol{}).failed(nil, &cmd, "x: y"); !json.Valid(fail) {
				t.Fatalf("error reply %s is not JSON", fail)
			}
		default:
			t.Fatalf("op %d", cmd.op)
		}
		var out []json.RawMessage
		if err := json.Unmarshal(reply, &out); err != nil || len(out) != 5 {
			t.Fatalf("reply %s is not a Phoenix frame: %v", reply, err)
		}
		if !bytes.Equal(out[0], frame[0]) || !bytes.Equal(out[1], frame[1]) || string(out[3]) != `"phx_reply"` {
			t.Fatalf("reply %s does not answer %s", reply, data)
		}
		var payload struct {
			Status   string
			Response struct{ Reason *string }
		}
		if err := json.Unmarshal(out[4], &payload); err != nil {
			t.Fatalf("reply payload %s: %v", out[4], err)
		}
		if payload.Status == "error" {
			r := payload.Response.Reason
			if r == nil || *r != "unknown event" && *r != "unmatched topic" &&
				!startsWithField(*r, []string{"frame", "since", "client_id", "since, client_id"}) {
				t.Fatalf("error reply %s gives no reason naming a field", reply)
			}
		}
	})
}

// FuzzZkillFrame: a client frame on GET /websocket/.
func FuzzZkillFrame(f *testing.F) {
	for _, s := range []string{
		`{"action":"sub","channel":"killstream"}`, `{"action":"sub","channel":"system:` + seedSystem + `"}`,
		`{"action":"sub","channel":"region:` + seedRegion + `"}`, `{"action":"unsub","channel":"constellation:` + seedConstellation + `"}`,
		`{"action":"sub","channel":"all:*"}`, `{"action":"sub","channel":"all"}`, `{"action":"sub","channel":" killstream "}`,
		`{"action":"sub"}`, `{"channel":"killstream"}`, `{"action":"pub","channel":"killstream"}`, `{"action":1}`,
		`[]`, ``, `{"action":"sub","channel":"system:0"}`, `{"action":"sub","channel":"region:1"}`,
		`{"action":"sub","channel":"killstream"} x`, `{"Action":"sub","CHANNEL":"killstream"}`,
	} {
		f.Add([]byte(s))
	}
	u := universe.Default()
	fields := []string{"frame", "action", "channel"}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		cmd := zkillProtocol{}.parse(websocket.MessageText, data)
		switch cmd.op {
		case opReply:
			var reply struct{ Action, Error string }
			if err := json.Unmarshal(cmd.reply, &reply); err != nil || reply.Action != "error" {
				t.Fatalf("reply %s is not an error frame: %v", cmd.reply, err)
			}
			if !startsWithField(reply.Error, fields) {
				t.Fatalf("error %q does not start with a field name", reply.Error)
			}
		case opSubscribe, opUnsubscribe:
			checkTopics(t, u, cmd)
		default:
			t.Fatalf("op %d", cmd.op)
		}
	})
}

// FuzzRedisqPackage: listen.php's answer is cut from a stored killmail.
// For every killmail Parse accepts it is a JSON package whose killID is the
// killmail's and whose killmail holds no zkb of its own.
func FuzzRedisqPackage(f *testing.F) {
	for _, line := range fixture.Lines()[:4] {
		f.Add(line)
		f.Add([]byte(`{"killID":1,"killmail":` + string(line) + `,"zkb":{"hash":"h"}}`))
	}
	for _, s := range []string{
		`{"zkb":{"a":1},"killmail_id":1,"solar_system_id":2}`,
		`{"killmail_id":1,"solar_system_id":2,"zkb":{"a":1},"zkb":{"b":2}}`,
		`{"killmail_id":1,"solar_system_id":2,"killmail_id":3}`,
		`{"killmail_id":1,"solar_system_id":2,"zkb":null}`,
		`{"killmail_id" : 1 , "solar_system_id" : 2 , "zkb" : { } }`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > maxFuzzInput {
			t.Skip()
		}
		km, err := killmail.Parse(raw)
		if err != nil {
			return
		}
		out, err := appendRedisqPackage(nil, km.JSON)
		if err != nil {
			t.Fatalf("stored killmail %s: %v", km.JSON, err)
		}
		var pkg struct {
			Package struct {
				KillID   json.RawMessage
				Killmail map[string]json.RawMessage
				ZKB      json.RawMessage
			}
		}
		if err := json.Unmarshal(out, &pkg); err != nil {
			t.Fatalf("package %s is not JSON: %v", out, err)
		}
		if string(pkg.Package.KillID) != strconv.FormatInt(km.ID, 10) {
			t.Fatalf("package killID %s for killmail %d", pkg.Package.KillID, km.ID)
		}
		if _, ok := pkg.Package.Killmail["zkb"]; ok {
			t.Fatalf("package killmail keeps a zkb: %s", out)
		}
		if id := string(pkg.Package.Killmail["killmail_id"]); id != strconv.FormatInt(km.ID, 10) {
			t.Fatalf("package killmail has killmail_id %s, want %d", id, km.ID)
		}
	})
}

// FuzzIngestHTTP: POST /api/killmails through the real Echo server over a
// memory log. A rejected body is a 4xx {"error": "body…"} and stores
// nothing (the log's head stays); an accepted one answers with event ids
// whose stored killmails are valid UTF-8 and parse back (within
// killmail.MaxDepth) to the body's killmails.
func FuzzIngestHTTP(f *testing.F) {
	lines := fixture.Lines()
	for _, i := range []int{0, 3, len(lines) - 1} {
		esi := string(lines[i])
		f.Add([]byte(esi))
		f.Add([]byte(`[` + esi + `,` + esi + `]`))
		f.Add([]byte(`{"killmail_id":1,"hash":"h","esi":` + esi + `,"zkb":{"hash":"h"},"uploaded_at":1,"sequence_id":2}`))
		f.Add([]byte(`{"killID":1,"killmail":` + esi + `,"zkb":{"hash":"h"}}`))
	}
	for _, s := range []string{
		``, `[]`, `{}`, `[{}]`, `null`, `[1]`, `{"killmail_id":1,"solar_system_id":2,"killmail_id":3}`,
		`[{"killmail_id":5,"solar_system_id":6},{"killmail_id":5}]`, `{"killmail_id":1e400,"solar_system_id":1}`,
		`[[{"killmail_id":5,"solar_system_id":6}]]`, `{"killmail_id":7,"solar_system_id":8}]`,
		"{\"killmail_id\":9,\"solar_system_id\":30000142,\"x\":\"\xff\xfe\"}", // not UTF-8
		"[{\"killmail_id\":10,\"solar_system_id\":1},{\"killmail_id\":11,\"solar_system_id\":1,\"\xc3\":1}]",
		`{"killmail_id":12,"solar_system_id":1,"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`,
		`{"killmail_id":13,"solar_system_id":1,"x":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`,
	} {
		f.Add([]byte(s))
	}
	svc := startService(f)
	srv := New(svc, Config{MaxBodyBytes: maxFuzzInput})
	h := srv.Handler()
	post := func(t *testing.T, body []byte) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, "/api/killmails", bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:40000" // ingest without a token is open to loopback only
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFuzzInput {
			t.Skip()
		}
		before := svc.Stats().Head
		code, answer := post(t, body)
		want, array, perr := killmail.ParseMany(body)
		if code >= 400 {
			var e struct{ Error string }
			if err := json.Unmarshal(answer, &e); err != nil {
				t.Fatalf("HTTP %d answer %s is not {\"error\"}: %v", code, answer, err)
			}
			if code >= 500 || !strings.HasPrefix(e.Error, "body") {
				t.Fatalf("HTTP %d %q: want a 4xx naming the body", code, e.Error)
			}
			if perr == nil {
				t.Fatalf("HTTP %d %q for a body ParseMany accepts", code, e.Error)
			}
			if after := svc.Stats().Head; after != before {
				t.Fatalf("rejected body moved the head from %d to %d", before, after)
			}
			return
		}
		if perr != nil {
			t.Fatalf("HTTP %d for a body ParseMany rejects (%v)", code, perr)
		}
		var answers []insertAnswer
		if array {
			err := json.Unmarshal(answer, &answers)
			if err != nil || len(answers) != len(want) {
				t.Fatalf("HTTP %d answer %s for %d killmails: %v", code, answer, len(want), err)
			}
		} else {
			var a insertAnswer
			if err := json.Unmarshal(answer, &a); err != nil {
				t.Fatalf("HTTP %d answer %s: %v", code, answer, err)
			}
			answers = []insertAnswer{a}
		}
		for i, a := range answers {
			ev, ok := readEvent(t, srv, a.EventID)
			if !ok {
				t.Fatalf("answer %d names event %d, which is not in the log", i, a.EventID)
			}
			if !utf8.Valid(ev.Killmail) {
				t.Fatalf("stored event %d is not valid UTF-8", a.EventID)
			}
			back, err := killmail.Parse(ev.Killmail)
			if err != nil {
				t.Fatalf("stored event %d does not parse: %v", a.EventID, err)
			}
			if back.ID != want[i].ID || !a.Duplicate && (back.SystemID != want[i].SystemID || ev.SystemID != want[i].SystemID) {
				t.Fatalf("event %d holds killmail %d/%d, posted %d/%d", a.EventID, back.ID, back.SystemID, want[i].ID, want[i].SystemID)
			}
		}
	})
}

// readEvent reads event id back from the log.
func readEvent(t *testing.T, srv *Server, id uint64) (eventlog.Event, bool) {
	t.Helper()
	b, err := srv.svc.Fetch(t.Context(), &actors.FetchSince{Selection: selection.Of([]int64{eventlog.AllSystems}), After: id - 1, Limit: 1})
	if err != nil {
		t.Fatalf("read event %d: %v", id, err)
	}
	i := slices.IndexFunc(b.Events, func(ev eventlog.Event) bool { return ev.ID == id })
	if i < 0 {
		return eventlog.Event{}, false
	}
	return b.Events[i], true
}
