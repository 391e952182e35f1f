// The event-feed follower against a scripted SSE server (the wire format of API.md "Session
// events"): parsing, Last-Event-ID resumption (the backlog replayed before the follower counts
// itself live), reconnection, reset, unknown event types, a refused service key, and what
// Sessiond derives.
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

/**
 * A scripted /v1/events server: each stream connection gets the next script; the poll form
 * (`?after=`) is answered by `poll(after)` (default: nothing after it); requests are recorded.
 */
async function feedServer() {
  const requests = [];
  const polls = [];
  const scripts = [];
  const open = new Set();
  const state = { poll: (after) => ({ events: [], next: Number(after) }) };
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.searchParams.has("after")) {
      polls.push({ url: req.url, headers: req.headers });
      const answer = state.poll(url.searchParams.get("after"), res);
      if (answer) res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
      return;
    }
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
    polls,
    scripts,
    set poll(fn) { state.poll = fn; },
    dropAll: () => { for (const r of open) r.destroy(); },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

const sse = (res) => res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" }).flushHeaders();
const eventData = (id, type, data) => ({ id: Number(id), type, at: new Date().toISOString(), ...data });
const event = (id, type, data) => `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(eventData(id, type, data))}\n\n`;

describe("SessionEvents", () => {
  let feed;
  before(async () => { feed = await feedServer(); });
  after(async () => feed.close());

  test("sends the service key, resumes with Last-Event-ID after a drop, reconnects with backoff", T, async () => {
    feed.requests.length = 0;
    feed.polls.length = 0;
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
      // Each reconnection first asked for what it missed (the poll form), with the key.
      assert.ok(feed.polls.length >= 2);
      assert.ok(feed.polls.every((p) => /^\/v1\/events\?after=42&limit=\d+$/.test(p.url)), JSON.stringify(feed.polls));
      assert.equal(feed.polls[0].headers.authorization, "Bearer sk_feed");
    } finally {
      await events.close();
    }
    assert.equal(events.live, false);
  });

  test("after a reconnection it is live only once the events it missed are replayed", T, async () => {
    feed.requests.length = 0;
    // Session s1 ended (event 2) while the follower was away. The stream would replay that
    // backlog only after a while (as a slow database page would); the poll form has it at once.
    feed.poll = (after) => (after === "1"
      ? { events: [eventData(2, "session.ended", { session_id: "s1", user_id: "u1", reason: "logout" })], next: 2 }
      : { events: [], next: Number(after) });
    feed.scripts.push(
      (res) => { sse(res); res.write(event("1", "session.created", { session_id: "s1", user_id: "u1", reason: null })); setTimeout(() => res.destroy(), 100); },
      (res, req) => {
        sse(res);
        if (req.headers["last-event-id"] === "1") {
          setTimeout(() => res.write(event("2", "session.ended", { session_id: "s1", user_id: "u1", reason: "logout" })), 500);
        }
      },
    );
    const sessiond = new Sessiond({ url: feed.url, mode: "jwks", serviceKey: "sk_feed", warn: () => {} });
    const events = sessiond.events;
    const atOpen = [];
    let liveWhenEnded = null;
    events.on("open", () => atOpen.push({ live: events.live, ended: sessiond.isEnded({ sid: "s1", sub: "u1" }) }));
    events.on("session.ended", () => { liveWhenEnded ??= events.live; });
    try {
      await eventually(() => atOpen.length === 2, { what: "two opens" });
      assert.deepEqual(atOpen[1], { live: true, ended: true },
        "the follower said it was live before replaying the session.ended it had missed");
      assert.equal(liveWhenEnded, false, "the missed event was delivered while the follower claimed to be live");
      await events.ready();
    } finally {
      feed.poll = (after) => ({ events: [], next: Number(after) });
      await sessiond.close();
    }
  });

  test("unknown event types are skipped quietly; key.retired is emitted with its kid", T, async () => {
    feed.requests.length = 0;
    let stream;
    feed.scripts.push((res) => { sse(res); stream = res; });
    const events = new SessionEvents({ url: feed.url, serviceKey: "k" }).start();
    const seen = [];
    const retired = [];
    const errors = [];
    events.on("event", (e) => seen.push(`${e.id}:${e.type}`));
    events.on("key.retired", (e) => retired.push(e));
    events.on("error", (e) => errors.push(e.message));
    try {
      await eventually(() => events.live && stream, { what: "live" });
      stream.write('id: 7\nevent: policy.changed\ndata: {"id":7,"type":"policy.changed","rules":[1]}\n\n');
      stream.write("id: 8\nevent: something.new\ndata: not json at all\n\n");
      stream.write('id: 9\nevent: key.retired\ndata: {"id":9,"type":"key.retired","at":"2026-01-01T00:00:00Z","kid":"k1"}\n\n');
      stream.write(event("10", "session.ended", { session_id: "s", user_id: "u", reason: "evicted" }));
      await eventually(() => events.lastEventId === "10", { what: "event 10" });
      assert.deepEqual(seen, ["7:policy.changed", "9:key.retired", "10:session.ended"]);
      assert.deepEqual(errors, []);
      assert.equal(events.live, true);
      assert.equal(retired.length, 1);
      assert.equal(retired[0].kid, "k1");
      assert.equal(retired[0].user_id, null);
    } finally {
      await events.close();
    }
  });

  test("a refused service key (403: no events scope) rejects ready() with a message naming the scope", T, async () => {
    feed.requests.length = 0;
    const forbidden = (res) => res.writeHead(403, { "content-type": "application/json" })
      .end('{"error":"forbidden","error_description":"this key lacks the scope events"}');
    feed.scripts.push(forbidden, forbidden);
    const events = new SessionEvents({ url: feed.url, serviceKey: "k", retryMs: 20, maxRetryMs: 100 });
    events.on("error", () => {});
    events.start();
    try {
      await assert.rejects(events.ready(), (err) => {
        assert.equal(err.code, "feed_refused");
        assert.equal(err.status, 403);
        assert.match(err.message, /`events` scope/);
        return true;
      });
      assert.equal(events.refused?.status, 403);
      // Still refused on a later call: not something to wait out.
      await assert.rejects(events.ready(), /`events` scope/);
    } finally {
      await events.close();
      feed.scripts.length = 0;
    }
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
