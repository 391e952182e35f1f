// socketAuth() in a real Socket.IO server against the real sessiond, on SQLite and PostgreSQL:
// tickets, access tokens, refusals. The disconnect-on-session-end logic is driven here by a
// scripted event feed in front of the real sessiond; node/test/socketio.feed.test.js runs it
// against sessiond's own GET /v1/events.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { SESSION_ENDED_EVENT, Sessiond, requireSession, socketAuth } from "@sessiond/node";
import { DATABASES, HOST, call, eventually, startSessiond } from "../../test/harness.js";
import { connect, socketServer } from "./helpers.js";

const T = { timeout: 15_000 };

async function refused(url, options, message, code) {
  await assert.rejects(connect(url, options), (err) => {
    assert.equal(err.message, message);
    if (code) assert.equal(err.data?.code, code);
    return true;
  });
}

for (const db of DATABASES) {
  describe(`socketAuth on ${db}`, () => {
    let stack;
    let server;
    let jwksServer;
    let auth;
    let jwksAuth;

    before(async () => {
      stack = await startSessiond({ db });
      auth = socketAuth({ url: stack.url, serviceKey: stack.serviceKey, events: false });
      server = await socketServer(auth);
      jwksAuth = socketAuth({ url: stack.url, mode: "jwks", events: false });
      jwksServer = await socketServer(jwksAuth);
    }, { timeout: 60_000 });

    after(async () => {
      await server?.close();
      await jwksServer?.close();
      await auth?.close();
      await jwksAuth?.close();
      await stack?.stop();
    });

    async function guest() {
      return (await call(stack, "POST", "/v1/guest", { body: {} })).body;
    }
    async function ticketFor(session) {
      const { status, body } = await call(stack, "POST", "/v1/ws-tickets", { token: session.access_token });
      assert.equal(status, 201);
      return body.ticket;
    }

    test("a ticket connects once; socket.data.session is the owner", T, async () => {
      const session = await guest();
      const ticket = await ticketFor(session);
      const { socket, hello } = await connect(server.url, { auth: { ticket } });
      try {
        const { auth_time, ...identity } = hello;
        assert.deepEqual(identity, {
          sub: session.user.id, sid: session.session_id, is_guest: true, email: null, amr: ["guest"], acr: "1",
        });
        assert.equal(typeof auth_time, "number");
      } finally {
        socket.disconnect();
      }
      await refused(server.url, { auth: { ticket } }, "invalid or expired ticket", "invalid_ticket");
    });

    test("an access token connects (auth.token or an Authorization header); after logout it does not", T, async () => {
      const session = await guest();
      const a = await connect(server.url, { auth: { token: session.access_token } });
      a.socket.disconnect();
      assert.equal(a.hello.sid, session.session_id);
      const b = await connect(server.url, { extraHeaders: { authorization: `Bearer ${session.access_token}` }, transports: ["polling"] });
      b.socket.disconnect();
      assert.equal(b.hello.sub, session.user.id);
      await call(stack, "POST", "/v1/logout", { token: session.access_token, body: {} });
      await refused(server.url, { auth: { token: session.access_token } }, "invalid or expired token", "invalid_token");
    });

    test("JWKS mode verifies the token locally", T, async () => {
      const session = await guest();
      const { socket, hello } = await connect(jwksServer.url, { auth: { token: session.access_token } });
      socket.disconnect();
      assert.equal(hello.sub, session.user.id);
      await refused(jwksServer.url, { auth: { token: "x.y.z" } }, "invalid or expired token");
    });

    test("a key without the events scope: ready() rejects, handshakes are refused, the log says why", T, async () => {
      const warnings = [];
      const strict = socketAuth({ url: stack.url, serviceKey: stack.serviceKey, warn: (m) => warnings.push(m) });
      const strictServer = await socketServer(strict);
      try {
        await assert.rejects(strict.ready(), (err) => {
          assert.equal(err.status, 403);
          assert.match(err.message, /`events` scope/);
          return true;
        });
        const session = await guest();
        await refused(strictServer.url, { auth: { token: session.access_token } }, "authentication unavailable", "unavailable");
        assert.ok(warnings.some((m) => /socketAuth refuses handshakes: .*`events` scope/.test(m)), warnings.join("\n"));
      } finally {
        await strictServer.close();
        await strict.close();
      }
    });

    test("made-up tickets and empty handshakes are refused", T, async () => {
      await refused(server.url, { auth: { ticket: "A".repeat(43) } }, "invalid or expired ticket");
      await refused(server.url, { auth: {} }, "a ticket or an access token is required", "credentials_required");
    });
  });
}

test("a shared checker that follows no feed (introspection mode) is refused at setup, naming the feed", () => {
  const checker = requireSession({ url: "http://127.0.0.1:9", serviceKey: "sk_x" });
  assert.throws(() => socketAuth({ sessiond: checker.sessiond }), /does not follow the event feed.*`events`/s);
  // The explicit opt-out is still possible.
  const optOut = socketAuth({ sessiond: checker.sessiond, events: false });
  optOut.close();
  // One shared Sessiond that follows the feed is the way to share.
  const shared = new Sessiond({ url: "http://127.0.0.1:9", serviceKey: "sk_x", events: true, warn: () => {} });
  const sockets = socketAuth({ sessiond: shared });
  assert.equal(sockets.sessiond, shared);
  assert.equal(requireSession({ sessiond: shared }).sessiond, shared);
  return Promise.all([sockets.close(), shared.close()]);
});

test("sessiond unreachable: the handshake is refused with 'authentication unavailable'", T, async () => {
  const auth = socketAuth({ url: "http://127.0.0.1:9", serviceKey: "sk_x", events: false, timeoutMs: 1000 });
  const server = await socketServer(auth);
  try {
    await refused(server.url, { auth: { ticket: "t".repeat(43) } }, "authentication unavailable", "unavailable");
  } finally {
    await server.close();
    await auth.close();
  }
});

describe("disconnecting ended sessions (a scripted feed in front of the real sessiond)", () => {
  let stack;
  let proxy;
  let feedStream = null;

  before(async () => {
    stack = await startSessiond();
    // Everything goes to sessiond, except GET /v1/events, which this test writes itself.
    const http = createServer(async (req, res) => {
      if (req.url.startsWith("/v1/events")) {
        res.writeHead(200, { "content-type": "text/event-stream" }).flushHeaders();
        feedStream = res;
        return;
      }
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const headers = { ...req.headers };
      delete headers.host;
      delete headers.connection;
      const upstream = await fetch(`${stack.url}${req.url}`, {
        method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined,
      });
      res.writeHead(upstream.status, Object.fromEntries(upstream.headers));
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    http.listen(0, HOST);
    await once(http, "listening");
    proxy = { url: `http://${HOST}:${http.address().port}`, close: () => { http.closeAllConnections(); http.close(); } };
  }, { timeout: 60_000 });

  after(async () => {
    proxy?.close();
    await stack?.stop();
  });

  test("session.ended: its sockets get session_ended with the reason, then disconnect; others stay", T, async () => {
    const auth = socketAuth({ url: proxy.url, serviceKey: stack.serviceKey });
    const server = await socketServer(auth);
    try {
      await eventually(() => auth.sessiond.events.live && feedStream, { what: "feed open" });
      const ended = (await call(stack, "POST", "/v1/guest", { body: {} })).body;
      const other = (await call(stack, "POST", "/v1/guest", { body: {} })).body;
      const a = await connect(server.url, { auth: { token: ended.access_token } });
      const b = await connect(server.url, { auth: { token: ended.access_token } });
      const c = await connect(server.url, { auth: { token: other.access_token } });
      assert.equal(auth.socketsOf(ended.session_id).length, 2);
      const told = new Promise((r) => a.socket.on(SESSION_ENDED_EVENT, r));
      const gone = new Promise((r) => a.socket.on("disconnect", r));
      const start = Date.now();
      feedStream.write(`id: 5\nevent: session.ended\ndata: ${JSON.stringify({
        id: 5, type: "session.ended", at: new Date().toISOString(), user_id: ended.user.id,
        session_id: ended.session_id, reason: "logout",
      })}\n\n`);
      assert.deepEqual(await told, { reason: "logout", session_id: ended.session_id });
      assert.equal(await gone, "io server disconnect");
      assert.ok(Date.now() - start < 1000);
      await eventually(() => !b.socket.connected, { what: "b disconnected" });
      assert.equal(c.socket.connected, true);
      assert.equal(auth.socketsOf(ended.session_id).length, 0);
      // A new handshake with the ended session's token is refused by the middleware itself.
      await refused(server.url, { auth: { token: ended.access_token } }, "the session has ended");
      c.socket.disconnect();
    } finally {
      await server.close();
      await auth.close();
    }
  });
});
