package killmail_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
)

// maxFuzzInput bounds a fuzz input: large enough for the biggest real
// killmail, small enough that no input makes an execution slow.
const maxFuzzInput = 256 << 10

// addSeeds adds real killmails from the fixture, each as ESI, R2Z2 and
// RedisQ shapes, and edge cases of the body shapes Parse accepts.
func addSeeds(f *testing.F) {
	lines := fixture.Lines()
	for _, i := range []int{0, 1, 7, len(lines) - 1} {
		esi := string(lines[i])
		f.Add([]byte(esi))
		f.Add([]byte(`{"killmail_id":1,"hash":"abc","esi":` + esi + `,"zkb":{"hash":"abc","totalValue":1.5},"uploaded_at":1,"sequence_id":2}`))
		f.Add([]byte(`{"killID":1,"killmail":` + esi + `,"zkb":{"hash":"abc"}}`))
		f.Add([]byte(`[` + esi + `,` + esi + `]`))
	}
	for _, s := range []string{
		``, ` `, `null`, `[]`, `{}`, `[{}]`, `"x"`, `1`,
		`{"killmail_id":1,"solar_system_id":30000142}`,
		`{"killmail_id":1,"solar_system_id":30000142,"killmail_id":2}`,                              // duplicate key
		`{"killmail_id":1,"solar_system_id":30000142,"zkb":null}`,                                   // null zkb
		`{"killmail_id":99999999999999999999,"solar_system_id":1}`,                                  // beyond int64
		`{"killmail_id":1e3,"solar_system_id":1}`,                                                   // exponent
		`{"killmail_id":"1","solar_system_id":1}`,                                                   // string id
		`{"killmail_id":-1,"solar_system_id":1}`,                                                    // negative
		`{"esi":{"killmail_id":1,"solar_system_id":2,"esi":{"killmail_id":3,"solar_system_id":4}}}`, // nested wrapper
		`{"killmail":{"killmail_id":1,"solar_system_id":2},"zkb":{"hash":"h"},"zkb":{"hash":"i"}}`,
		`{"killmail_id":1,"solar_system_id":2,"zkb":{"a":1}}`,
		`[{"killmail_id":1,"solar_system_id":2},"x"]`,
		`[[{"killmail_id":1,"solar_system_id":2}]]`,
		`{"killmail_id":1,"solar_system_id":2}{"killmail_id":3}`,
		"\ufeff{\"killmail_id\":1,\"solar_system_id\":2}",
		`{"killmail_id":1,"solar_system_id":2,"x":"\ud800"}`,
		"{\"killmail_id\":1,\"solar_system_id\":2,\"x\":\"\xff\xfe\"}",                                        // invalid UTF-8
		"{\"killmail_id\":1,\"solar_system_id\":2,\"a\":[{\"\xc3\":1}]}",                                      // in a key
		"{\"killmail_id\":1,\"solar_system_id\":2,\"a\":\"\xe2\x82\"}",                                        // cut short
		"{\"killmail_id\":1,\"solar_system_id\":2,\"a\":\"\xed\xa0\x80\"}",                                    // a surrogate
		`{"killmail_id":1,"solar_system_id":2,"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, // too deep
		`{"killmail_id":1,"solar_system_id":2,"a":` + strings.Repeat(`{"b":`, 30) + `1` + strings.Repeat("}", 30) + `}`,
		`{"esi":{"killmail_id":1,"solar_system_id":2},"zkb":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`,
	} {
		f.Add([]byte(s))
	}
}

// fieldOf reports whether msg starts with the name of a field (or of the
// body) followed by a separator, as every rejection must.
func fieldOf(msg string, fields ...string) bool {
	for _, name := range fields {
		if rest, ok := strings.CutPrefix(msg, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, ":")) {
			return true
		}
	}
	return false
}

// parseFields are the names a Parse error starts with.
var parseFields = []string{"body", "killmail", "killmail_id", "solar_system_id", "zkb"}

// checkParseError fails unless err is one of Parse's errors and names a field.
func checkParseError(t *testing.T, err error) {
	t.Helper()
	known := errors.Is(err, killmail.ErrInvalidJSON) || errors.Is(err, killmail.ErrNotObject) ||
		errors.Is(err, killmail.ErrNoID) || errors.Is(err, killmail.ErrNoSystem) || errors.Is(err, killmail.ErrTooLarge)
	var pe *killmail.PathError
	if errors.As(err, &pe) {
		if !errors.Is(err, killmail.ErrInvalidUTF8) && !errors.Is(err, killmail.ErrTooDeep) {
			t.Fatalf("path error %q is neither UTF-8 nor depth", err)
		}
		if pe.Path == "" || (pe.Path[0] != '.' && pe.Path[0] != '[') {
			t.Fatalf("path error %q names no path", err)
		}
		return
	}
	if !known {
		t.Fatalf("error %q is none of Parse's errors", err)
	}
	if !fieldOf(err.Error(), parseFields...) {
		t.Fatalf("error %q does not start with a field name", err)
	}
}

// checkStored fails unless km is a well-formed stored killmail: a JSON
// object within MaxSize whose top-level killmail_id and solar_system_id (the
// last of each, as a JSON decoder reads them) are km's, and which parses
// back to the same killmail byte for byte.
func checkStored(t *testing.T, km killmail.Killmail) {
	t.Helper()
	if km.ID <= 0 || km.SystemID <= 0 {
		t.Fatalf("accepted killmail with id %d, system %d", km.ID, km.SystemID)
	}
	if len(km.JSON) > killmail.MaxSize {
		t.Fatalf("stored %d bytes, more than MaxSize", len(km.JSON))
	}
	if !utf8.Valid(km.JSON) {
		t.Fatalf("stored form is not valid UTF-8: %q", km.JSON)
	}
	if d := depth(km.JSON); d > killmail.MaxDepth {
		t.Fatalf("stored form nests %d levels, more than MaxDepth: %s", d, km.JSON)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(km.JSON, &top); err != nil {
		t.Fatalf("stored form is not a JSON object: %v: %s", err, km.JSON)
	}
	for name, want := range map[string]int64{"killmail_id": km.ID, "solar_system_id": km.SystemID} {
		if got, err := strconv.ParseInt(string(top[name]), 10, 64); err != nil || got != want {
			t.Fatalf("stored %s is %s, parsed as %d: %s", name, top[name], want, km.JSON)
		}
	}
	back, err := killmail.Parse(km.JSON)
	if err != nil {
		t.Fatalf("stored form does not parse back: %v: %s", err, km.JSON)
	}
	if back.ID != km.ID || back.SystemID != km.SystemID || string(back.JSON) != string(km.JSON) {
		t.Fatalf("stored form parses back as %d/%d %s, was %d/%d %s",
			back.ID, back.SystemID, back.JSON, km.ID, km.SystemID, km.JSON)
	}
}

// depth is how deep the JSON value b nests, counted by a decoder (the
// reference for the scanner in Check).
func depth(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	d, most := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return most
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			d++
			most = max(most, d)
		case json.Delim('}'), json.Delim(']'):
			d--
		}
	}
}

// FuzzParse: Parse never panics; it either names the field at fault or
// returns a stored form that parses back to itself.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > maxFuzzInput {
			t.Skip()
		}
		km, err := killmail.Parse(raw)
		if err != nil {
			checkParseError(t, err)
			return
		}
		checkStored(t, km)
	})
}

// FuzzParseMany: the POST /api/killmails body. An array fails as a whole
// with an *ElementError naming the element; a single object is Parse.
func FuzzParseMany(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFuzzInput {
			t.Skip()
		}
		kms, array, err := killmail.ParseMany(body)
		if err != nil {
			if kms != nil {
				t.Fatalf("rejected body returned %d killmails", len(kms))
			}
			var el *killmail.ElementError
			if errors.As(err, &el) {
				if !array || el.Index < 0 || !strings.HasPrefix(err.Error(), "element "+strconv.Itoa(el.Index)+": ") {
					t.Fatalf("element error %q (array %v)", err, array)
				}
				err = el.Err
			}
			checkParseError(t, err)
			return
		}
		if !array && len(kms) != 1 {
			t.Fatalf("single object gave %d killmails", len(kms))
		}
		for _, km := range kms {
			checkStored(t, km)
		}
		if !array {
			single, err := killmail.Parse(body)
			if err != nil || single.ID != kms[0].ID || string(single.JSON) != string(kms[0].JSON) {
				t.Fatalf("ParseMany and Parse disagree on a single object: %v", err)
			}
		}
	})
}

// FuzzFromESI: an ESI answer and the zkb block of the RedisQ package it
// was fetched for.
func FuzzFromESI(f *testing.F) {
	for _, line := range fixture.Lines()[:4] {
		f.Add(line, []byte(`{"hash":"abc","totalValue":1}`))
		f.Add(line, []byte(`null`))
		f.Add(line, []byte(nil))
	}
	f.Add([]byte(`{"killmail_id":1,"solar_system_id":2}`), []byte(`{`))
	f.Add([]byte(`{"killmail_id":1,"solar_system_id":2,"zkb":{"a":1}}`), []byte(`{"b":2}`))
	f.Add([]byte(`{"killmail_id":1,"solar_system_id":2}`), []byte(`[1]`))
	f.Add([]byte(`{}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, esi, zkb []byte) {
		if len(esi)+len(zkb) > maxFuzzInput {
			t.Skip()
		}
		km, err := killmail.FromESI(esi, zkb)
		if err != nil {
			checkParseError(t, err)
			return
		}
		checkStored(t, km)
	})
}

// FuzzCheck: on any valid JSON, Check refuses exactly what a decoder sees
// as invalid UTF-8 or nested deeper than MaxDepth, and names a path.
func FuzzCheck(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > maxFuzzInput {
			t.Skip()
		}
		var c bytes.Buffer
		if json.Compact(&c, raw) != nil || c.Len() == 0 {
			t.Skip()
		}
		err := killmail.Check(c.Bytes())
		want := utf8.Valid(c.Bytes()) && depth(c.Bytes()) <= killmail.MaxDepth
		if (err == nil) != want {
			t.Fatalf("Check says %v, want ok=%v: %q", err, want, c.Bytes())
		}
		var pe *killmail.PathError
		if err != nil && (!errors.As(err, &pe) || !(errors.Is(err, killmail.ErrInvalidUTF8) || errors.Is(err, killmail.ErrTooDeep))) {
			t.Fatalf("Check error %q is not a *PathError of its rules", err)
		}
	})
}
