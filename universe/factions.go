package universe

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"
)

//go:embed factions.csv
var factionsCSV []byte

// Faction is one faction of the static data, e.g. 500001 Caldari State.
type Faction struct {
	ID   int64
	Name string
	// CorporationID is the faction's own corporation; 0 when it has none.
	CorporationID int64
}

var factionsHeader = []string{"faction_id", "name", "corporation_id"}

// factions is the embedded factions.csv, parsed once on first use.
var factions = sync.OnceValue(func() map[int64]Faction {
	out := make(map[int64]Faction, 32)
	err := readCSV(bytes.NewReader(factionsCSV), factionsHeader, func(rec []string) error {
		var f Faction
		var err error
		if f.ID, err = parseID(rec[0], "faction_id"); err != nil {
			return err
		}
		if f.CorporationID, err = parseID(rec[2], "corporation_id"); err != nil {
			return err
		}
		f.Name = rec[1]
		if _, dup := out[f.ID]; dup {
			return fmt.Errorf("faction %d listed twice", f.ID)
		}
		out[f.ID] = f
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("universe: embedded factions.csv: %v", err)) // covered by tests
	}
	return out
})

// Faction looks up a faction in the embedded static data.
func (u *Universe) Faction(id int64) (Faction, bool) {
	f, ok := factions()[id]
	return f, ok
}

// Factions is the number of factions in the embedded static data.
func (u *Universe) Factions() int { return len(factions()) }
