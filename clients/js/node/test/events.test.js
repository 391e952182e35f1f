// The event-feed follower against a scripted SSE server (the wire format of API.md "Session
// events"): parsing, Last-Event-ID resumption, reconnection, reset, and what Sessiond derives.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { SessionEvents, Sessiond, SseParser } from "@sessiond/node";
import { HOST, eventually } from "../../test/harness.js";

const T = { timeout: 10_000 };

describe("SseParser", () => {
  function parse(chunks) {
    const out = [];
    const parser = new SseParser((m) => out.push(m));
    for (const c of chunks) parser.push(c);
    return out;
  }

  test("id, event, multi-line data, comments; LF, CRLF and CR line ends, split anywhere", () => {
    const text = ": keep-alive\n\nid: 7\nevent: session.ended\ndata: {\"a\":\ndata: 1}\n\r\nid:8\r\nevent:x\r\ndata:y\r\r";
    for (const chunks of [[text], text.split(""), [text.slice(0, 33), text.slice(33, 61), text.slice(61)]]) {
      const out = parse(chunks);
      assert.equal(out.length, 2, JSON.stringify(out));
      assert.deepEqual(out[0], { id: "7", event: "session.ended", data: "{\"a\":\n1}", retry: undefined });
      assert.deepEqual(out[1], { id: "8", event: "x", data: "y", retry: undefined });
    }
  });

  test("an unterminated block is not dispatched; retry is read; unknown fields are ignored", () => {
    const out = parse(["retry: 1500\nfoo: bar\ndata: a\n\n", "data: b\n"]);
    assert.deepEqual(out, [{ id: undefined, event: "message", data: "a", retry: 1500 }]);
  });
});

/** A scripted /v1/events server: each connection gets the next script; requests are recorded. */
async function feedServer() {
  const requests = [];
  const scripts = [];
  const open = new Set();
  const server = createServer((req, res) => {
    requests.push({ url: req.url, headers: req.headers });
    const script = scripts.shift() ?? ((r) => r.writeHead(503).end());
    open.add(res);
    res.on("close", () => open.delete(res));
    script(res, req);
  });
  server.listen(0, HOST);
  await once(server, "listening");
  return {
    url: `http://${HOST}:${server.address().port}`,
    requests,
    scripts,
    dropAll: () => { for (const r of open) r.destroy(); },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

const sse = (res) => res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" }).flushHeaders();
const event = (id, type, data) =>
  `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify({ id, type, at: new Date().toISOString(), ...data })}\n\n`;

describe("SessionEvents", () => {
  let feed;
  before(async () => { feed = await feedServer(); });
  after(async () => feed.close());

  test("sends the service key, resumes with Last-Event-ID after a drop, reconnects with backoff", T, async () => {
    feed.requests.length = 0;
    feed.scripts.push(
      (res) => { sse(res); res.write(": hi\n\n"); res.write(event("41", "session.created", { session_id: "s1", user_id: "u1", reason: null })); res.write(event("42", "session.ended", { session_id: "s1", user_id: "u1", reason: "logout" })); setTimeout(() => res.destroy(), 100); },
      (res) => res.writeHead(500).end("boom"),
      (res) => { sse(res); res.write(event("43", "user.deleted", { session_id: null, user_id: "u2", reason: null })); },
    );
    const events = new SessionEvents({ url: feed.url, serviceKey: "sk_feed", retryMs: 50 });
    const seen = [];
    const errors = [];
    events.on("event", (e) => seen.push(`${e.id}:${e.type}`));
    events.on("error", (e) => errors.push(e.message));
    events.start();
    try {
      await eventually(() => seen.length === 3, { what: "three events" });
      assert.deepEqual(seen, ["41:session.created", "42:session.ended", "43:user.deleted"]);
      assert.equal(feed.requests.length, 3);
      assert.equal(feed.requests[0].headers.authorization, "Bearer sk_feed");
      assert.equal(feed.requests[0].headers.accept, "text/event-stream");
      assert.equal(feed.requests[0].headers["last-event-id"], undefined);
      assert.equal(feed.requests[1].headers["last-event-id"], "42");
      assert.equal(feed.requests[2].headers["last-event-id"], "42");
      assert.ok(errors.some((m) => /500/.test(m)), errors.join("; "));
      assert.equal(events.live, true);
      assert.equal(events.lastEventId, "43");
    } finally {
      await events.close();
    }
    assert.equal(events.live, false);
  });

  test("Sessiond remembers ended sessions and deleted users, and forgets them on reset", T, async () => {
    feed.requests.length = 0;
    let stream;
    feed.scripts.push((res) => { sse(res); stream = res; });
    const sessiond = new Sessiond({ url: feed.url, mode: "jwks", serviceKey: "sk_feed", warn: () => {} });
    const ended = [];
    let resets = 0;
    sessiond.on("session.ended", (e) => ended.push(e.reason));
    sessiond.on("reset", () => resets++);
    try {
      await eventually(() => sessiond.events.live, { what: "live" });
      const since = sessiond.events.liveSince;
      stream.write(event("1", "session.ended", { session_id: "s1", user_id: "u1", reason: "password_changed" }));
      stream.write(event("2", "user.deleted", { session_id: null, user_id: "u9", reason: null }));
      await eventually(() => sessiond.isEnded({ sid: "x", sub: "u9" }), { what: "user deleted" });
      assert.equal(sessiond.isEnded({ sid: "s1", sub: "u1" }), true);
      assert.equal(sessiond.isEnded({ sid: "s2", sub: "u1" }), false);
      assert.deepEqual(ended, ["password_changed"]);
      await new Promise((r) => setTimeout(r, 20));
      stream.write("event: reset\ndata: {}\n\n");
      await eventually(() => resets === 1, { what: "reset" });
      assert.equal(sessiond.isEnded({ sid: "s1", sub: "u1" }), false);
      assert.ok(sessiond.events.liveSince > since, "a reset restarts the complete-since time");
    } finally {
      await sessiond.close();
    }
  });

  test("a non-SSE answer (e.g. a sessiond without the feed) is an error, retried", T, async () => {
    feed.requests.length = 0;
    feed.scripts.push((res) => res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not_found"}'));
    feed.scripts.push((res) => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
    const events = new SessionEvents({ url: feed.url, serviceKey: "k", retryMs: 20 });
    const errors = [];
    events.on("error", (e) => errors.push(e.message));
    events.start();
    try {
      await eventually(() => errors.length >= 3, { what: "three errors" });
      assert.match(errors[0], /404/);
      assert.match(errors[1], /not text\/event-stream/);
      assert.equal(events.live, false);
      assert.equal(events.liveSince, null);
    } finally {
      await events.close();
    }
  });
});
