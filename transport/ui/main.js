// The dashboard page: the follow box, the live feed and the store's figures.
// Everything that comes from a killmail is written with textContent or
// attribute setters, never parsed as HTML.

import { Live } from "./feed.js";
import { displaySec, loadUniverse } from "./universe.js";

const MAX_ROWS = 500;
const STATS_EVERY_MS = 3000;
const KINDS = { system: "systems", constellation: "constellations", region: "regions" };
// Who and what: followed by id, narrowing the locations (or everything).
const TERMS = { character: "characters", corporation: "corporations", alliance: "alliances", group: "groups" };

const $ = (id) => document.getElementById(id);

/** Creates an element with a class and text. */
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function secClass(sec) {
  const s = displaySec(sec);
  return `sec sec-${s <= 0 ? "null" : Math.round(s * 10)}`;
}

/** ISK in EVE's short form: 1.23B ISK. */
export function formatISK(v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return null;
  for (const [n, unit, digits] of [[1e12, "T", 2], [1e9, "B", 2], [1e6, "M", 2], [1e3, "k", 1]]) {
    if (Math.abs(v) >= n) return `${(v / n).toFixed(digits)}${unit} ISK`;
  }
  return `${v.toFixed(2)} ISK`;
}

const number = new Intl.NumberFormat("en-US");

function formatBytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}

/**
 * The websocket URL: /api/ws on this host, with the read key of the page's
 * own ?key= when the server requires read keys (open /?key=… once; the
 * followed things live in the hash, so the key stays in the address).
 */
function liveURL() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/ws`;
  const key = new URLSearchParams(location.search).get("key");
  return key ? `${url}?key=${encodeURIComponent(key)}` : url;
}

class Dashboard {
  constructor(universe) {
    this.universe = universe;
    /** @type {Map<string, {kind, id, label, detail}>} followed things by "kind:id" */
    this.following = new Map();
    this.matches = [];
    this.active = -1;
    this.live = new Live({
      url: liveURL(),
      onEvent: (f) => this.show(f),
      onState: (state, detail) => this.setState(state, detail),
      onNotice: (text) => this.notice(text),
      onDuplicate: () => ($("conn").dataset.duplicates = this.live.cursor.duplicates),
    });
  }

  start() {
    const input = $("pick");
    input.addEventListener("input", () => this.suggest(input.value));
    input.addEventListener("keydown", (e) => this.key(e));
    input.addEventListener("blur", () => this.closeSuggestions());
    // mousedown, not click: choose before the input's blur closes the list.
    $("suggestions").addEventListener("mousedown", (e) => {
      const li = e.target.closest("li[role=option]");
      if (!li) return;
      e.preventDefault();
      this.choose(Number(li.dataset.index));
    });
    $("following").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-key]");
      if (b) this.unfollow(b.dataset.key);
    });
    $("clear").addEventListener("click", () => {
      $("feed").replaceChildren();
      this.updateCount();
    });
    $("who").addEventListener("submit", (e) => {
      e.preventDefault();
      const id = $("who-id").value.trim();
      if (!/^[1-9]\d{0,17}$/.test(id)) return this.notice("Give a positive id, e.g. 99000001");
      $("who-id").value = "";
      this.follow(this.term($("who-kind").value, Number(id)));
    });
    $("min-value").addEventListener("change", () => {
      const v = $("min-value").value.trim();
      if (v !== "" && !(Number(v) >= 0)) return this.notice("The minimum value is a number of ISK, 0 or more");
      this.minValue = v === "" ? null : Number(v);
      this.commit(this.following);
    });
    window.addEventListener("hashchange", () => this.fromHash());
    this.fromHash();
    this.pollStats();
  }

  // --- following -------------------------------------------------------

  fromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const next = new Map();
    for (const [kind, key] of Object.entries({ ...KINDS, ...TERMS })) {
      for (const part of (params.get(key) ?? "").split(",")) {
        if (!/^[1-9]\d{0,17}$/.test(part)) continue;
        const entry = KINDS[kind] ? this.universe.entry(kind, Number(part)) : this.term(kind, Number(part));
        if (entry) next.set(`${kind}:${entry.id}`, entry);
      }
    }
    const mv = params.get("min_value");
    const minValue = mv !== null && mv !== "" && Number(mv) >= 0 ? Number(mv) : null;
    const same = next.size === this.following.size && [...next.keys()].every((k) => this.following.has(k)) &&
      minValue === this.minValue;
    if (same && this.started) return;
    this.started = true;
    this.following = next;
    this.minValue = minValue;
    $("min-value").value = minValue ?? "";
    this.renderFollowing();
    this.live.follow(this.selection());
  }

  /** A who-or-what entry: followed by id, named by its kind. */
  term(kind, id) {
    if (!TERMS[kind]) return null;
    const label = kind === "group" ? "ship group" : kind;
    return { kind, id, label: `${label} ${id}`, detail: "" };
  }

  selection(following = this.following) {
    const sel = { systems: [], constellations: [], regions: [], characters: [], corporations: [], alliances: [], groups: [] };
    for (const e of following.values()) sel[KINDS[e.kind] ?? TERMS[e.kind]].push(e.id);
    if (this.minValue !== null && this.minValue !== undefined) sel.min_value = this.minValue;
    return sel;
  }

  /**
   * Writes a new set of followed things into the URL (shareable, kept on
   * reload); the hashchange that follows applies it (fromHash).
   */
  commit(following) {
    const params = new URLSearchParams();
    for (const [key, ids] of Object.entries(this.selection(following))) {
      if (Array.isArray(ids) && ids.length) params.set(key, ids.join(","));
    }
    if (this.minValue !== null && this.minValue !== undefined) params.set("min_value", String(this.minValue));
    location.hash = params.toString().replaceAll("%2C", ",");
  }

  follow(entry) {
    const next = new Map(this.following);
    next.set(`${entry.kind}:${entry.id}`, entry);
    this.commit(next);
  }

  unfollow(key) {
    const next = new Map(this.following);
    next.delete(key);
    this.commit(next);
    $("pick").focus();
  }

  renderFollowing() {
    const list = $("following");
    list.replaceChildren(
      ...[...this.following.entries()].map(([key, e]) => {
        const li = el("li", `chip chip-${e.kind}`);
        li.dataset.kind = e.kind;
        li.dataset.id = e.id;
        li.append(el("span", "chip-kind", e.kind), el("span", "chip-label", e.label));
        const b = el("button", "chip-remove", "×");
        b.type = "button";
        b.dataset.key = key;
        b.setAttribute("aria-label", `Stop following ${e.kind} ${e.label}`);
        li.append(b);
        return li;
      }),
    );
    $("following-empty").hidden = this.following.size > 0;
  }

  // --- the follow box (ARIA 1.2 combobox with a listbox popup) -----------

  suggest(text) {
    this.matches = this.universe.search(text);
    this.active = this.matches.length ? 0 : -1;
    this.renderSuggestions();
  }

  renderSuggestions() {
    const input = $("pick");
    const list = $("suggestions");
    list.replaceChildren(
      ...this.matches.map((m, i) => {
        const li = el("li", "option");
        li.id = `opt-${i}`;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", String(i === this.active));
        li.dataset.index = i;
        li.dataset.kind = m.kind;
        li.dataset.id = m.id;
        if (m.kind === "system") li.append(el("span", secClass(m.sec), displaySec(m.sec).toFixed(1)));
        li.append(el("span", "opt-label", m.label), el("span", "opt-kind", m.kind), el("span", "opt-detail", m.detail));
        return li;
      }),
    );
    const open = this.matches.length > 0;
    list.hidden = !open;
    input.setAttribute("aria-expanded", String(open));
    if (open && this.active >= 0) input.setAttribute("aria-activedescendant", `opt-${this.active}`);
    else input.removeAttribute("aria-activedescendant");
  }

  closeSuggestions() {
    this.matches = [];
    this.active = -1;
    this.renderSuggestions();
  }

  key(e) {
    const n = this.matches.length;
    switch (e.key) {
      case "ArrowDown":
      case "ArrowUp":
        if (!n) {
          this.suggest($("pick").value);
        } else {
          this.active = (this.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
          this.renderSuggestions();
          $(`opt-${this.active}`)?.scrollIntoView({ block: "nearest" });
        }
        e.preventDefault();
        break;
      case "Enter":
        if (this.active >= 0) this.choose(this.active);
        e.preventDefault();
        break;
      case "Escape":
        this.closeSuggestions();
        break;
    }
  }

  choose(i) {
    const m = this.matches[i];
    if (!m) return;
    $("pick").value = "";
    this.closeSuggestions();
    this.follow(m);
  }

  // --- the feed ----------------------------------------------------------

  setState(state, detail) {
    const conn = $("conn");
    conn.dataset.state = state;
    conn.dataset.subscriptions = this.live.subscriptions;
    conn.dataset.duplicates = this.live.cursor.duplicates;
    conn.dataset.since = this.live.cursor.since ?? "";
    if (state === "retrying") conn.dataset.failures = detail.attempt;
    if (state === "live") conn.dataset.failures = 0;
    const text = {
      idle: "Idle: follow a system, constellation or region",
      connecting: "Connecting…",
      live: "Live",
      retrying: `Disconnected${detail.code ? ` (${detail.code})` : ""}: retrying in ${Math.ceil((detail.delay ?? 0) / 1000)} s`,
    }[state];
    $("conn-text").textContent = text;
    if (state === "live") this.notice("");
  }

  notice(text) {
    const n = $("notice");
    n.textContent = text;
    n.hidden = !text;
  }

  show(f) {
    const km = f.killmail ?? {};
    const victim = km.victim ?? {};
    const li = el("li", "kill");
    li.dataset.eventId = f.event_id;
    li.dataset.systemId = f.system_id;

    const when = el("time", "kill-time");
    const t = typeof km.killmail_time === "string" ? new Date(km.killmail_time) : null;
    if (t && !Number.isNaN(t.getTime())) {
      when.dateTime = t.toISOString();
      when.textContent = t.toISOString().slice(0, 19).replace("T", " ");
      when.title = "EVE time (UTC)";
    } else {
      when.textContent = "—";
    }

    const shipName = typeof victim.ship_type_name === "string" ? victim.ship_type_name : null;
    const ship = el("span", "kill-ship", shipName ?? (Number.isSafeInteger(victim.ship_type_id) ? `Type ${victim.ship_type_id}` : "Unknown ship"));
    if (!shipName && Number.isSafeInteger(victim.ship_type_id)) ship.title = `ship type id ${victim.ship_type_id}`;

    // The victim: the names killfeed adds beside the ids (character, corporation
    // and alliance tickers), or the ids while ESI has not named them yet.
    const who = el("span", "kill-victim");
    const str = (v) => (typeof v === "string" && v ? v : null);
    const pilot = str(victim.character_name) ?? str(victim.corporation_name) ??
      (Number.isSafeInteger(victim.character_id) ? `Character ${victim.character_id}` :
        Number.isSafeInteger(victim.corporation_id) ? `Corporation ${victim.corporation_id}` : "—");
    who.append(el("span", "kill-pilot", pilot));
    const corp = str(victim.corporation_ticker);
    if (corp) who.append(el("span", "kill-ticker", `[${corp}]`));
    const alliance = str(victim.alliance_ticker);
    const full = [str(victim.character_name), str(victim.corporation_name), str(victim.alliance_name) &&
      `${victim.alliance_name}${alliance ? ` <${alliance}>` : ""}`].filter(Boolean);
    if (full.length) who.title = full.join(" · ");

    const sys = el("span", "kill-system");
    const s = this.universe.systems.get(f.system_id);
    const sysName = str(km.solar_system_name) ?? s?.name;
    const regionName = str(km.region_name) ?? (s ? this.universe.regions.get(s.region)?.name : null);
    const sec = typeof km.security === "number" ? km.security : s?.sec;
    if (sysName) {
      if (typeof sec === "number") sys.append(el("span", secClass(sec), displaySec(sec).toFixed(1)));
      sys.append(el("span", "kill-system-name", sysName), el("span", "kill-region", regionName ?? ""));
    } else {
      sys.append(el("span", "kill-system-name", `System ${f.system_id}`));
    }

    const isk = formatISK(km.zkb?.totalValue);
    const value = el("span", isk ? "kill-value" : "kill-value none", isk ?? "—");
    if (!isk) value.title = "no zkb value in this killmail";

    const attackers = Array.isArray(km.attackers) ? km.attackers.length : null;
    const meta = el("span", "kill-meta", `#${f.event_id}${attackers === null ? "" : ` · ${attackers} attacker${attackers === 1 ? "" : "s"}`}`);

    const what = el("span", "kill-what");
    what.append(ship, who);
    li.append(when, what, sys, value, meta);
    if (Number.isSafeInteger(km.killmail_id) && km.killmail_id > 0) {
      const a = el("a", "kill-link", "zKillboard");
      a.href = `https://zkillboard.com/kill/${km.killmail_id}/`;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.setAttribute("aria-label", `Killmail ${km.killmail_id} on zKillboard`);
      li.append(a);
    }

    const feed = $("feed");
    feed.prepend(li);
    while (feed.childElementCount > MAX_ROWS) feed.lastElementChild.remove();
    this.updateCount();
    $("conn").dataset.since = this.live.cursor.since ?? "";
  }

  updateCount() {
    const n = $("feed").childElementCount;
    $("feed-empty").hidden = n > 0;
    $("feed-count").textContent = n ? `(${number.format(n)})` : "";
  }

  // --- the store's figures -----------------------------------------------

  async pollStats() {
    try {
      const res = await fetch("/api/stats", { cache: "no-store" });
      if (!res.ok) throw new Error(String(res.status));
      const st = await res.json();
      const set = (name, text, title) => {
        const dd = document.querySelector(`[data-stat="${name}"]`);
        dd.textContent = text;
        if (title) dd.title = title;
      };
      set("head", number.format(st.head));
      set("events", number.format(st.events), `${formatBytes(st.bytes)} of killmail JSON, oldest event ${st.oldest_event_id}`);
      set("clients", number.format(st.clients));
      set("websockets", number.format(st.websockets));
      if (st.ingest_per_minute === null) set("rate", "…", "measured from the next sample on");
      else set("rate", `${st.ingest_per_minute.toFixed(1)}/min`, `over the last ${Math.round(st.ingest_window_seconds)} s`);
      $("stats").dataset.head = st.head;
    } catch {
      $("stats").dataset.head = "";
    }
    // Paused while the tab is hidden: nobody reads it.
    const again = () => setTimeout(() => this.pollStats(), STATS_EVERY_MS);
    if (document.hidden) document.addEventListener("visibilitychange", again, { once: true });
    else again();
  }
}

async function main() {
  try {
    const universe = await loadUniverse();
    new Dashboard(universe).start();
    document.body.dataset.ready = "true";
  } catch (err) {
    $("notice").textContent = `Could not load the static data: ${err.message}`;
    $("notice").hidden = false;
  }
}

main();
