// A Socket.IO server whose handshakes are authenticated by sessiond.
//
//   SESSIOND_SERVICE_KEY=sk_... [SESSIOND_URL=http://127.0.0.1:8080] [PORT=3000] node server.js
//
// The browser page (./public) gets a one-time WebSocket ticket from sessiond and passes it in
// the handshake (`io({ auth: { ticket } })`); this server redeems it with its service key.
// A backend-to-backend client may instead pass an access token (`auth: { token }`), which is
// checked with sessiond's introspection.

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { Server } from "socket.io";

const PORT = Number(process.env.PORT ?? 3000);
const SESSIOND_URL = (process.env.SESSIOND_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
const SESSIOND_SERVICE_KEY = process.env.SESSIOND_SERVICE_KEY;
if (!SESSIOND_SERVICE_KEY) {
  console.error("SESSIOND_SERVICE_KEY is required (create one: sessiond service-keys create socketio --scope introspect)");
  process.exit(1);
}

const PUBLIC_DIR = fileURLToPath(new URL("./public/", import.meta.url));
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

// Static files from ./public, plus /config.js telling the page where sessiond is.
// Socket.IO answers /socket.io/* itself, including the client at /socket.io/socket.io.js.
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
  const file = normalize(join(PUBLIC_DIR, path === "/" ? "index.html" : path));
  if (!file.startsWith(PUBLIC_DIR)) {
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

// POST to a sessiond service endpoint with the service key; the parsed JSON answer.
async function sessiond(path, body, contentType) {
  const res = await fetch(`${SESSIOND_URL}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${SESSIOND_SERVICE_KEY}`, "content-type": contentType },
    body,
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`sessiond ${path} answered ${res.status}`);
  return res.json();
}

// Every handshake is authenticated before "connection".
io.use(async (socket, next) => {
  const { ticket, token } = socket.handshake.auth ?? {};
  try {
    if (typeof ticket === "string" && ticket) {
      // Browsers: a one-time ticket from POST /v1/ws-tickets, redeemed here exactly once.
      const r = await sessiond("/v1/ws-tickets/redeem", JSON.stringify({ ticket }), "application/json");
      if (!r.active) return next(new Error("invalid or expired ticket"));
      socket.data.user = { sub: r.sub, sid: r.sid, is_guest: r.is_guest, email: r.email ?? null };
      return next();
    }
    if (typeof token === "string" && token) {
      // Alternative (e.g. another backend or a native app): an access token, introspected.
      const r = await sessiond("/v1/introspect", new URLSearchParams({ token }).toString(),
        "application/x-www-form-urlencoded");
      if (!r.active) return next(new Error("invalid or expired token"));
      socket.data.user = { sub: r.sub, sid: r.sid, is_guest: r.is_guest, email: r.email ?? null };
      return next();
    }
    return next(new Error("a ticket or an access token is required"));
  } catch (err) {
    console.error("handshake check failed:", err.message);
    return next(new Error("authentication unavailable"));
  }
});

io.on("connection", (socket) => {
  socket.emit("hello", socket.data.user);
});

http.listen(PORT, () => {
  const { port } = http.address();
  console.log(`socket.io example on http://localhost:${port} (sessiond: ${SESSIOND_URL})`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
