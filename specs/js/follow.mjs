// follow.mjs BASE_URL — drives the official phoenix client (with the ws
// package as its transport: Node 20 has no global WebSocket) against
// killfeed's Phoenix Channels v2 endpoint, for specs/phoenix_test.go.
//
// It joins system:30000142 (and, once, the unknown topic nope:1), prints one
// JSON object per line for everything that happens, and rejoins with
// {since: <last event_id>} after the socket drops. It exits when stdin says
// "quit".
import { Socket } from "phoenix";
import WebSocket from "ws";
import readline from "node:readline";

const base = process.argv[2];
if (!base) {
  console.error("usage: node follow.mjs http://127.0.0.1:8080");
  process.exit(2);
}
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const socket = new Socket(base.replace(/^http/, "ws") + "/socket", {
  transport: WebSocket,
  heartbeatIntervalMs: 500,
  reconnectAfterMs: () => 300,
  rejoinAfterMs: () => 300,
});
socket.onOpen(() => say({ event: "open" }));
socket.onClose((e) => say({ event: "close", code: e.code, reason: e.reason }));
socket.onMessage((m) => {
  if (m.topic === "phoenix" && m.event === "phx_reply") {
    say({ event: "heartbeat", status: m.payload.status });
  }
});
socket.connect();

let last = 0;
// The params closure is evaluated at every (re)join: resume after the last
// event seen, so that nothing is lost or repeated across a dropped socket.
const channel = socket.channel("system:30000142", () => (last > 0 ? { since: last } : {}));
channel.on("new_killmail", (p) => {
  if (p.event_id <= last) {
    say({ event: "duplicate", event_id: p.event_id });
    return;
  }
  last = p.event_id;
  say({ event: "killmail", event_id: p.event_id, system_id: p.system_id, killmail_id: p.killmail.killmail_id });
});
channel.onError(() => say({ event: "channel_error" }));
channel
  .join()
  .receive("ok", (r) => say({ event: "joined", head: r.head, missed: r.missed, since: last }))
  .receive("error", (r) => say({ event: "join_error", reason: r.reason }));

const bad = socket.channel("nope:1", {});
bad
  .join()
  .receive("ok", () => say({ event: "joined_bad_topic" }))
  .receive("error", (r) => {
    say({ event: "join_error", topic: "nope:1", reason: r.reason });
    bad.leave();
  });

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "leave") {
    channel.leave().receive("ok", () => say({ event: "left" }));
  }
  if (line.trim() === "quit") {
    socket.disconnect(() => process.exit(0));
  }
});
