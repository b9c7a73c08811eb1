package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/killfeed/killfeed/universe"
)

// A tiny SDE in the package's layout turns into tables universe parses.
func TestRunWritesTablesUniverseReads(t *testing.T) {
	sde := t.TempDir()
	fsd := filepath.Join(sde, "fsd")
	if err := os.MkdirAll(fsd, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"categories.yaml": "6:\n  name:\n    de: Schiff\n    en: Ship\n  published: true\n",
		"groups.yaml":     "25:\n  categoryID: 6\n  name:\n    en: Frigate\n26:\n  categoryID: 6\n  name:\n    en: Cruiser\n",
		"types.yaml":      "587:\n  groupID: 25\n  name:\n    en: Rifter\n    fr: Rifter\n588:\n  groupID: 25\n  name:\n    en: '''Basic'' Rifter, \"Mk2\"'\n",
		"factions.yaml":   "500001:\n  corporationID: 1000035\n  nameID:\n    en: Caldari State\n  memberRaces:\n  - 1\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(fsd, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	if err := run([]string{"-sde", sde, "-out", out}); err != nil {
		t.Fatal(err)
	}
	groups, err := os.ReadFile(filepath.Join(out, "groups.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// Cruiser holds no type: left out, as in the embedded table.
	if string(groups) != "group_id,name,category_id,category_name\n25,Frigate,6,Ship\n" {
		t.Errorf("groups.csv: %q", groups)
	}
	factions, _ := os.ReadFile(filepath.Join(out, "factions.csv"))
	if string(factions) != "faction_id,name,corporation_id\n500001,Caldari State,1000035\n" {
		t.Errorf("factions.csv: %q", factions)
	}
	tf, err := os.Open(filepath.Join(out, "types.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	items, err := universe.ParseItemsGz(tf, strings.NewReader(string(groups)))
	if err != nil {
		t.Fatal(err)
	}
	if ty, ok := items.Type(588); !ok || ty.Name != `'Basic' Rifter, "Mk2"` || ty.GroupName != "Frigate" {
		t.Errorf("Type(588) = %+v, %v", ty, ok)
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	if err := run(nil); err == nil || !strings.Contains(err.Error(), "-sde") {
		t.Errorf("no -sde: %v", err)
	}
	sde := t.TempDir()
	fsd := filepath.Join(sde, "fsd")
	_ = os.MkdirAll(fsd, 0o755)
	_ = os.WriteFile(filepath.Join(fsd, "categories.yaml"), []byte("6:\n  name:\n    en: Ship\n"), 0o644)
	_ = os.WriteFile(filepath.Join(fsd, "groups.yaml"), []byte("25:\n  categoryID: 7\n  name:\n    en: Frigate\n"), 0o644)
	if err := run([]string{"-sde", sde, "-out", t.TempDir()}); err == nil || !strings.Contains(err.Error(), "category 7") {
		t.Errorf("unknown category: %v", err)
	}
}
