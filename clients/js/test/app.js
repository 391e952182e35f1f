// The app the Chromium tests drive: a page that uses @sessiond/client (the built ESM file, as
// a browser would load it), an Express API guarded by requireSession(), and a Socket.IO server
// guarded by socketAuth(), all on one origin that sessiond's CORS list allows.
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import express from "express";
import { Server } from "socket.io";
import { requireSession, socketAuth } from "@sessiond/node";
import { HOST } from "./harness.js";

const require = createRequire(import.meta.url);
const CLIENT_DIST = join(dirname(require.resolve("@sessiond/client/package.json")), "dist", "esm");
const REACT_DIST = join(dirname(require.resolve("@sessiond/react/package.json")), "dist", "esm");

/**
 * React and ReactDOM (CommonJS only) as one ES module for the browser, without a bundler: each
 * file wrapped in a function, with a require() over them.
 */
async function reactBundle() {
  const files = {
    react: "react/cjs/react.production.js",
    "react-dom": "react-dom/cjs/react-dom.production.js",
    "react-dom/client": "react-dom/cjs/react-dom-client.production.js",
    scheduler: "scheduler/cjs/scheduler.production.js",
  };
  let out = "const process = { env: { NODE_ENV: 'production' } };\nconst defined = {}, loaded = {};\n";
  out += "function require(name) {\n  if (!loaded[name]) { loaded[name] = { exports: {} }; defined[name](loaded[name], loaded[name].exports); }\n  return loaded[name].exports;\n}\n";
  for (const [name, file] of Object.entries(files)) {
    out += `defined[${JSON.stringify(name)}] = function (module, exports) {\n${await readFile(new URL(`../node_modules/${file}`, import.meta.url), "utf8")}\n};\n`;
  }
  out += "const React = require('react');\nexport default React;\nexport const ReactDOMClient = require('react-dom/client');\n";
  out += "export const { createContext, createElement, useContext, useSyncExternalStore } = React;\n";
  return out;
}

/** A page rendering useSession() of @sessiond/react; window.renders lists what it showed. */
const REACT_PAGE = (sessiondUrl) => `<!doctype html>
<html><head><meta charset="utf-8"><title>sessiond react test</title>
<script type="importmap">{ "imports": {
  "react": "/vendor/react.js", "@sessiond/client": "/client/index.js", "@sessiond/react": "/sessiond-react/index.js"
} }</script>
<script type="module">
  import React, { ReactDOMClient } from "react";
  import { createClient } from "@sessiond/client";
  import { SessiondProvider, useSession } from "@sessiond/react";
  const client = createClient({ url: ${JSON.stringify(sessiondUrl)} });
  window.client = client;
  window.renders = [];
  function Status() {
    const { status, user, event } = useSession();
    const text = user ? \`\${status} \${user.id}\` : status;
    window.renders.push({ text, event });
    return React.createElement("p", { id: "status" }, text);
  }
  ReactDOMClient.createRoot(document.getElementById("root"))
    .render(React.createElement(SessiondProvider, { client }, React.createElement(Status)));
  window.appReady = true;
</script></head><body><div id="root"></div></body></html>`;

const PAGE = (sessiondUrl) => `<!doctype html>
<html><head><meta charset="utf-8"><title>sessiond client test</title>
<script src="/socket.io/socket.io.js"></script>
<script type="module">
  import { createClient } from "/client/index.js";
  // ?nohint: the client always asks sessiond at start (sessionHint: false).
  const nohint = new URLSearchParams(location.search).has("nohint");
  const client = createClient({ url: ${JSON.stringify(sessiondUrl)}, ...(nohint ? { sessionHint: false } : {}) });
  window.client = client;
  window.changes = [];
  client.onChange((e) => window.changes.push(e));
  // What this origin's tabs say to each other (anyone on the origin can listen).
  window.channelMessages = [];
  new BroadcastChannel(${JSON.stringify(`sessiond:${sessiondUrl}`)}).onmessage = (e) => window.channelMessages.push(e.data);
  window.socketEvents = [];
  // Opens a Socket.IO connection with a fresh ticket (client.socketAuth()); resolves with the
  // server's "hello". bind: the client disconnects the socket when the session ends.
  window.connectSocket = ({ bind = false } = {}) => new Promise((resolve, reject) => {
    const socket = io({ auth: client.socketAuth(), reconnection: false });
    if (bind) client.bindSocket(socket);
    window.socket = socket;
    socket.on("hello", resolve);
    socket.on("connect_error", (err) => reject(new Error("connect_error: " + err.message)));
    socket.on("session_ended", (why) => window.socketEvents.push({ type: "session_ended", ...why, at: Date.now() }));
    socket.on("disconnect", (reason) => window.socketEvents.push({ type: "disconnect", reason, at: Date.now() }));
  });
  window.appReady = true;
</script></head><body>test app</body></html>`;

/**
 * The page sessiond's mailed links open (`SESSIOND__ACCOUNTS__LINK_URL`, `?type=&token=`): for a
 * `reset_password` link it shows a form for the new password, whose submit completes the link
 * with client.completeFromUrl() (the page's own URL) and signs in; window.completed is its result
 * (or `{ error }`), and #status says the same in words.
 */
const AUTH_PAGE = (sessiondUrl) => `<!doctype html>
<html><head><meta charset="utf-8"><title>sessiond link test</title>
<script type="module">
  import { createClient } from "/client/index.js";
  const client = createClient({ url: ${JSON.stringify(sessiondUrl)} });
  window.client = client;
  window.changes = [];
  client.onChange((e) => window.changes.push(e));
  const form = document.getElementById("reset");
  const status = document.getElementById("status");
  form.hidden = new URLSearchParams(location.search).get("type") !== "reset_password";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      window.completed = await client.completeFromUrl(undefined, { newPassword: form.elements.password.value });
      status.textContent = window.completed ? \`signed in as \${window.completed.user.email}\` : "no link";
    } catch (err) {
      window.completed = { error: err.code ?? err.message };
      status.textContent = \`failed: \${window.completed.error}\`;
    }
  });
  window.appReady = true;
</script></head><body>
<form id="reset" hidden>
  <input type="text" name="username" autocomplete="username" hidden>
  <label>New password <input id="new-password" name="password" type="password" autocomplete="new-password"></label>
  <button id="set-password" type="submit">Set password</button>
</form>
<p id="status"></p>
</body></html>`;

/**
 * Starts the app on `port` (chosen before sessiond starts, so sessiond's CORS list can name
 * it). `events` (default true): socketAuth follows sessiond's event feed (the key needs scope
 * `events`), as a real deployment would.
 */
export async function startApp({ port, sessiondUrl, serviceKey, events = true }) {
  const stats = { refused: 0, ok: 0 };
  const app = express();
  app.get("/", (req, res) => res.type("html").set("cache-control", "no-store").send(PAGE(sessiondUrl)));
  app.get("/auth.html", (req, res) => res.type("html").set("cache-control", "no-store").send(AUTH_PAGE(sessiondUrl)));
  app.get("/react", (req, res) => res.type("html").set("cache-control", "no-store").send(REACT_PAGE(sessiondUrl)));
  app.get("/vendor/react.js", async (req, res) => res.type("js").send(await reactBundle()));
  app.get("/sessiond-react/:file", async (req, res) => {
    if (!/^[\w.-]+\.js$/.test(req.params.file)) return res.sendStatus(404);
    try {
      res.type("js").send(await readFile(join(REACT_DIST, req.params.file)));
    } catch {
      res.sendStatus(404);
    }
  });
  app.get("/client/:file", async (req, res) => {
    if (!/^[\w.-]+\.js$/.test(req.params.file)) return res.sendStatus(404);
    try {
      res.type("js").send(await readFile(join(CLIENT_DIST, req.params.file)));
    } catch {
      res.sendStatus(404);
    }
  });
  const guard = requireSession({ url: sessiondUrl, serviceKey });
  app.get("/api/me", (req, res, next) => {
    res.on("finish", () => { if (res.statusCode === 401) stats.refused++; else if (res.statusCode === 200) stats.ok++; });
    next();
  }, guard, (req, res) => res.json(req.auth));

  const http = createServer(app);
  const io = new Server(http);
  const auth = socketAuth({ url: sessiondUrl, serviceKey, events });
  io.use(auth);
  io.on("connection", (socket) => socket.emit("hello", socket.data.session));
  http.listen(port, HOST);
  await once(http, "listening");
  return {
    url: `http://${HOST}:${port}`,
    stats,
    auth,
    close: async () => {
      await new Promise((r) => io.close(() => r()));
      await auth.close();
      await guard.sessiond.close();
    },
  };
}
