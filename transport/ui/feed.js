// The live part of the dashboard, kept free of the DOM so that it can be
// tested on its own (specs/js/feed.test.mjs): the cursor that makes a
// reconnect resume without a gap or a duplicate, and the socket that uses it.

// Cursor remembers how far the feed has got. Every event of what is
// followed with an event_id up to `since` has been handled; a subscribe
// frame asks for what comes after it.
//
// This holds because the dashboard subscribes once per connection (a new
// selection opens a new connection), and the events of one subscribe arrive
// in event_id order: the first subscribe, without `since`, starts at the
// head its acknowledgement names; every later one says `since`.
export class Cursor {
  #since = null;
  /** Events dropped because they were at or below the cursor (should stay 0). */
  duplicates = 0;

  /** The last event_id handled, or the head the feed started at; null before the first subscribe. */
  get since() {
    return this.#since;
  }

  /** The native protocol's subscribe frame for a selection ({systems, constellations, regions, alliances, …, min_value}). */
  subscribeFrame(selection) {
    const frame = { type: "subscribe" };
    for (const key of SELECTION_LISTS) {
      if (selection[key]?.length) frame[key] = [...selection[key]];
    }
    if (typeof selection.min_value === "number") frame.min_value = selection.min_value;
    if (this.#since !== null) frame.since = this.#since;
    return frame;
  }

  /** Takes a `subscribed` acknowledgement: the first one fixes where the feed starts. */
  subscribed(head) {
    if (this.#since === null) this.#since = head;
  }

  /** Takes a killmail's event_id; false when it was handled already. */
  accept(eventId) {
    if (this.#since !== null && eventId <= this.#since) {
      this.duplicates++;
      return false;
    }
    this.#since = eventId;
    return true;
  }
}

/** The wait before reconnect attempt number `attempt` (0-based): 0.5 s doubling to 30 s, with jitter. */
export function backoff(attempt, random = Math.random) {
  const ceiling = Math.min(30_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** The list members of a selection: where, then who and what. */
export const SELECTION_LISTS = ["systems", "constellations", "regions", "characters", "corporations", "alliances", "groups"];

/** True when a selection follows nothing. */
export function isEmpty(selection) {
  return !SELECTION_LISTS.some((k) => selection[k]?.length) && typeof selection.min_value !== "number";
}

// Live keeps one websocket to /api/ws subscribed to a selection and hands
// each new killmail frame to onEvent exactly once, across drops.
//
// States passed to onState: "idle" (nothing followed), "connecting",
// "live" (subscribed), "retrying" (detail.delay ms until the next attempt,
// detail.code the close code, detail.attempt how many attempts in a row
// failed so far).
export class Live {
  #ws = null;
  #timer = null;
  #attempt = 0;
  #selection = {};

  constructor({ url, onEvent, onState = () => {}, onNotice = () => {}, onDuplicate = () => {}, WebSocketImpl = globalThis.WebSocket, timers = globalThis, random = Math.random }) {
    Object.assign(this, { url, onEvent, onState, onNotice, onDuplicate, WebSocketImpl, timers, random });
    this.cursor = new Cursor();
    /** How many subscribes were acknowledged (one per connection). */
    this.subscriptions = 0;
  }

  /** Follows a new selection: the current connection, if any, is replaced. */
  follow(selection) {
    this.#selection = selection;
    this.#attempt = 0;
    this.#drop();
    if (isEmpty(selection)) {
      this.onState("idle", {});
      return;
    }
    this.#open();
  }

  /** Stops following. */
  stop() {
    this.follow({});
  }

  #drop() {
    this.timers.clearTimeout(this.#timer);
    this.#timer = null;
    const ws = this.#ws;
    this.#ws = null;
    if (ws) ws.close(1000, "selection changed");
  }

  #open() {
    this.onState("connecting", {});
    const ws = new this.WebSocketImpl(this.url);
    this.#ws = ws;
    ws.onopen = () => {
      if (this.#ws === ws) ws.send(JSON.stringify(this.cursor.subscribeFrame(this.#selection)));
    };
    ws.onmessage = (msg) => {
      if (this.#ws === ws) this.#frame(msg.data);
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      const delay = backoff(this.#attempt++, this.random);
      this.onState("retrying", { delay, code: ev.code, attempt: this.#attempt });
      this.#timer = this.timers.setTimeout(() => {
        this.#timer = null;
        this.#open();
      }, delay);
    };
  }

  #frame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      this.onNotice("The server sent a frame that is not JSON.");
      return;
    }
    switch (f.type) {
      case "subscribed":
        this.cursor.subscribed(f.head);
        this.#attempt = 0;
        this.subscriptions++;
        this.onState("live", { head: f.head });
        if (f.missed) this.onNotice("Retention dropped killmails before they could be shown: the feed has a gap here.");
        break;
      case "killmail":
        if (this.cursor.accept(f.event_id)) this.onEvent(f);
        else this.onDuplicate(f);
        break;
      case "error":
        this.onNotice(`The server refused the subscription: ${f.error}`);
        break;
    }
  }
}
