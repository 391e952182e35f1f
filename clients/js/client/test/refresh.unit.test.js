// Unit tests (no sessiond binary): refresh timing (src/refresh.ts) and the client's refreshes
// on a fake sessiond, with node:test's mock timers for setTimeout and Date (no real waiting).
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import { createClient, memoryStorage } from "@sessiond/client";
import { refreshDelay, sendWithRetries, sessionState } from "../dist/esm/refresh.js";
import { FakeChannel, fakeSessiond, json, recordEvents, settle } from "./fakes.js";

const NOW = 1_700_000_000_000;
let restoreChannel;

beforeEach(() => {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: NOW });
  restoreChannel = FakeChannel.install();
});
afterEach(() => {
  mock.timers.reset();
  restoreChannel();
});

/** A bearer-mode client on `server`, on a channel of its own so that FakeChannel.posted shows what it says. */
function bearerClient(server, extra = {}) {
  const storage = memoryStorage();
  const client = createClient({
    url: "http://sessiond", mode: "bearer", storage, fetch: server.fetchFor(), channel: "unit", restore: false, ...extra,
  });
  return { client, storage, events: recordEvents(client) };
}

test("sessionState: the access token is dropped a second early (a fifth of the lifetime for short ones)", () => {
  const body = { access_token: "a", session_id: "s", user: { id: "u" }, expires_in: 120 };
  assert.equal(sessionState(body, 0).expiresAt, 119_000);
  assert.equal(sessionState({ ...body, expires_in: 2 }, 0).expiresAt, 1_600);
});

test("refreshDelay: before expiry by the lead (at most a quarter of the lifetime), less up to 10 s of jitter", () => {
  const state = (ms) => ({ expiresAt: ms });
  // 120 s left, 60 s lead: 30 s (a quarter) before expiry, then up to 10 s earlier.
  assert.equal(refreshDelay(state(120_000), 60, 0, 0), 90_000);
  assert.equal(refreshDelay(state(120_000), 60, 0, 0.5), 85_000);
  // A 10 s lead wins over the quarter.
  assert.equal(refreshDelay(state(120_000), 10, 0, 0), 110_000);
  // 8 s left: 2 s lead, jitter at most a tenth (0.8 s).
  assert.equal(refreshDelay(state(8_000), 60, 0, 0.5), 5_600);
  // Already expired: now.
  assert.equal(refreshDelay(state(0), 60, 1_000, 0.3), 0);
});

test("the refresh is scheduled before expiry and rotates the refresh token", async () => {
  const server = fakeSessiond({ expiresIn: 120 });
  const { client, storage, events } = bearerClient(server, { refreshLeadSecs: 10 });
  try {
    await client.guest();
    const first = client.getSession();
    const firstRefresh = await storage.get();
    assert.equal(first.expiresAt, NOW + 119_000);
    // Due between 109 s (10 s lead) and 99 s (10 s jitter) after the sign-in: not before.
    mock.timers.tick(99_000);
    await settle();
    assert.equal(server.count("/v1/token/refresh"), 0);
    mock.timers.tick(10_000);
    await settle();
    assert.equal(server.count("/v1/token/refresh"), 1);
    const call = server.calls.find((c) => c.path === "/v1/token/refresh");
    assert.deepEqual(call.body, { refresh_token: firstRefresh });
    assert.equal(call.credentials, "omit");
    // Rotated: a new access token and a new refresh token, before the old access token expired.
    const second = client.getSession();
    assert.ok(Date.now() < first.expiresAt);
    assert.notEqual(second.accessToken, first.accessToken);
    assert.equal(second.sessionId, first.sessionId);
    assert.ok(second.expiresAt > first.expiresAt);
    assert.notEqual(await storage.get(), firstRefresh);
    assert.equal(await storage.get(), server.sessions.get(first.sessionId).refresh);
    assert.deepEqual(events.map((e) => [e.type, e.remote]), [["signed_in", false], ["refreshed", false]]);
    // And the next one is scheduled from the new token.
    mock.timers.tick(109_000);
    await settle();
    assert.equal(server.count("/v1/token/refresh"), 2);
    // getAccessToken() with a fresh token sends nothing.
    assert.equal(await client.getAccessToken(), client.getSession().accessToken);
    assert.equal(server.count("/v1/token/refresh"), 2);
  } finally {
    client.dispose();
  }
});

test("a 401 on the scheduled refresh signs out: state, storage, event, and the other tabs are told", async () => {
  const server = fakeSessiond({ expiresIn: 60 });
  const { client, storage, events } = bearerClient(server);
  try {
    await client.guest();
    const { sessionId } = client.getSession();
    server.answer("/v1/token/refresh", () => json(401, { error: "session_revoked", error_description: "revoked" }));
    mock.timers.tick(60_000);
    await settle();
    assert.equal(server.count("/v1/token/refresh"), 1);
    assert.equal(client.signedIn, false);
    assert.equal(client.getSession(), null);
    assert.equal(await storage.get(), null);
    assert.deepEqual(events.at(-1), { type: "signed_out", user: null, sessionId, remote: false, reason: "session_revoked" });
    assert.deepEqual(FakeChannel.posted.at(-1).data, { type: "signed_out", sessionId, reason: "session_revoked" });
    // Signed out for good: no token, no further request, no timer left.
    assert.equal(await client.getAccessToken(), null);
    mock.timers.tick(600_000);
    await settle();
    assert.equal(server.count("/v1/token/refresh"), 1);
  } finally {
    client.dispose();
  }
});

test("refresh() after the session was revoked resolves null and signs out (invalid_refresh_token)", async () => {
  const server = fakeSessiond();
  const { client, events } = bearerClient(server);
  try {
    await client.guest();
    server.revoke(client.sessionId);
    assert.equal(await client.refresh(), null);
    assert.equal(client.signedIn, false);
    assert.equal(events.at(-1).reason, "invalid_refresh_token");
  } finally {
    client.dispose();
  }
});

test("5xx answers are retried after 400 ms and 1.6 s with the same token; the state is kept meanwhile", async () => {
  const server = fakeSessiond();
  const { client, storage } = bearerClient(server);
  try {
    await client.guest();
    const token = await storage.get();
    const before = client.getSession().accessToken;
    server.answer("/v1/token/refresh", () => json(503, { error: "unavailable" }));
    server.answer("/v1/token/refresh", () => json(502, {}));
    const refreshed = client.refresh();
    await settle();
    assert.equal(server.count("/v1/token/refresh"), 1);
    mock.timers.tick(399);
    await settle();
    assert.equal(server.count("/v1/token/refresh"), 1);
    mock.timers.tick(1);
    await settle();
    assert.equal(server.count("/v1/token/refresh"), 2);
    assert.equal(client.getSession().accessToken, before);
    mock.timers.tick(1600);
    const state = await refreshed;
    assert.equal(server.count("/v1/token/refresh"), 3);
    const presented = server.calls.filter((c) => c.path === "/v1/token/refresh").map((c) => c.body.refresh_token);
    assert.deepEqual(presented, [token, token, token]);
    assert.notEqual(state.accessToken, before);
  } finally {
    client.dispose();
  }
});

test("sendWithRetries: rejects with the last failure after three attempts; null once the client is gone", async () => {
  let attempts = 0;
  const failing = sendWithRetries(async () => {
    attempts++;
    throw new TypeError(`network ${attempts}`);
  }, () => true);
  await settle();
  mock.timers.tick(400);
  await settle();
  mock.timers.tick(1600);
  await assert.rejects(failing, { name: "TypeError", message: "network 3" });
  assert.equal(attempts, 3);

  let alive = true;
  const gone = sendWithRetries(async () => {
    alive = false;
    return json(503, {});
  }, () => alive);
  await settle();
  mock.timers.tick(400);
  assert.equal(await gone, null);
});

test("concurrent refresh() calls in one tab share one request", async () => {
  const server = fakeSessiond();
  const { client } = bearerClient(server);
  try {
    await client.guest();
    const [a, b, c] = await Promise.all([client.refresh(), client.refresh(), client.refresh()]);
    assert.equal(server.count("/v1/token/refresh"), 1);
    assert.equal(a, b);
    assert.equal(b, c);
  } finally {
    client.dispose();
  }
});
