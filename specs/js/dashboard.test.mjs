// Unit tests of the dashboard's logic that is easy to get wrong: the cursor
// that resumes a feed after a drop, the reconnecting socket around it, and
// the name search. Run by specs/dashboard_test.go (node --test).
import { test } from "node:test";
import assert from "node:assert/strict";

import { Cursor, Live, backoff, isEmpty } from "../../transport/ui/feed.js";
import { Universe } from "../../transport/ui/universe.js";

test("the first subscribe starts at the head, later ones after the last event", () => {
  const c = new Cursor();
  const sel = { systems: [30000142], regions: [], constellations: [10] };
  assert.deepEqual(c.subscribeFrame(sel), { type: "subscribe", systems: [30000142], constellations: [10] });
  c.subscribed(40);
  assert.equal(c.since, 40);
  assert.equal(c.accept(41), true);
  assert.equal(c.accept(45), true);
  c.subscribed(99); // a later acknowledgement does not move it
  assert.equal(c.since, 45);
  assert.deepEqual(c.subscribeFrame(sel), { type: "subscribe", systems: [30000142], constellations: [10], since: 45 });
  assert.equal(c.accept(45), false);
  assert.equal(c.accept(44), false);
  assert.equal(c.duplicates, 2);
});

test("backoff doubles from 0.5 s to 30 s, with jitter in the upper half", () => {
  assert.equal(backoff(0, () => 0), 250);
  assert.equal(backoff(0, () => 1), 500);
  assert.equal(backoff(3, () => 1), 4000);
  assert.equal(backoff(50, () => 0), 15000);
  assert.equal(backoff(50, () => 1), 30000);
});

/** A WebSocket stand-in: the test plays the server. */
class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = null;
    FakeSocket.all.push(this);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close(code) {
    this.closed = code;
  }
  open() {
    this.onopen?.();
  }
  frame(f) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  drop(code) {
    this.onclose?.({ code });
  }
}

function fakeTimers() {
  const pending = new Map();
  let next = 1;
  return {
    setTimeout(fn, ms) {
      pending.set(next, { fn, ms });
      return next++;
    },
    clearTimeout(id) {
      pending.delete(id);
    },
    fire() {
      const [[id, t]] = pending;
      pending.delete(id);
      t.fn();
      return t.ms;
    },
    pending,
  };
}

function startLive() {
  FakeSocket.all = [];
  const got = [];
  const states = [];
  const timers = fakeTimers();
  const live = new Live({
    url: "ws://x/api/ws",
    onEvent: (f) => got.push(f.event_id),
    onState: (s, d) => states.push([s, d]),
    WebSocketImpl: FakeSocket,
    timers,
    random: () => 1,
  });
  return { live, got, states, timers };
}

test("a dropped socket resumes after the last event, once, with backoff", () => {
  const { live, got, states, timers } = startLive();
  live.follow({ systems: [30000142] });
  let ws = FakeSocket.all[0];
  ws.open();
  assert.deepEqual(ws.sent, [{ type: "subscribe", systems: [30000142] }]);
  ws.frame({ type: "subscribed", systems: [30000142], head: 5, missed: false });
  ws.frame({ type: "killmail", event_id: 6, system_id: 30000142, killmail: {} });
  ws.frame({ type: "killmail", event_id: 9, system_id: 30000142, killmail: {} });
  assert.deepEqual(got, [6, 9]);

  ws.drop(1001);
  assert.deepEqual(states.at(-1), ["retrying", { delay: 500, code: 1001, attempt: 1 }]);
  assert.equal(timers.fire(), 500);
  FakeSocket.all[1].drop(1006); // refused
  assert.deepEqual(states.at(-1), ["retrying", { delay: 1000, code: 1006, attempt: 2 }]);
  assert.equal(timers.fire(), 1000);

  ws = FakeSocket.all[2];
  ws.open();
  assert.deepEqual(ws.sent, [{ type: "subscribe", systems: [30000142], since: 9 }]);
  ws.frame({ type: "subscribed", systems: [30000142], head: 20, missed: false });
  ws.frame({ type: "killmail", event_id: 9, system_id: 30000142, killmail: {} }); // a server that repeats
  ws.frame({ type: "killmail", event_id: 12, system_id: 30000142, killmail: {} });
  assert.deepEqual(got, [6, 9, 12]);
  assert.equal(live.cursor.duplicates, 1);
  assert.equal(live.subscriptions, 2);

  ws.drop(1012); // the attempts count again from the first
  assert.deepEqual(states.at(-1), ["retrying", { delay: 500, code: 1012, attempt: 1 }]);
});

test("a new selection replaces the connection and resumes after the last event", () => {
  const { live, got, timers } = startLive();
  live.follow({ systems: [1] });
  const first = FakeSocket.all[0];
  first.open();
  first.frame({ type: "subscribed", head: 3, missed: false });
  first.frame({ type: "killmail", event_id: 4 });

  live.follow({ systems: [1], regions: [10000002] });
  assert.equal(first.closed, 1000);
  first.frame({ type: "killmail", event_id: 5 }); // late, from the old socket: ignored
  first.drop(1000); // no retry for a socket replaced on purpose
  assert.equal(timers.pending.size, 0);

  const second = FakeSocket.all[1];
  second.open();
  assert.deepEqual(second.sent, [{ type: "subscribe", systems: [1], regions: [10000002], since: 4 }]);
  second.frame({ type: "subscribed", head: 9, missed: false });
  second.frame({ type: "killmail", event_id: 5 });
  assert.deepEqual(got, [4, 5]);

  live.stop();
  assert.equal(second.closed, 1000);
  assert.equal(FakeSocket.all.length, 2);
});

test("the search finds systems, regions and constellations by name or id", () => {
  const u = new Universe({
    regions: [[10000002, "The Forge"], [10000043, "Domain"]],
    systems: [
      [30000142, "Jita", 20000020, 10000002, 0.9459],
      [30000144, "Perimeter", 20000020, 10000002, 0.9527],
      [30002187, "Amarr", 20000322, 10000043, 1.0],
      [30002188, "Jitanen", 20000322, 10000043, 0.5],
    ],
  });
  const hits = (q) => u.search(q).map((h) => `${h.kind}:${h.id}`);
  // Jita equals, Jitanen starts with it; their constellations rank one lower.
  assert.deepEqual(hits("jita"), ["system:30000142", "system:30002188", "constellation:20000020", "constellation:20000322"]);
  assert.deepEqual(hits("  FORGE "), ["region:10000002"]);
  assert.deepEqual(hits("30002187"), ["system:30002187"]);
  assert.deepEqual(hits("20000020"), ["constellation:20000020"]);
  assert.deepEqual(hits(""), []);
  assert.deepEqual(u.entry("constellation", 20000020), {
    kind: "constellation", id: 20000020, label: "Constellation 20000020", detail: "Jita, Perimeter · The Forge",
  });
});

test("a selection of who and how much is a subscribe of its own terms", () => {
  const c = new Cursor();
  const sel = { systems: [], constellations: [], regions: [10000002], characters: [], corporations: [], alliances: [99000001], groups: [29], min_value: 1e9 };
  assert.deepEqual(c.subscribeFrame(sel), { type: "subscribe", regions: [10000002], alliances: [99000001], groups: [29], min_value: 1e9 });
  assert.equal(isEmpty({ alliances: [1] }), false);
  assert.equal(isEmpty({ min_value: 0 }), false);
  assert.equal(isEmpty({ systems: [], alliances: [] }), true);
});
