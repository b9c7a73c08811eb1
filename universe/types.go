package universe

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
)

// The item types and their groups of the static data export: every type
// (ships, modules, charges, structures, NPCs), so that a killmail's ship and
// weapon ids have names and a ship its group.
var (
	//go:embed types.csv.gz
	typesCSVGz []byte
	//go:embed groups.csv
	groupsCSV []byte
)

// Type is one item type of the static data.
type Type struct {
	ID           int64
	Name         string
	GroupID      int64
	GroupName    string
	CategoryID   int64
	CategoryName string
}

// Group is one item group of the static data, e.g. 25 Frigate.
type Group struct {
	ID           int64
	Name         string
	CategoryID   int64
	CategoryName string
}

// CategoryShip is the category of every ship group.
const CategoryShip = 6

// Items holds the types and groups. It is immutable and safe for
// concurrent use.
type Items struct {
	types  map[int64]typeRow
	groups map[int64]Group
}

type typeRow struct {
	name    string
	groupID int64
}

// DefaultItems is the embedded types and groups, parsed once on first use
// (about 48,000 types).
var DefaultItems = sync.OnceValue(func() *Items {
	it, err := ParseItemsGz(bytes.NewReader(typesCSVGz), bytes.NewReader(groupsCSV))
	if err != nil {
		panic(fmt.Sprintf("universe: embedded types: %v", err)) // covered by tests
	}
	return it
})

// ParseItemsGz is ParseItems with types.csv gzipped, as embedded.
func ParseItemsGz(typesGz, groups io.Reader) (*Items, error) {
	zr, err := gzip.NewReader(typesGz)
	if err != nil {
		return nil, fmt.Errorf("types: %w", err)
	}
	return ParseItems(zr, groups)
}

var (
	typesHeader  = []string{"type_id", "name", "group_id"}
	groupsHeader = []string{"group_id", "name", "category_id", "category_name"}
)

// ParseItems reads types.csv (type_id,name,group_id) and groups.csv
// (group_id,name,category_id,category_name). Every type's group must be
// listed.
func ParseItems(types, groups io.Reader) (*Items, error) {
	it := &Items{types: make(map[int64]typeRow, 48_000), groups: make(map[int64]Group, 1_500)}
	err := readCSV(groups, groupsHeader, func(rec []string) error {
		var g Group
		var err error
		if g.ID, err = parseID(rec[0], "group_id"); err != nil {
			return err
		}
		if g.CategoryID, err = parseID(rec[2], "category_id"); err != nil {
			return err
		}
		g.Name, g.CategoryName = rec[1], rec[3]
		if _, dup := it.groups[g.ID]; dup {
			return fmt.Errorf("group %d listed twice", g.ID)
		}
		it.groups[g.ID] = g
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	err = readCSV(types, typesHeader, func(rec []string) error {
		id, err := parseID(rec[0], "type_id")
		if err != nil {
			return err
		}
		group, err := parseID(rec[2], "group_id")
		if err != nil {
			return err
		}
		if _, ok := it.groups[group]; !ok {
			return fmt.Errorf("type %d: group %d is not listed", id, group)
		}
		if _, dup := it.types[id]; dup {
			return fmt.Errorf("type %d listed twice", id)
		}
		it.types[id] = typeRow{name: rec[1], groupID: group}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("types: %w", err)
	}
	return it, nil
}

func readCSV(r io.Reader, header []string, row func([]string) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(header)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if !slices.Equal(head, header) {
		return fmt.Errorf("header: got %v, want %v", head, header)
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if err := row(rec); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
}

// parseID reads a non-negative id (the static data has type and group 0).
func parseID(s, field string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("%s: %q is not an id", field, s)
	}
	return id, nil
}

// Type looks up an item type with its group and category.
func (it *Items) Type(id int64) (Type, bool) {
	t, ok := it.types[id]
	if !ok {
		return Type{}, false
	}
	g := it.groups[t.groupID]
	return Type{ID: id, Name: t.name, GroupID: g.ID, GroupName: g.Name, CategoryID: g.CategoryID, CategoryName: g.CategoryName}, true
}

// GroupOf is the group of a type; ok is false for an unknown type.
func (it *Items) GroupOf(typeID int64) (group int64, ok bool) {
	t, ok := it.types[typeID]
	return t.groupID, ok
}

// Group looks up an item group.
func (it *Items) Group(id int64) (Group, bool) {
	g, ok := it.groups[id]
	return g, ok
}

// Types is the number of types.
func (it *Items) Types() int { return len(it.types) }

// Groups is the number of groups.
func (it *Items) Groups() int { return len(it.groups) }

// Type looks up an item type in the embedded static data.
func (u *Universe) Type(id int64) (Type, bool) { return DefaultItems().Type(id) }

// Group looks up an item group in the embedded static data.
func (u *Universe) Group(id int64) (Group, bool) { return DefaultItems().Group(id) }

// GroupOf is the group of a type in the embedded static data.
func (u *Universe) GroupOf(typeID int64) (int64, bool) { return DefaultItems().GroupOf(typeID) }
