// Follows killfeed's Phoenix Channels endpoint with the official phoenix
// client. Node 20 has no global WebSocket, so the ws package is the transport
// (in a browser, drop the transport option).
//
//   npm ci && node follow.mjs http://127.0.0.1:8080 30000142
import { Socket } from "phoenix";
import WebSocket from "ws";

const [base = "http://127.0.0.1:8080", system = "30000142"] = process.argv.slice(2);
const socket = new Socket(base.replace(/^http/, "ws") + "/socket", { transport: WebSocket });
socket.onClose((e) => console.error(`socket closed (${e.code}); reconnecting`));
socket.connect();

// The join params are a function: every rejoin (after a dropped socket)
// asks for what came after the last event seen, so nothing is lost or repeated.
let last = 0;
const channel = socket.channel(`system:${system}`, () => (last ? { since: last } : {}));
channel.on("new_killmail", ({ event_id, system_id, killmail }) => {
  last = event_id;
  console.log(`event ${event_id} system ${system_id} killmail ${killmail.killmail_id} at ${killmail.killmail_time}`);
});
channel
  .join()
  .receive("ok", ({ head, missed }) => console.error(`joined system:${system} at head ${head}${missed ? " (some events were dropped by retention)" : ""}`))
  .receive("error", ({ reason }) => console.error(`join failed: ${reason}`));
