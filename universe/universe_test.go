package universe_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/killfeed/killfeed/universe"
)

const (
	jita       = int64(30000142)
	perimeter  = int64(30000144)
	theForge   = int64(10000002)
	kimotoro   = int64(20000020)
	amarr      = int64(30002187)
	domain     = int64(10000043)
	unknownSys = int64(31999999)
)

func TestDefaultLoadsEverySystem(t *testing.T) {
	u := universe.Default()
	if u.Len() != 8436 {
		t.Fatalf("systems: got %d, want 8436", u.Len())
	}
	if u.Regions() != 112 || u.Constellations() != 1174 {
		t.Fatalf("regions, constellations: got %d, %d, want 112, 1174", u.Regions(), u.Constellations())
	}
	s, ok := u.System(jita)
	if !ok || s.Name != "Jita" || s.RegionName != "The Forge" || s.Space != "eve" {
		t.Fatalf("Jita: got %+v, %v", s, ok)
	}
}

func TestLookups(t *testing.T) {
	u := universe.Default()
	if r, ok := u.RegionOf(jita); !ok || r != theForge {
		t.Errorf("RegionOf(Jita) = %d, %v", r, ok)
	}
	if c, ok := u.ConstellationOf(jita); !ok || c != kimotoro {
		t.Errorf("ConstellationOf(Jita) = %d, %v", c, ok)
	}
	if r, ok := u.RegionOf(amarr); !ok || r != domain {
		t.Errorf("RegionOf(Amarr) = %d, %v", r, ok)
	}
	if _, ok := u.RegionOf(unknownSys); ok {
		t.Errorf("RegionOf(unknown) found a region")
	}
	if _, ok := u.ConstellationOf(unknownSys); ok {
		t.Errorf("ConstellationOf(unknown) found a constellation")
	}
	if u.RegionSystems(1) != nil || u.ConstellationSystems(1) != nil {
		t.Errorf("unknown region or constellation has systems")
	}

	kim := u.ConstellationSystems(kimotoro)
	if !contains(kim, jita) || !contains(kim, perimeter) || contains(kim, amarr) {
		t.Errorf("Kimotoro: %v", kim)
	}
	forge := u.RegionSystems(theForge)
	for _, id := range kim {
		if !contains(forge, id) {
			t.Errorf("The Forge lacks Kimotoro's %d", id)
		}
	}
	for i := 1; i < len(forge); i++ {
		if forge[i-1] >= forge[i] {
			t.Fatalf("The Forge not ascending at %d", i)
		}
	}
	// Every system is in its region's and constellation's lists.
	total := 0
	seen := map[int64]bool{}
	for id := int64(30000001); id < 35000000; id++ {
		s, ok := u.System(id)
		if !ok {
			continue
		}
		if !seen[s.RegionID] {
			seen[s.RegionID] = true
			total += len(u.RegionSystems(s.RegionID))
		}
		if !contains(u.RegionSystems(s.RegionID), id) || !contains(u.ConstellationSystems(s.ConstellationID), id) {
			t.Fatalf("system %d missing from its region or constellation", id)
		}
	}
	if total != u.Len() {
		t.Errorf("regions hold %d systems, want %d", total, u.Len())
	}
}

func TestParseRejectsBadData(t *testing.T) {
	const head = "solar_system_id,name,constellation_id,region_id,region_name,security,space\n"
	for name, body := range map[string]string{
		"header":    "id,name\n1,a\n",
		"id":        head + "x,Jita,20000020,10000002,The Forge,0.9,eve\n",
		"security":  head + "30000142,Jita,20000020,10000002,The Forge,high,eve\n",
		"duplicate": head + "30000142,Jita,20000020,10000002,The Forge,0.9,eve\n30000142,Jita,20000020,10000002,The Forge,0.9,eve\n",
		"columns":   head + "30000142,Jita\n",
	} {
		if _, err := universe.Parse(strings.NewReader(body)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func contains(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func ExampleUniverse_RegionOf() {
	u := universe.Default()
	region, _ := u.RegionOf(30000142)
	s, _ := u.System(30000142)
	fmt.Println(s.Name, region, s.RegionName)
	// Output: Jita 10000002 The Forge
}

func TestSystems(t *testing.T) {
	u := universe.Default()
	all := u.Systems()
	if len(all) != u.Len() {
		t.Fatalf("Systems: %d, Len: %d", len(all), u.Len())
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].ID >= all[i].ID {
			t.Fatalf("Systems not ascending at %d", i)
		}
	}
	for _, s := range all {
		if got, _ := u.System(s.ID); got != s {
			t.Fatalf("Systems has %+v, System says %+v", s, got)
		}
	}
	all[0].Name = "changed"
	if u.Systems()[0].Name == "changed" {
		t.Fatal("Systems shares its slice")
	}
}
