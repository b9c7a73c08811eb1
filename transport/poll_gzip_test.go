package transport_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/transport"
)

// A poll's answer is compressed for a client that takes gzip when it is
// large enough, and sent with its length in either case: a small answer,
// such as a caught-up poll's, goes out as it is.
func TestPollCompressesLargeAnswersOnly(t *testing.T) {
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := actors.Start(log, false, actors.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { svc.Stop(); _ = log.Close() }()
	kms := fixture.Killmails()
	if _, err := svc.Insert(context.Background(), kms, nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(transport.New(svc, transport.Config{Limits: transport.NoLimits()}).Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func() (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/killfeed?client_id=z&all=true", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
			t.Fatalf("status %d, Content-Length %q for %d bytes", res.StatusCode, res.Header.Get("Content-Length"), len(body))
		}
		if res.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("Vary %q", res.Header.Get("Vary"))
		}
		return res, body
	}

	res, body := get() // every retained killmail
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("large answer: Content-Encoding %q", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.NewDecoder(zr).Decode(&answer); err != nil || len(answer.Events) != len(kms) {
		t.Fatalf("large answer: %d events, %v; want %d", len(answer.Events), err, len(kms))
	}

	res, body = get() // caught up
	if res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("small answer: Content-Encoding %q", res.Header.Get("Content-Encoding"))
	}
	if err := json.Unmarshal(body, &answer); err != nil || len(answer.Events) != 0 {
		t.Fatalf("small answer %s: %v", body, err)
	}
}
