package killmail_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
)

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("stored form is not JSON: %v: %s", err, b)
	}
	return m
}

func TestParseShapes(t *testing.T) {
	esi := `{"killmail_id": 7, "solar_system_id": 30000142, "victim": {"ship_type_id": 587}, "attackers": []}`
	zkb := `{"hash": "abc", "totalValue": 1.5}`
	cases := map[string]struct {
		in      string
		wantZKB bool
	}{
		"ESI":                 {esi, false},
		"ESI with zkb inside": {`{"killmail_id":7,"solar_system_id":30000142,"zkb":` + zkb + `}`, true},
		"R2Z2 file":           {`{"killmail_id":7,"hash":"abc","esi":` + esi + `,"zkb":` + zkb + `,"uploaded_at":1,"sequence_id":9}`, true},
		"RedisQ package":      {`{"killID":7,"killmail":` + esi + `,"zkb":` + zkb + `}`, true},
		"R2Z2 without zkb":    {`{"killmail_id":7,"esi":` + esi + `}`, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			km, err := killmail.Parse([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if km.ID != 7 || km.SystemID != 30000142 {
				t.Fatalf("ids = %d, %d", km.ID, km.SystemID)
			}
			if strings.ContainsAny(string(km.JSON), " \n") {
				t.Fatalf("not compact: %s", km.JSON)
			}
			m := decode(t, km.JSON)
			for _, k := range []string{"esi", "hash", "sequence_id", "killID", "killmail"} {
				if _, ok := m[k]; ok {
					t.Fatalf("wrapper field %q kept: %s", k, km.JSON)
				}
			}
			z, ok := m["zkb"].(map[string]any)
			if ok != c.wantZKB {
				t.Fatalf("zkb present = %v, want %v: %s", ok, c.wantZKB, km.JSON)
			}
			if ok && z["hash"] != "abc" {
				t.Fatalf("zkb = %v", z)
			}
		})
	}
}

func TestParseRealR2Z2File(t *testing.T) {
	raw, err := os.ReadFile(fixture.Path("testdata", "r2z2_134265477.json"))
	if err != nil {
		t.Fatal(err)
	}
	km, err := killmail.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, km.JSON)
	if km.ID != 134265477 || km.SystemID != 30000743 || m["killmail_time"] != "2026-03-25T14:26:36Z" {
		t.Fatalf("got %d %d %v", km.ID, km.SystemID, m["killmail_time"])
	}
	if m["zkb"].(map[string]any)["locationID"] != float64(40046921) {
		t.Fatalf("zkb = %v", m["zkb"])
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]struct {
		in   string
		want error
	}{
		"empty":              {``, killmail.ErrInvalidJSON},
		"truncated":          {`{"killmail_id":`, killmail.ErrInvalidJSON},
		"trailing garbage":   {`{"killmail_id":1,"solar_system_id":2} x`, killmail.ErrInvalidJSON},
		"number":             {`42`, killmail.ErrNotObject},
		"array":              {`[1]`, killmail.ErrNotObject},
		"no id":              {`{"solar_system_id":2}`, killmail.ErrNoID},
		"string id":          {`{"killmail_id":"1","solar_system_id":2}`, killmail.ErrNoID},
		"zero id":            {`{"killmail_id":0,"solar_system_id":2}`, killmail.ErrNoID},
		"fractional id":      {`{"killmail_id":1.5,"solar_system_id":2}`, killmail.ErrNoID},
		"no system":          {`{"killmail_id":1}`, killmail.ErrNoSystem},
		"negative system":    {`{"killmail_id":1,"solar_system_id":-2}`, killmail.ErrNoSystem},
		"R2Z2 esi no system": {`{"killmail_id":1,"esi":{"killmail_id":1}}`, killmail.ErrNoSystem},
		"too large":          {`{"killmail_id":1,"solar_system_id":2,"pad":"` + strings.Repeat("x", killmail.MaxSize) + `"}`, killmail.ErrTooLarge},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := killmail.Parse([]byte(c.in))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestParseMany(t *testing.T) {
	lines := fixture.Lines()
	body := "[" + string(lines[0]) + "," + string(lines[1]) + "]"
	kms, array, err := killmail.ParseMany([]byte(body))
	if err != nil || !array || len(kms) != 2 {
		t.Fatalf("kms=%d array=%v err=%v", len(kms), array, err)
	}
	_, _, err = killmail.ParseMany([]byte("[" + string(lines[0]) + `,{"killmail_id":3}]`))
	var el *killmail.ElementError
	if !errors.As(err, &el) || el.Index != 1 || !errors.Is(err, killmail.ErrNoSystem) {
		t.Fatalf("err = %v", err)
	}
	kms, array, err = killmail.ParseMany(lines[2])
	if err != nil || array || len(kms) != 1 {
		t.Fatalf("single: kms=%d array=%v err=%v", len(kms), array, err)
	}
}

// TestParseKeepsEveryField checks the stored form against the input for
// the whole fixture: same fields and values, nothing lost or re-encoded.
func TestParseKeepsEveryField(t *testing.T) {
	for i, line := range fixture.Lines() {
		km, err := killmail.Parse(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		var want, got any
		_ = json.Unmarshal(line, &want)
		_ = json.Unmarshal(km.JSON, &got)
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(got)
		if string(a) != string(b) {
			t.Fatalf("line %d differs", i+1)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	lines := fixture.Lines()
	var n int64
	for _, l := range lines {
		n += int64(len(l))
	}
	b.SetBytes(n / int64(len(lines)))
	for i := 0; b.Loop(); i++ {
		if _, err := killmail.Parse(lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseRefusesWhatAClientCannotDecode(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for body, want := range map[string]string{
		"{\"killmail_id\":1,\"solar_system_id\":2,\"x\":\"\xff\xfe\"}":                            "killmail.x: string is not valid UTF-8",
		"{\"killmail_id\":1,\"solar_system_id\":2,\"victim\":{\"items\":[{},{\"f\":\"a\xc3\"}]}}": "killmail.victim.items[1].f: string is not valid UTF-8",
		"{\"killmail_id\":1,\"solar_system_id\":2,\"v\":{\"k\xff\":1}}":                           `killmail.v["k\xff"]: string is not valid UTF-8`,
		"{\"killmail_id\":1,\"solar_system_id\":2,\"x\":" + deep(5000) + "}":                      "killmail.x" + strings.Repeat("[0]", 31) + ": nested deeper than 32 levels",
		"{\"esi\":{\"killmail_id\":1,\"solar_system_id\":2,\"x\":\"\xff\"},\"zkb\":{}}":           "killmail.esi.x: string is not valid UTF-8",
		"{\"killmail\":{\"killmail_id\":1,\"solar_system_id\":2},\"zkb\":{\"a b\":[\"\xff\"]}}":   `killmail.zkb["a b"][0]: string is not valid UTF-8`,
		"{\"esi\":{\"killmail_id\":1,\"solar_system_id\":2},\"zkb\":{\"a\":" + deep(31) + "}}":    "killmail.zkb.a" + strings.Repeat("[0]", 30) + ": nested deeper than 32 levels",
	} {
		_, err := killmail.Parse([]byte(body))
		var pe *killmail.PathError
		if !errors.As(err, &pe) || err.Error() != want {
			t.Errorf("Parse(%.60q) = %v, want %s", body, err, want)
		}
	}
	// At the bound, and valid multi-byte text, are stored.
	for _, body := range []string{
		`{"killmail_id":1,"solar_system_id":2,"x":` + deep(31) + `}`,
		`{"killmail_id":1,"solar_system_id":2,"name":"Ærø ünïcødé \u00e9 日本 🚀","k\"ey\\":"\\\"\u0000"}`,
	} {
		if _, err := killmail.Parse([]byte(body)); err != nil {
			t.Errorf("Parse(%.60q): %v", body, err)
		}
	}
	if _, err := killmail.FromESI([]byte(`{"killmail_id":1,"solar_system_id":2}`), []byte("{\"h\":\"\xff\"}")); !errors.Is(err, killmail.ErrInvalidUTF8) {
		t.Errorf("FromESI with a bad zkb: %v", err)
	}
}

func BenchmarkCheck(b *testing.B) {
	lines := fixture.Lines()
	var n int64
	for _, l := range lines {
		n += int64(len(l))
	}
	b.SetBytes(n / int64(len(lines)))
	for i := 0; b.Loop(); i++ {
		if err := killmail.Check(lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
}
