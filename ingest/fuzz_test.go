package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// maxFuzzInput bounds a fuzz input, so that no execution is slow.
const maxFuzzInput = 256 << 10

// fuzzService starts the actors over a memory log for one fuzz target.
func fuzzService(f *testing.F) *actors.Service {
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	svc, err := actors.Start(log, false, actors.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Stop(); _ = log.Close() })
	return svc
}

// seedBodies adds real killmails in every shape an upstream sends them.
func seedBodies(f *testing.F, wrap func(esi string) []string) {
	lines := fixture.Lines()
	for _, i := range []int{0, 2, len(lines) - 1} {
		for _, s := range wrap(string(lines[i])) {
			f.Add([]byte(s))
		}
	}
}

// upstreamFields are what an upstream rejection names after ErrBadInput.
var upstreamFields = []string{"package", "listen answer", "sequence", "sequence.json", "ESI killmail",
	"body", "killmail", "killmail_id", "solar_system_id", "zkb"}

// checkBadInput fails unless err is ErrBadInput naming what was wrong.
func checkBadInput(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrBadInput) {
		t.Fatalf("error %q is not ErrBadInput", err)
	}
	rest := strings.TrimPrefix(err.Error(), ErrBadInput.Error()+": ")
	for _, f := range upstreamFields {
		if strings.HasPrefix(rest, f+":") || strings.HasPrefix(rest, f+" ") {
			return
		}
	}
	t.Fatalf("error %q does not name a field", err)
}

// checkRoundTrip fails unless event id of svc holds km: its stored form
// parses back to km's id and system.
func checkRoundTrip(t *testing.T, svc *actors.Service, id uint64, km killmail.Killmail) {
	t.Helper()
	b, err := svc.Fetch(context.Background(), &actors.FetchSince{Selection: selection.Of([]int64{eventlog.AllSystems}), After: id - 1, Limit: 1})
	if err != nil || len(b.Events) != 1 || b.Events[0].ID != id {
		t.Fatalf("event %d not in the log (%v)", id, err)
	}
	back, err := killmail.Parse(b.Events[0].Killmail)
	if err != nil || back.ID != km.ID || back.SystemID != km.SystemID || b.Events[0].SystemID != km.SystemID {
		t.Fatalf("event %d holds %d/%d (%v), stored %d/%d", id, back.ID, back.SystemID, err, km.ID, km.SystemID)
	}
}

// FuzzRetryAfter: an upstream's Retry-After header is never a negative
// wait and never less than what it asks for (up to the cap), whatever the
// number.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "1", "120", " 7 ", "-1", "1.5", "9223372036", "9223372036854775807",
		"99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "x"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, h string) {
		d := retryAfter(h, now)
		if d < 0 {
			t.Fatalf("Retry-After %q gives %s", h, d)
		}
		if s, err := strconv.ParseInt(strings.TrimSpace(h), 10, 64); err == nil && s > 0 {
			want := min(time.Duration(s), maxRetryAfter/time.Second) * time.Second
			if d < want {
				t.Fatalf("Retry-After %q gives %s, less than %s", h, d, want)
			}
		}
	})
}

// FuzzR2Z2Sequence: sequence.json.
func FuzzR2Z2Sequence(f *testing.F) {
	for _, s := range []string{`{"sequence":134265477}`, `{"sequence":"134265477"}`, `{"sequence":0}`, `{"sequence":-1}`,
		`{"sequence":1.5}`, `{"sequence":1e3}`, `{"sequence":99999999999999999999}`, `{}`, `null`, `[]`, ``,
		`{"sequence":1,"sequence":2}`, `{"Sequence":3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		seq, err := parseSequence(body)
		if err != nil {
			checkBadInput(t, err)
			return
		}
		if seq == 0 || seq > 1<<63-1 {
			t.Fatalf("accepted sequence %d", seq)
		}
	})
}

// FuzzR2Z2File: a sequence file, stored as the poller stores it. A file
// that is no killmail stores only the cursor; a killmail is stored with it
// and parses back.
func FuzzR2Z2File(f *testing.F) {
	seedBodies(f, func(esi string) []string {
		return []string{
			`{"killmail_id":1,"hash":"abc","esi":` + esi + `,"zkb":{"hash":"abc"},"uploaded_at":1,"sequence_id":2}`,
			esi,
		}
	})
	for _, s := range []string{``, `{}`, `{"killmail_id":1,"esi":{}}`, `{"killmail_id":1,"esi":null,"zkb":{}}`,
		`{"esi":{"killmail_id":1,"solar_system_id":2},"esi":{"killmail_id":3}}`, `[{"killmail_id":1,"solar_system_id":2}]`} {
		f.Add([]byte(s))
	}
	svc := fuzzService(f)
	p, err := NewR2Z2(svc, R2Z2Config{})
	if err != nil {
		f.Fatal(err)
	}
	var seq uint64
	f.Fuzz(func(t *testing.T, body []byte) {
		body = body[:min(len(body), maxFuzzInput)] // larger inputs only cost time
		seq++
		before, skipped := svc.Stats().Head, p.skipped.Load()
		if !p.store1(context.Background(), seq, body, newStreak(p.log, "r2z2", 0, 0)) {
			t.Fatal("store1 gave up")
		}
		if c, _ := svc.Cursor(R2Z2Cursor); c != seq {
			t.Fatalf("cursor %d after file %d", c, seq)
		}
		km, perr := killmail.Parse(body)
		after := svc.Stats().Head
		if perr != nil {
			if after != before || p.skipped.Load() != skipped+1 {
				t.Fatalf("skipped file moved the head from %d to %d", before, after)
			}
			return
		}
		if after != before+1 {
			if after == before {
				return // a killmail seen before
			}
			t.Fatalf("one file moved the head from %d to %d", before, after)
		}
		checkRoundTrip(t, svc, after, km)
	})
}

// esiServer answers every GET /killmails/{id}/{hash}/ with an ESI killmail
// of that id, or with body when one is set.
type esiServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
}

func newESIServer(f *testing.F) *esiServer {
	s := &esiServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		if body == nil {
			parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // killmails, id, hash
			body = fmt.Appendf(nil, `{"killmail_id":%s,"killmail_time":"2026-01-01T00:00:00Z","solar_system_id":30000142,"victim":{},"attackers":[]}`, parts[1])
		}
		_, _ = w.Write(body)
	}))
	f.Cleanup(s.Close)
	return s
}

func (s *esiServer) answer(body []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

// FuzzRedisQListen: an upstream listen answer, handled as the RedisQ
// poller handles it: a package with its killmail is stored, one with only
// killID and zkb.hash is fetched from ESI and stored, anything else is
// skipped without storing.
func FuzzRedisQListen(f *testing.F) {
	seedBodies(f, func(esi string) []string {
		return []string{`{"package":{"killID":1,"killmail":` + esi + `,"zkb":{"hash":"abc"}}}`}
	})
	for _, s := range []string{`{"package":null}`, `{}`, ``, `[]`, `{"package":{"killID":5,"zkb":{"hash":"0123abcd"}}}`,
		`{"package":{"killID":"5","zkb":{"hash":"0123abcd"}}}`, `{"package":{"killID":5,"zkb":{"hash":"../x"}}}`,
		`{"package":{"killID":-5,"zkb":{"hash":"ab"}}}`, `{"package":{"killID":5}}`, `{"package":{"killmail":[]}}`,
		`{"package":{"killID":5,"killmail":{"killmail_id":5},"zkb":{}}}`, `{"package":1}`, `{"package":"x"}`,
		`{"package":{"killID":1e30,"zkb":{"hash":"ab"}}}`} {
		f.Add([]byte(s))
	}
	svc := fuzzService(f)
	esi := newESIServer(f)
	p, err := NewRedisQ(svc, RedisQConfig{URL: "http://127.0.0.1:1/listen.php", Queue: "fuzz", Idle: time.Nanosecond,
		ESI: ESIConfig{URL: esi.URL, Timeout: 5 * time.Second}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		body = body[:min(len(body), maxFuzzInput)] // larger inputs only cost time
		pkg, err := parseListen(body)
		if err != nil {
			checkBadInput(t, err)
			return
		}
		before, skipped, empty := svc.Stats().Head, p.skipped.Load(), p.empty.Load()
		km, kerr := p.killmail(context.Background(), bytes.TrimSpace(pkg))
		if !p.handle(context.Background(), pkg, newStreak(p.log, "redisq", 0, 0)) {
			t.Fatal("handle gave up")
		}
		after := svc.Stats().Head
		switch {
		case p.empty.Load() == empty+1:
			if after != before {
				t.Fatalf("empty package moved the head from %d to %d", before, after)
			}
		case p.skipped.Load() == skipped+1:
			if kerr == nil {
				t.Fatal("skipped a package that turns into a killmail")
			}
			checkBadInput(t, kerr)
			if after != before {
				t.Fatalf("skipped package moved the head from %d to %d", before, after)
			}
		default:
			if kerr != nil {
				t.Fatalf("stored a package that does not turn into a killmail: %v", kerr)
			}
			if after != before {
				checkRoundTrip(t, svc, after, km)
			}
		}
	})
}

// FuzzESIKillmail: an ESI answer to GET /killmails/{id}/{hash}/ and the
// zkb block it is stored with. What is stored is the killmail asked for.
func FuzzESIKillmail(f *testing.F) {
	for _, line := range fixture.Lines()[:3] {
		km, err := killmail.Parse(line)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(line, []byte(`{"hash":"abc","totalValue":1}`), km.ID)
		f.Add(line, []byte(nil), km.ID)
		f.Add(line, []byte(nil), km.ID+1) // an answer for another killmail
	}
	f.Add([]byte(`{"killmail_id":7,"solar_system_id":1}`), []byte(`{`), int64(7))
	f.Add([]byte(`{"killmail_id":8,"solar_system_id":1}`), []byte(`null`), int64(8))
	f.Add([]byte(`{"error":"Invalid killmail_id and/or killmail_hash"}`), []byte(`{}`), int64(9))
	srv := newESIServer(f)
	e, err := NewESI(ESIConfig{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body, zkb []byte, id int64) {
		// Larger inputs only cost time; the pollers ask only for positive ids.
		body, zkb = body[:min(len(body), maxFuzzInput/2)], zkb[:min(len(zkb), maxFuzzInput/2)]
		if id = id & math.MaxInt64; id == 0 {
			id = 1
		}
		want, werr := killmail.FromESI(body, zkb)
		srv.answer(body)
		km, err := e.Killmail(context.Background(), id, "abc", zkb)
		if err != nil {
			checkBadInput(t, err)
			if werr == nil && want.ID == id {
				t.Fatalf("ESI killmail %d refused: %v", id, err)
			}
			return
		}
		if werr != nil || km.ID != id || string(km.JSON) != string(want.JSON) {
			t.Fatalf("ESI answer %s for killmail %d stored as %d", body, id, km.ID)
		}
	})
}

// FuzzImport: a JSON Lines file (plain or gzip) imported into a memory log.
// Every non-blank line is read; those Parse accepts are stored (once per
// killmail id), the others are rejected with their line number and a
// reason naming the field, and nothing else moves the head.
func FuzzImport(f *testing.F) {
	lines := fixture.Lines()
	plain := bytes.Join([][]byte{lines[0], []byte(`{"killmail_id":1}`), {}, []byte(" \r"), lines[1], lines[0]}, []byte("\n"))
	f.Add(plain)
	f.Add(gz(plain))
	f.Add(append(gz(lines[2]), gz(lines[3])...)) // two gzip members
	f.Add(gz(plain)[:20])                        // truncated
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte("\n\n{\"killmail_id\":1,\"solar_system_id\":2}\r\n[1]\nnot json"))
	f.Add([]byte(`{"killmail_id":1,"solar_system_id":2}{"killmail_id":3,"solar_system_id":4}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		data = data[:min(len(data), maxFuzzInput)] // larger inputs only cost time
		text := data
		gzipped := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
		if gzipped {
			// The oracle: compress/gzip. An input that inflates beyond
			// maxInflated is skipped, so that no execution is slow.
			const maxInflated = 1 << 20
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				text = nil
			} else {
				text, err = io.ReadAll(io.LimitReader(zr, maxInflated))
				if len(text) >= maxInflated {
					t.Skip()
				}
				if err != nil {
					text = nil
				}
			}
		}
		name := filepath.Join(dir, "in.jsonl")
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		log, err := eventlog.Open(eventlog.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close()
		res, err := Import(context.Background(), LogSink{Log: log}, []string{name}, ImportConfig{Workers: 1})
		// A JSON array, or pretty-printed JSON (a first line that is a lone
		// "{"), is read as one document, not as JSON Lines: it may fail as a
		// whole (a truncated array), and its values are numbered, not its
		// lines. What holds for every file: an error names the file and
		// the head moved by what was inserted.
		if document(text) {
			if err != nil && !strings.HasPrefix(err.Error(), "import "+name+": ") {
				t.Fatalf("import error %q does not name the file", err)
			}
			if log.Head() != uint64(res.Inserted) {
				t.Fatalf("head %d after %d inserts", log.Head(), res.Inserted)
			}
			return
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "import "+name+": ") {
				t.Fatalf("import error %q does not name the file", err)
			}
			if text != nil {
				t.Fatalf("import failed on a file compress/gzip reads: %v", err)
			}
			if log.Head() != uint64(res.Inserted) {
				t.Fatalf("head %d after %d inserts", log.Head(), res.Inserted)
			}
			return
		}
		if gzipped && text == nil {
			t.Fatalf("imported a gzip file compress/gzip refuses: %+v", res.ImportStats)
		}
		var want ImportStats
		var wantRejected []int
		seen := make(map[int64]bool)
		for i, line := range bytes.Split(text, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			want.Read++
			km, err := killmail.Parse(line)
			switch {
			case err != nil:
				want.Rejected++
				wantRejected = append(wantRejected, i+1)
			case seen[km.ID]:
				want.Duplicates++
			default:
				seen[km.ID] = true
				want.Inserted++
			}
		}
		if res.ImportStats != want {
			t.Fatalf("import counted %+v, want %+v", res.ImportStats, want)
		}
		for i, r := range res.Rejects {
			if r.File != name || r.Line != wantRejected[i] {
				t.Fatalf("reject %d at %s:%d, want line %d", i, r.File, r.Line, wantRejected[i])
			}
			if !startsWithAny(r.Reason, "body", "killmail", "killmail_id", "solar_system_id", "zkb") {
				t.Fatalf("reject reason %q does not name a field", r.Reason)
			}
		}
		if log.Head() != uint64(want.Inserted) {
			t.Fatalf("head %d after %d inserts", log.Head(), want.Inserted)
		}
	})
}

func startsWithAny(s string, fields ...string) bool {
	for _, f := range fields {
		// The field alone, or a path into it: killmail.killmail_time,
		// body[2].victim.
		if strings.HasPrefix(s, f+" ") || strings.HasPrefix(s, f+":") || strings.HasPrefix(s, f+".") || strings.HasPrefix(s, f+"[") {
			return true
		}
	}
	return false
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// document says whether an import reads text as one JSON document (an
// array, or pretty-printed JSON) rather than as JSON Lines.
func document(text []byte) bool {
	text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))
	text = bytes.TrimLeft(text, " \t\r\n")
	if len(text) > 0 && text[0] == '[' {
		return true
	}
	first, _, _ := bytes.Cut(text, []byte("\n"))
	return string(bytes.TrimSpace(first)) == "{"
}
