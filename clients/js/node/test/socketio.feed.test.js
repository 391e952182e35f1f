// sessiond's own session event feed (GET /v1/events, service key scope `events`; keep-alive every
// second here). Sockets of ended sessions are told why and disconnected within 1 s; a JWKS-mode
// Express API refuses tokens of ended sessions within 1 s without introspecting them; the
// follower resumes after Last-Event-ID, starts over on a reset, and stays connected through
// quiet periods on keep-alives. On SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import express from "express";
import { SESSION_ENDED_EVENT, SessionEvents, Sessiond, requireSession, socketAuth } from "@sessiond/node";
import { DATABASES, HOST, call, eventually, sleep, startSessiond } from "../../test/harness.js";
import { connect, socketServer } from "./helpers.js";

const T = { timeout: 20_000 };
const PASSWORD = "correct horse battery staple";

for (const db of DATABASES) {
  describe(`event feed on ${db}`, () => {
    let stack;
    let auth;
    let server;

    before(async () => {
      stack = await startSessiond({
        db, scopes: ["introspect", "events"], env: { SESSIOND__EVENTS__KEEPALIVE_SECS: "1" },
      });
      auth = socketAuth({ url: stack.url, serviceKey: stack.serviceKey });
      server = await socketServer(auth);
      await eventually(() => auth.sessiond.events.live, { what: "feed live", timeoutMs: 10_000 });
    }, { timeout: 60_000 });

    after(async () => {
      await server?.close();
      await auth?.close();
      await stack?.stop();
    });

    /** Resolves with { ended, reason, ms } once the socket was told and disconnected. */
    function watch(socket) {
      const start = Date.now();
      return new Promise((resolve) => {
        let told = null;
        socket.on(SESSION_ENDED_EVENT, (why) => { told = why; });
        socket.on("disconnect", (reason) => resolve({ told, reason, ms: Date.now() - start }));
      });
    }

    async function signup() {
      const email = `feed-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
      const { body } = await call(stack, "POST", "/v1/signup", { body: { email, password: PASSWORD } });
      return body;
    }

    test("logout: the session's sockets get session_ended { reason: logout } and close within 1 s", T, async () => {
      const session = await signup();
      const { socket } = await connect(server.url, { auth: { token: session.access_token } });
      const closed = watch(socket);
      assert.equal((await call(stack, "POST", "/v1/logout", { token: session.access_token, body: {} })).status, 204);
      const result = await closed;
      assert.deepEqual(result.told, { reason: "logout", session_id: session.session_id });
      assert.equal(result.reason, "io server disconnect");
      assert.ok(result.ms < 1000, `${result.ms} ms`);
    });

    test("revoked from another device, password change, admin revoke, user deleted", T, async () => {
      const first = await signup();
      const login = async () => (await call(stack, "POST", "/v1/login", {
        body: { email: first.user.email, password: PASSWORD },
      })).body;
      const second = await login();

      // DELETE /v1/sessions/{id} from the first device ends the second: reason "revoked".
      let s = await connect(server.url, { auth: { token: second.access_token } });
      let closed = watch(s.socket);
      await call(stack, "DELETE", `/v1/sessions/${second.session_id}`, { token: first.access_token });
      assert.equal((await closed).told.reason, "revoked");

      // A password change ends the user's other sessions: "password_changed".
      const third = await login();
      s = await connect(server.url, { auth: { token: third.access_token } });
      closed = watch(s.socket);
      const stays = await connect(server.url, { auth: { token: first.access_token } });
      await call(stack, "POST", "/v1/password", {
        token: first.access_token, body: { current_password: PASSWORD, new_password: `${PASSWORD} 2` },
      });
      assert.equal((await closed).told.reason, "password_changed");
      assert.equal(stays.socket.connected, true);

      // Admin revocation: "admin".
      closed = watch(stays.socket);
      await call(stack, "POST", `/v1/admin/users/${first.user.id}/revoke-sessions`, { token: stack.adminKey });
      const admin = await closed;
      assert.equal(admin.told.reason, "admin");
      assert.ok(admin.ms < 1000, `${admin.ms} ms`);

      // Deleting the user closes what is left (its sessions end with "user_deleted").
      const other = await signup();
      s = await connect(server.url, { auth: { token: other.access_token } });
      closed = watch(s.socket);
      await call(stack, "DELETE", `/v1/admin/users/${other.user.id}`, { token: stack.adminKey });
      assert.equal((await closed).told.reason, "user_deleted");
    });

    test("JWKS mode with the feed: verified locally, and refused within 1 s of a logout", T, async () => {
      let introspections = 0;
      const guard = requireSession({
        url: stack.url, serviceKey: stack.serviceKey, mode: "jwks",
        fetch: (input, init) => {
          if (String(input).endsWith("/v1/introspect")) introspections++;
          return fetch(input, init);
        },
      });
      const app = express();
      app.get("/me", guard, (req, res) => res.json(req.auth));
      const http = app.listen(0, HOST);
      await once(http, "listening");
      const get = (token) => fetch(`http://${HOST}:${http.address().port}/me`, {
        headers: { authorization: `Bearer ${token}` },
      }).then((r) => r.status);
      try {
        await eventually(() => guard.sessiond.events.live, { what: "feed live" });
        // Tokens issued before the feed was complete are introspected; wait past that margin.
        await sleep(Math.max(0, guard.sessiond.events.liveSince + 6000 - Date.now()));
        const session = await signup();
        assert.equal(await get(session.access_token), 200);
        assert.equal(introspections, 0, "a token issued after the feed was live was introspected");
        await call(stack, "POST", "/v1/logout", { token: session.access_token, body: {} });
        const start = Date.now();
        await eventually(async () => (await get(session.access_token)) === 401, { timeoutMs: 1000, what: "refused" });
        assert.ok(Date.now() - start <= 1000);
        assert.equal(introspections, 0);
      } finally {
        http.closeAllConnections();
        http.close();
        await guard.sessiond.close();
      }
    });

    test("one shared Sessiond (introspection and the feed) for Express and Socket.IO: a logout closes the socket and the route refuses", T, async () => {
      const sessiond = new Sessiond({ url: stack.url, serviceKey: stack.serviceKey, events: true });
      const guard = requireSession({ sessiond });
      const sockets = socketAuth({ sessiond });
      const app = express();
      app.get("/me", guard, (req, res) => res.json(req.auth));
      const http = app.listen(0, HOST);
      await once(http, "listening");
      const io = await socketServer(sockets);
      const get = (token) => fetch(`http://${HOST}:${http.address().port}/me`, {
        headers: { authorization: `Bearer ${token}` },
      }).then((r) => r.status);
      try {
        await sockets.ready();
        const session = await signup();
        assert.equal(await get(session.access_token), 200);
        const { socket } = await connect(io.url, { auth: { token: session.access_token } });
        const closed = watch(socket);
        await call(stack, "POST", "/v1/logout", { token: session.access_token, body: {} });
        const result = await closed;
        assert.deepEqual(result.told, { reason: "logout", session_id: session.session_id });
        assert.ok(result.ms < 1000, `${result.ms} ms`);
        assert.equal(await get(session.access_token), 401);
      } finally {
        http.closeAllConnections();
        http.close();
        await io.close();
        await sockets.close();
        await sessiond.close();
      }
    });

    test("the follower resumes after Last-Event-ID with nothing lost; at 'open' the missed events are already delivered", T, async () => {
      const first = new SessionEvents({ url: stack.url, serviceKey: stack.serviceKey }).start();
      const seen = [];
      first.on("event", (e) => seen.push(e));
      await eventually(() => first.live, { what: "live" });
      const a = await signup();
      await eventually(() => seen.some((e) => e.type === "session.created" && e.session_id === a.session_id),
        { what: "session.created" });
      const resumeFrom = first.lastEventId;
      await first.close();

      // While nobody listens: a logout and a new session.
      await call(stack, "POST", "/v1/logout", { token: a.access_token, body: {} });
      const b = await signup();

      const second = new SessionEvents({ url: stack.url, serviceKey: stack.serviceKey, lastEventId: resumeFrom });
      const missed = [];
      let atOpen = null;
      second.on("event", (e) => missed.push(e));
      second.on("open", () => { atOpen = missed.map((e) => e.session_id); });
      second.start();
      try {
        await eventually(() => second.live, { what: "live again" });
        assert.ok(atOpen?.includes(b.session_id), `live before the backlog was replayed: ${atOpen}`);
        await eventually(() => missed.some((e) => e.session_id === b.session_id), { what: "missed events" });
        const ended = missed.find((e) => e.type === "session.ended" && e.session_id === a.session_id);
        assert.equal(ended?.reason, "logout");
        assert.equal(ended.user_id, a.user.id);
        const ids = missed.map((e) => BigInt(e.id));
        assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), "ids increase");
        assert.ok(ids[0] > BigInt(resumeFrom));
      } finally {
        await second.close();
      }
    });

    test("the wire format: `: connected`, then id/event/data frames with integer ids, keep-alive comments", T, async () => {
      const abort = new AbortController();
      const res = await fetch(`${stack.url}/v1/events`, {
        headers: { authorization: `Bearer ${stack.serviceKey}`, accept: "text/event-stream" },
        signal: abort.signal,
      });
      try {
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-type"), /^text\/event-stream/);
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let text = "";
        const until = async (re) => {
          while (!re.test(text)) {
            const { value, done } = await reader.read();
            if (done) throw new Error(`stream ended: ${JSON.stringify(text)}`);
            text += decoder.decode(value, { stream: true });
          }
        };
        await until(/^: connected\n\n/);
        const session = await signup();
        await until(new RegExp(`"session_id":"${session.session_id}".*\\n\\n`));
        // (On SQLite a stream opened without Last-Event-ID may also carry events committed
        // just before it was opened; only this session's frame is looked at.)
        const frames = [...text.matchAll(/id: (\d+)\nevent: ([\w.]+)\ndata: (.*)\n\n/g)];
        const [, id, type, data] = frames.find((f) => f[3].includes(session.session_id));
        const event = JSON.parse(data);
        assert.equal(type, "session.created");
        assert.equal(event.id, Number(id));
        assert.equal(event.type, type);
        assert.deepEqual(Object.keys(event).sort(), ["at", "id", "reason", "session_id", "type", "user_id"]);
        assert.equal(event.session_id, session.session_id);
        assert.equal(event.user_id, session.user.id);
        assert.equal(event.reason, null);
        assert.ok(!Number.isNaN(Date.parse(event.at)));
        await until(/: keep-alive\n\n/);
      } finally {
        abort.abort();
      }
    });

    test("quiet for 4 s: the follower stays on one connection, kept alive by the comments", T, async () => {
      let connections = 0;
      const feed = new SessionEvents({
        url: stack.url, serviceKey: stack.serviceKey, idleTimeoutMs: 2500,
        fetch: (input, init) => { connections++; return fetch(input, init); },
      }).start();
      const closes = [];
      feed.on("close", (err) => closes.push(err?.message));
      try {
        await eventually(() => feed.live, { what: "live" });
        await sleep(4000);
        assert.equal(feed.live, true);
        assert.equal(connections, 1, `closes: ${closes}`);
      } finally {
        await feed.close();
      }
    });

    test("a resume point ahead of the feed gets a reset; an id that is not one is dropped (reset too)", T, async () => {
      for (const lastEventId of ["99999999", "not-an-id"]) {
        const feed = new SessionEvents({ url: stack.url, serviceKey: stack.serviceKey, lastEventId, retryMs: 50 });
        let resets = 0;
        const seen = [];
        feed.on("reset", () => resets++);
        feed.on("event", (e) => seen.push(e));
        feed.on("error", () => {});
        feed.start();
        try {
          await eventually(() => resets === 1 && feed.live, { what: `reset for ${lastEventId}` });
          assert.notEqual(feed.lastEventId, lastEventId);
          // After the reset the feed carries on from now.
          const session = await signup();
          await eventually(() => seen.some((e) => e.session_id === session.session_id), { what: "next event" });
          assert.equal(resets, 1);
        } finally {
          await feed.close();
        }
      }
    });
  });
}
