package selection_test

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/universe"
)

// sample is the real R2Z2 killmail of testdata in stored form: one
// attacker (alliance 99013537, ship 35683), victim alliance 1354830081 in
// a 670 (capsule), zkb labels solo, pvp, loc:nullsec…, value 86,180,108.73.
func sample(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile("../testdata/r2z2_134265477.json")
	if err != nil {
		t.Fatal(err)
	}
	km, err := killmail.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return km.JSON
}

func TestExtract(t *testing.T) {
	f := selection.Extract(sample(t))
	if f.System != 30000743 || f.Victim[selection.Alliance] != 1354830081 || f.Victim[selection.Character] != 2121652582 {
		t.Fatalf("victim facts %+v", f.Victim)
	}
	if got := f.Attackers[selection.Alliance]; len(got) != 1 || got[0] != 99013537 {
		t.Fatalf("attacker alliances %v", got)
	}
	if !f.HasValue || f.Value != 86180108.73 || f.Location != 40046921 || len(f.Labels) != 5 {
		t.Fatalf("zkb facts %+v", f)
	}
	if f.Victim[selection.Group] == 0 || f.Attackers[selection.Group] == nil {
		t.Fatalf("ship groups not found: %+v", f)
	}
}

func TestPredicate(t *testing.T) {
	km := sample(t)
	f := selection.Extract(km)
	v := func(x float64) *float64 { return &x }
	for _, c := range []struct {
		terms selection.Terms
		want  bool
	}{
		{selection.Terms{}, true},
		{selection.Terms{Alliances: []int64{99013537}}, true},
		{selection.Terms{Alliances: []int64{99013537}, Side: "victim"}, false},
		{selection.Terms{Alliances: []int64{99013537}, Side: "attacker"}, true},
		{selection.Terms{Alliances: []int64{1354830081}, Side: "attacker"}, false},
		{selection.Terms{Alliances: []int64{1, 1354830081}, Side: "victim"}, true},
		{selection.Terms{Alliances: []int64{99013537}, Ships: []int64{35683}, Side: "attacker"}, true},
		{selection.Terms{Alliances: []int64{99013537}, Ships: []int64{670}, Side: "attacker"}, false},
		{selection.Terms{Groups: []int64{f.Victim[selection.Group]}, Side: "victim"}, true},
		{selection.Terms{Labels: []string{"solo"}}, true},
		{selection.Terms{Labels: []string{"npc", "awox"}}, false},
		{selection.Terms{MinValue: v(86180108.73)}, true},
		{selection.Terms{MinValue: v(86180108.74)}, false},
		{selection.Terms{Locations: []int64{40046921}}, true},
		{selection.Terms{Locations: []int64{40046921}, Labels: []string{"pvp"}, Characters: []int64{96424385}}, true},
		{selection.Terms{Corporations: []int64{98601573}, Factions: []int64{500001}}, false},
	} {
		p, err := c.terms.Compile()
		if err != nil {
			t.Fatalf("%+v: %v", c.terms, err)
		}
		if got := p.Match(f); got != c.want {
			t.Errorf("%+v: Match = %v, want %v", c.terms, got, c.want)
		}
		back, err := selection.Parse(p.String())
		if err != nil || back.String() != p.String() || back.Match(f) != c.want {
			t.Errorf("%+v: canonical form %q does not round-trip (%v)", c.terms, p.String(), err)
		}
	}
	if (selection.Predicate{}).Match(nil) != true {
		t.Error("the empty predicate refused an event without facts")
	}
}

func TestCompileErrorsNameTheField(t *testing.T) {
	neg := -1.0
	for field, terms := range map[string]selection.Terms{
		"side":       {Side: "both"},
		"alliances":  {Alliances: []int64{0}},
		"groups":     {Groups: []int64{999999999}},
		"labels":     {Labels: []string{""}},
		"min_value":  {MinValue: &neg},
		"locations":  {Locations: []int64{-5}},
		"filter":     {Filter: "a=1;b=2,c=3"},
		"characters": {Characters: make([]int64, selection.MaxIDs+1)},
	} {
		_, err := terms.Compile()
		var pe *selection.ParamError
		if !errors.As(err, &pe) || pe.Param != field || !errors.Is(err, selection.ErrInvalid) {
			t.Errorf("%s: %v", field, err)
		}
	}
}

func TestRedisQFilter(t *testing.T) {
	km := sample(t)
	for _, c := range []struct {
		filter string
		want   bool
	}{
		{"alliance_id=99013537", true},
		{"alliance_id=1354830081", true},
		{"alliance_id=1", false},
		{"alliance_id!=1", true},
		{"totalValue>=80000000;solar_system_id=30000743", true},
		{"totalValue>=90000000;solar_system_id=30000743", false},
		{"totalValue>=90000000,solar_system_id=30000743", true},
		{"labels=solo", true},
		{"labels=npc", false},
		{"solo=true", true},
		{"npc=true", false},
		{"npc=false", true},
		{"killID=134265477", true},
		{"item_type_id=17482", true},
		{"quantity_destroyed>16000", true},
		{"damage_done<100", false},
		{"killmail_time>=2026-03-25", true},
		{"hash=aa937ee180fca44b172de00f2a26e751f5b2a851", true},
		{"nosuchkey=1", false},
		{"nosuchkey!=1", false},
		{" ship_type_id = 35683 ", true},
		{"locationID=40046921", true},
	} {
		p, err := selection.ParseRedisQFilter(c.filter)
		if err != nil {
			t.Fatalf("%q: %v", c.filter, err)
		}
		if got := p.MatchBody(nil, km); got != c.want {
			t.Errorf("%q: MatchBody = %v, want %v", c.filter, got, c.want)
		}
		if c.want && !p.Match(selection.Extract(km)) {
			t.Errorf("%q: Match over facts refused what the body matches", c.filter)
		}
	}
	for _, bad := range []string{"a=1;b=2,c=3", "alliance_id", "=5", "a=", "system:30000142,a=1"} {
		if _, err := selection.ParseRedisQFilter(bad); !errors.Is(err, selection.ErrInvalid) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestChannel(t *testing.T) {
	for name, ok := range map[string]bool{
		"system:30000142": true, "region:10000002": true, "all": true, "alliance:99000001": true,
		"group:25": true, "label:loc:highsec": true, "total_value:10b+": true, "location:40000001": true,
		"killstream": true, "alliance:0": false, "alliance:01": false, "label:": false, "total_value:1b+": false,
		"planet:1": false, "alliance": false,
	} {
		if _, _, got := selection.Channel(name, true); got != ok {
			t.Errorf("%q: ok = %v", name, got)
		}
	}
	if _, _, ok := selection.Channel("killstream", false); ok {
		t.Error("killstream is zKillboard's name only")
	}
}

func TestParseQuery(t *testing.T) {
	q, _ := url.ParseQuery("alliances[]=2&alliances=1,2&side=victim&min_value=1e9&labels[]=solo&regions=10000002")
	loc, terms, err := selection.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	if len(loc.Regions) != 1 || len(terms.Alliances) != 2 || terms.Side != "victim" || *terms.MinValue != 1e9 || terms.Labels[0] != "solo" {
		t.Fatalf("%+v %+v", loc, terms)
	}
}

func ExampleTerms_Compile() {
	p, err := selection.Terms{Alliances: []int64{99000002, 99000001}, Side: "victim"}.Compile()
	fmt.Println(p, err)
	// Output: {"alliances":[99000001,99000002],"side":"victim"} <nil>
}

// TestExpandIsExpandTopics checks that Locations.Expand, which the query
// parser uses, gives what expanding l.Topics() gives, errors included.
func TestExpandIsExpandTopics(t *testing.T) {
	u := universe.Default()
	for _, l := range []selection.Locations{
		{Systems: []int64{30000142}},
		{Systems: []int64{30000142, 30002187, 30000142}},
		{Systems: []int64{30000142, -1}},
		{Systems: []int64{0}},
		{Systems: make([]int64, 20)},
		{Systems: []int64{30000142, 30000144}, Constellations: []int64{20000020}},
		{Constellations: []int64{20000020}, Regions: []int64{10000002}},
		{Regions: []int64{10000002, 10000002}, Systems: []int64{30000142}},
		{Regions: []int64{1}},
		{Constellations: []int64{-5}},
		{All: true, Systems: []int64{30000142}},
		{All: true, Regions: []int64{1}},
		{Regions: []int64{10000002, 10000043, 10000030}},
	} {
		for _, max := range []int{1, 3, selection.DefaultMaxSystems} {
			want, wantErr := selection.ExpandTopics(u, l.Topics(), max)
			got, err := l.Expand(u, max)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !slices.Equal(got, want) {
				t.Errorf("%+v max %d: Expand = %v, %v; ExpandTopics = %v, %v", l, max, got, err, want, wantErr)
			}
		}
	}
}

// TestParseQueryIDs checks the id lists of a query: every form, repeats
// removed in first-seen order past the size where a map takes over.
func TestParseQueryIDs(t *testing.T) {
	var many []string
	var want []int64
	for i := range 40 {
		many = append(many, strconv.Itoa(30000100+i%25))
		if i < 25 {
			want = append(want, int64(30000100+i))
		}
	}
	for _, c := range []struct {
		query string
		want  []int64
		err   string
	}{
		{"systems=1,2&systems[]=3&systems=2", []int64{3, 1, 2}, ""},
		{"systems[]=5&systems[]=5", []int64{5}, ""},
		{"systems=" + strings.Join(many, ","), want, ""},
		{"systems=1,,2", nil, `systems: "" is not a positive integer system id`},
		{"systems=", nil, `systems: "" is not a positive integer system id`},
		{"systems= 7 ,8", []int64{7, 8}, ""},
		{"systems=1&systems=x", nil, `systems: "x" is not a positive integer system id`},
	} {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		loc, _, err := selection.ParseQuery(q)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: error %v, want %s", c.query, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(loc.Systems, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.query, loc.Systems, err, c.want)
		}
	}
}
