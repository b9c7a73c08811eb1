package universe

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
)

//go:embed solar_systems.csv
var solarSystemsCSV []byte

// System is one solar system of the static data.
type System struct {
	ID              int64
	Name            string
	ConstellationID int64
	RegionID        int64
	RegionName      string
	// Security is the true security status (-1 to 1).
	Security float64
	// Space is "eve", "wormhole", "abyssal" or "void".
	Space string
}

// Universe answers lookups over the static data. It is immutable and safe
// for concurrent use.
type Universe struct {
	systems        map[int64]System
	regions        map[int64][]int64
	constellations map[int64][]int64
}

// Default is the embedded static data, parsed once.
var Default = sync.OnceValue(func() *Universe {
	u, err := Parse(bytes.NewReader(solarSystemsCSV))
	if err != nil {
		panic(fmt.Sprintf("universe: embedded solar_systems.csv: %v", err)) // covered by tests
	}
	return u
})

var header = []string{"solar_system_id", "name", "constellation_id", "region_id", "region_name", "security", "space"}

// Parse reads solar_systems.csv:
// solar_system_id,name,constellation_id,region_id,region_name,security,space.
func Parse(r io.Reader) (*Universe, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(header)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if !slices.Equal(head, header) {
		return nil, fmt.Errorf("header: got %v, want %v", head, header)
	}
	u := &Universe{
		systems:        make(map[int64]System, 8500),
		regions:        make(map[int64][]int64),
		constellations: make(map[int64][]int64),
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		s, err := parseSystem(rec)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if _, dup := u.systems[s.ID]; dup {
			return nil, fmt.Errorf("line %d: system %d listed twice", line, s.ID)
		}
		u.systems[s.ID] = s
		u.regions[s.RegionID] = append(u.regions[s.RegionID], s.ID)
		u.constellations[s.ConstellationID] = append(u.constellations[s.ConstellationID], s.ID)
	}
	for _, ids := range u.regions {
		slices.Sort(ids)
	}
	for _, ids := range u.constellations {
		slices.Sort(ids)
	}
	return u, nil
}

func parseSystem(rec []string) (System, error) {
	var s System
	var err error
	ids := []*int64{&s.ID, &s.ConstellationID, &s.RegionID}
	for i, col := range []int{0, 2, 3} {
		if *ids[i], err = strconv.ParseInt(rec[col], 10, 64); err != nil || *ids[i] <= 0 {
			return s, fmt.Errorf("%s: %q is not a positive id", header[col], rec[col])
		}
	}
	if s.Security, err = strconv.ParseFloat(rec[5], 64); err != nil {
		return s, fmt.Errorf("security: %q is not a number", rec[5])
	}
	s.Name, s.RegionName, s.Space = rec[1], rec[4], rec[6]
	return s, nil
}

// Len is the number of systems.
func (u *Universe) Len() int { return len(u.systems) }

// System looks up a solar system.
func (u *Universe) System(id int64) (System, bool) {
	s, ok := u.systems[id]
	return s, ok
}

// RegionOf is the region of a system; ok is false for an unknown system.
func (u *Universe) RegionOf(system int64) (region int64, ok bool) {
	s, ok := u.systems[system]
	return s.RegionID, ok
}

// ConstellationOf is the constellation of a system; ok is false for an
// unknown system.
func (u *Universe) ConstellationOf(system int64) (constellation int64, ok bool) {
	s, ok := u.systems[system]
	return s.ConstellationID, ok
}

// RegionSystems lists a region's systems, ascending; nil for an unknown
// region. The slice is shared: do not modify it.
func (u *Universe) RegionSystems(region int64) []int64 { return u.regions[region] }

// ConstellationSystems lists a constellation's systems, ascending; nil for
// an unknown constellation. The slice is shared: do not modify it.
func (u *Universe) ConstellationSystems(constellation int64) []int64 {
	return u.constellations[constellation]
}

// Regions is the number of regions.
func (u *Universe) Regions() int { return len(u.regions) }

// Constellations is the number of constellations.
func (u *Universe) Constellations() int { return len(u.constellations) }

// Systems lists every system, ascending by id, in a new slice.
func (u *Universe) Systems() []System {
	out := make([]System, 0, len(u.systems))
	for _, s := range u.systems {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b System) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
