// The static data the page names things with (GET /api/universe) and the
// search behind the "follow" box.

const KIND_ORDER = { region: 0, system: 1, constellation: 2 };

export class Universe {
  /** @param {{regions: [number, string][], systems: [number, string, number, number, number][]}} data */
  constructor(data) {
    this.regions = new Map();
    for (const [id, name] of data.regions) this.regions.set(id, { id, name, lower: name.toLowerCase() });
    this.systems = new Map();
    this.constellations = new Map();
    for (const [id, name, constellation, region, sec] of data.systems) {
      this.systems.set(id, { id, name, constellation, region, sec, lower: name.toLowerCase() });
      let c = this.constellations.get(constellation);
      if (!c) this.constellations.set(constellation, (c = { id: constellation, region, systems: [] }));
      c.systems.push(name);
    }
    for (const c of this.constellations.values()) c.systems.sort();
    this.regionSize = new Map();
    for (const s of this.systems.values()) this.regionSize.set(s.region, (this.regionSize.get(s.region) ?? 0) + 1);
  }

  /** A selectable thing as the page shows it: {kind, id, label, detail, sec?}; null when unknown. */
  entry(kind, id) {
    switch (kind) {
      case "system": {
        const s = this.systems.get(id);
        return s && { kind, id, label: s.name, detail: this.regions.get(s.region)?.name ?? "", sec: s.sec };
      }
      case "region": {
        const r = this.regions.get(id);
        return r && { kind, id, label: r.name, detail: `${this.regionSize.get(id) ?? 0} systems` };
      }
      case "constellation": {
        // The static data has no constellation names: name it by its systems.
        const c = this.constellations.get(id);
        if (!c) return null;
        const some = c.systems.slice(0, 3).join(", ") + (c.systems.length > 3 ? ` +${c.systems.length - 3}` : "");
        return { kind, id, label: `Constellation ${id}`, detail: `${some} · ${this.regions.get(c.region)?.name ?? ""}` };
      }
    }
    return null;
  }

  /**
   * Matches for what was typed, best first: names that equal it, then
   * names that start with it, then names with a word that starts with it,
   * then names that contain it. A constellation matches through its systems'
   * names (one rank lower) or its id; anything matches its exact id.
   */
  search(query, limit = 12) {
    const q = query.trim().toLowerCase();
    if (!q) return [];
    const hits = [];
    const seen = new Set();
    const add = (kind, id, rank, name) => {
      const key = `${kind}:${id}`;
      if (rank === null || seen.has(key)) return;
      seen.add(key);
      hits.push({ kind, id, rank, name });
    };
    const asID = /^\d+$/.test(q) ? Number(q) : null;
    for (const r of this.regions.values()) add("region", r.id, asID === r.id ? 0 : rank(r.lower, q), r.lower);
    for (const s of this.systems.values()) {
      const r = asID === s.id ? 0 : rank(s.lower, q);
      add("system", s.id, r, s.lower);
      if (r !== null && r <= 1 && asID === null) add("constellation", s.constellation, r + 1, s.lower);
    }
    if (asID !== null && this.constellations.has(asID)) add("constellation", asID, 0, q);
    hits.sort((a, b) => a.rank - b.rank || KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || a.name.localeCompare(b.name) || a.id - b.id);
    return hits.slice(0, limit).map((h) => this.entry(h.kind, h.id));
  }
}

/** 0 equal, 1 prefix, 2 a word's prefix, 3 substring, null no match. */
function rank(name, q) {
  if (name === q) return 0;
  if (name.startsWith(q)) return 1;
  const at = name.indexOf(q);
  if (at < 0) return null;
  return /[\s\-]/.test(name[at - 1]) ? 2 : 3;
}

/** Security status as EVE shows it: one decimal, 0.0 < s < 0.05 shown as 0.1. */
export function displaySec(sec) {
  if (sec > 0 && sec < 0.05) return 0.1;
  return Math.round(sec * 10) / 10;
}

export async function loadUniverse(fetchImpl = fetch) {
  const res = await fetchImpl("/api/universe");
  if (!res.ok) throw new Error(`GET /api/universe: ${res.status}`);
  return new Universe(await res.json());
}
