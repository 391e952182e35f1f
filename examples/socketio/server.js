// A Socket.IO server whose handshakes are authenticated by sessiond, with @sessiond/node.
//
//   SESSIOND_SERVICE_KEY=sk_... [SESSIOND_URL=http://127.0.0.1:8080] [PORT=3000] node server.js
//
// The browser page (./public) signs in with @sessiond/client and passes a one-time WebSocket
// ticket in the handshake; a backend-to-backend client may pass an access token instead.
// The server follows sessiond's event feed (the service key needs the `events` scope too) and
// closes the sockets of a session within a second of its end, after telling the client why
// (`session_ended` with `{ reason }`); SESSIOND_EVENTS=off turns that off. With a key sessiond
// refuses for the feed (no `events` scope) it does not start: it says why and exits with 1.

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { Server } from "socket.io";
import { Sessiond, socketAuth } from "@sessiond/node";

const PORT = Number(process.env.PORT ?? 3000);
const SESSIOND_URL = (process.env.SESSIOND_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
const SESSIOND_SERVICE_KEY = process.env.SESSIOND_SERVICE_KEY;
const EVENTS = process.env.SESSIOND_EVENTS !== "off";
if (!SESSIOND_SERVICE_KEY) {
  console.error("SESSIOND_SERVICE_KEY is required (create one: sessiond service-keys create socketio --scope introspect --scope events)");
  process.exit(1);
}

// The page's files, and @sessiond/client's browser build served as /sessiond-client/*.
const PUBLIC_DIR = fileURLToPath(new URL("./public/", import.meta.url));
const CLIENT_DIR = join(dirname(createRequire(import.meta.url).resolve("@sessiond/client/package.json")), "dist/esm/");
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8" };

const http = createServer(async (req, res) => {
  const path = new URL(req.url, "http://localhost").pathname;
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  if (path === "/config.js") {
    res.writeHead(200, { "content-type": TYPES[".js"], "cache-control": "no-store" });
    res.end(`window.SESSIOND_URL = ${JSON.stringify(SESSIOND_URL)};\n`);
    return;
  }
  const [root, rest] = path.startsWith("/sessiond-client/")
    ? [CLIENT_DIR, path.slice("/sessiond-client/".length)]
    : [PUBLIC_DIR, path === "/" ? "index.html" : path];
  const file = normalize(join(root, rest));
  if (!file.startsWith(root)) {
    res.writeHead(404).end("not found");
    return;
  }
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch {
    res.writeHead(404).end("not found");
  }
});

const io = new Server(http);

// One Sessiond for the whole server (an Express app would pass the same one to
// requireSession({ sessiond })): introspection for tokens and tickets, and the event feed.
const sessiond = new Sessiond({ url: SESSIOND_URL, serviceKey: SESSIOND_SERVICE_KEY, events: EVENTS });

// Every handshake is checked before "connection": a ticket is redeemed once, an access token
// introspected; socket.data.session = { sub, sid, is_guest, email }. With the feed, when a
// session ends (logout, revocation, password change, reuse, admin, user deleted) its sockets get
// "session_ended" { reason, session_id } and are disconnected. events: false is the explicit
// opt-out (SESSIOND_EVENTS=off).
const auth = socketAuth({ sessiond, events: EVENTS });
io.use(auth);
sessiond.events?.on("open", () => console.log("event feed: connected"));

io.on("connection", (socket) => {
  socket.emit("hello", socket.data.session);
});

// Start only once the feed is live: a key without the events scope stops the server here.
try {
  await sessiond.ready();
} catch (err) {
  console.error(`cannot follow sessiond's event feed: ${err.message}`);
  process.exit(1);
}

http.listen(PORT, () => {
  const { port } = http.address();
  console.log(`socket.io example on http://localhost:${port} (sessiond: ${SESSIOND_URL}, event feed: ${EVENTS ? "on" : "off"})`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    io.close();
    await auth.close();
    await sessiond.close();
    process.exit(0);
  });
}
