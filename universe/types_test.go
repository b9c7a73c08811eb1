package universe_test

import (
	"strings"
	"testing"

	"github.com/killfeed/killfeed/universe"
)

func TestDefaultItemsLoadsEveryType(t *testing.T) {
	it := universe.DefaultItems()
	if it.Types() != 48037 || it.Groups() != 1425 {
		t.Fatalf("types, groups: got %d, %d, want 48037, 1425", it.Types(), it.Groups())
	}
	rifter, ok := universe.Default().Type(587)
	want := universe.Type{ID: 587, Name: "Rifter", GroupID: 25, GroupName: "Frigate", CategoryID: universe.CategoryShip, CategoryName: "Ship"}
	if !ok || rifter != want {
		t.Fatalf("Type(587) = %+v, %v; want %+v", rifter, ok, want)
	}
	if g, ok := universe.Default().GroupOf(670); !ok || g != 29 {
		t.Errorf("GroupOf(Capsule) = %d, %v; want 29", g, ok)
	}
	if g, ok := universe.Default().Group(25); !ok || g.Name != "Frigate" || g.CategoryID != universe.CategoryShip {
		t.Errorf("Group(25) = %+v, %v", g, ok)
	}
	if _, ok := universe.Default().Type(-1); ok {
		t.Error("Type(-1) found")
	}
	if _, ok := universe.Default().Group(999999999); ok {
		t.Error("Group(999999999) found")
	}
}

func TestParseItemsRejects(t *testing.T) {
	groups := "group_id,name,category_id,category_name\n25,Frigate,6,Ship\n"
	for name, c := range map[string]struct{ types, groups, want string }{
		"unknown group": {"type_id,name,group_id\n587,Rifter,26\n", groups, "group 26 is not listed"},
		"duplicate":     {"type_id,name,group_id\n587,Rifter,25\n587,Rifter,25\n", groups, "listed twice"},
		"bad id":        {"type_id,name,group_id\nx,Rifter,25\n", groups, "type_id"},
		"bad header":    {"id,name,group_id\n", groups, "header"},
		"bad group":     {"type_id,name,group_id\n", "group_id,name,category_id,category_name\n25,Frigate,-6,Ship\n", "category_id"},
	} {
		if _, err := universe.ParseItems(strings.NewReader(c.types), strings.NewReader(c.groups)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestFactions(t *testing.T) {
	u := universe.Default()
	if u.Factions() != 27 {
		t.Fatalf("factions: got %d, want 27", u.Factions())
	}
	f, ok := u.Faction(500001)
	if want := (universe.Faction{ID: 500001, Name: "Caldari State", CorporationID: 1000035}); !ok || f != want {
		t.Fatalf("Faction(500001) = %+v, %v; want %+v", f, ok, want)
	}
	if f, ok := u.Faction(500024); !ok || f.Name != "Drifters" {
		t.Errorf("Faction(500024) = %+v, %v", f, ok)
	}
	if _, ok := u.Faction(1); ok {
		t.Error("Faction(1) found")
	}
	// A type whose name starts with a space survives the CSV round trip.
	if ty, ok := u.Type(79336); !ok || !strings.HasPrefix(ty.Name, " Insurgency") {
		t.Errorf("Type(79336) = %+v, %v", ty, ok)
	}
}
