// @sessiond/client on Node's fetch against the real sessiond: bearer mode, and cookie mode with a
// fetch that adds what a browser would (an Origin, a cookie jar); test/browser.test.js covers
// cookie mode in Chromium.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SessiondClient, SessiondError, createClient, localStorageAdapter, memoryStorage } from "@sessiond/client";
import {
  COOKIE_NAME, auditEvents, bridgeProvider, call, eventually, sleep, startSessiond,
} from "../../test/harness.js";

const T = { timeout: 20_000 };
const INITIAL = ["initial_session", "restore_failed"];
const PASSWORD = "correct horse battery staple";
const { provider, mint } = bridgeProvider();
let stack;

before(async () => {
  stack = await startSessiond({ accessTtlSecs: 4, bridge: provider });
}, { timeout: 60_000 });
after(async () => stack?.stop());

/** A fetch that records every request path (and can be told to answer one request itself). */
function recordingFetch() {
  const calls = [];
  const f = async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input.url);
    calls.push({ method: init.method ?? "GET", path: url.pathname });
    if (f.intercept) {
      const answer = f.intercept(url, init);
      if (answer) return answer;
    }
    return fetch(input, init);
  };
  f.calls = calls;
  f.count = (path) => calls.filter((c) => c.path === path).length;
  return f;
}

function newClient(extra = {}) {
  const fetch = extra.fetch ?? recordingFetch();
  const storage = extra.storage ?? memoryStorage();
  const client = createClient({ url: stack.url, mode: "bearer", storage, fetch, ...extra });
  // `events`: the changes after start-up; `all`: also the initial event each listener gets.
  const events = [];
  const all = [];
  client.onChange((e) => {
    all.push(e);
    if (!INITIAL.includes(e.type)) events.push(e);
  });
  return { client, storage, fetch, events, all };
}

async function me(token) {
  return call(stack, "GET", "/v1/me", { token });
}

describe("signing in and out", () => {
  test("guest: signed in, the access token works, the refresh token is in storage only", T, async () => {
    const { client, storage, events } = newClient();
    try {
      await client.ready;
      assert.equal(client.signedIn, false);
      const user = await client.guest();
      assert.equal(user.is_guest, true);
      assert.equal(client.user.id, user.id);
      assert.deepEqual(events.map((e) => [e.type, e.remote]), [["signed_in", false]]);
      const token = await client.getAccessToken();
      const res = await me(token);
      assert.equal(res.status, 200);
      assert.equal(res.body.user.id, user.id);
      const stored = await storage.get();
      assert.equal(typeof stored, "string");
      assert.ok(stored.length >= 40);
      assert.ok(!JSON.stringify(client).includes(stored), "the client exposes the refresh token");
    } finally {
      client.dispose();
    }
  });

  test("signUp, logIn, logOut: the session ends and storage is emptied", T, async () => {
    const email = `ann-${Date.now()}@example.com`;
    const a = newClient();
    const b = newClient();
    try {
      const signed = await a.client.signUp(email, PASSWORD);
      assert.equal(signed.email, email);
      await assert.rejects(b.client.logIn(email, "wrong password!!"), (err) => {
        assert.ok(err instanceof SessiondError);
        assert.equal(err.status, 401);
        assert.equal(err.code, "invalid_credentials");
        return true;
      });
      const user = await b.client.logIn(email, PASSWORD);
      assert.equal(user.id, signed.id);
      const stored = await b.storage.get();
      const token = await b.client.getAccessToken();

      await b.client.logOut();
      assert.equal(b.client.signedIn, false);
      assert.equal(await b.client.getAccessToken(), null);
      assert.equal(await b.storage.get(), null);
      assert.deepEqual(b.events.map((e) => e.type), ["signed_in", "signed_out"]);
      assert.equal(b.events[1].reason, "logout");
      assert.equal((await me(token)).status, 401);
      const refresh = await call(stack, "POST", "/v1/token/refresh", { body: { refresh_token: stored } });
      assert.equal(refresh.status, 401);
      // The other session of the same user is untouched.
      assert.equal((await me(await a.client.getAccessToken())).status, 200);
    } finally {
      a.client.dispose();
      b.client.dispose();
    }
  });

  test("logOut('others') keeps this session and ends the others", T, async () => {
    const email = `bo-${Date.now()}@example.com`;
    const a = newClient();
    const b = newClient();
    try {
      await a.client.signUp(email, PASSWORD);
      await b.client.logIn(email, PASSWORD);
      const bToken = await b.client.getAccessToken();
      await a.client.logOut("others");
      assert.equal(a.client.signedIn, true);
      assert.equal((await me(await a.client.getAccessToken())).status, 200);
      assert.equal((await me(bToken)).status, 401);
    } finally {
      a.client.dispose();
      b.client.dispose();
    }
  });

  test("bridge(provider, token) signs in with a third-party JWT", T, async () => {
    const { client } = newClient();
    try {
      const sub = `ext-${Date.now()}`;
      const user = await client.bridge(provider.name, mint(sub, { email: `${sub}@example.com`, email_verified: true }));
      assert.equal(user.is_guest, false);
      assert.equal(user.email, `${sub}@example.com`);
      const { body } = await me(await client.getAccessToken());
      assert.equal(body.session.kind, "bridge");
      await assert.rejects(client.bridge(provider.name, mint(sub, { aud: "other" })), /invalid_bridge_token/);
      await assert.rejects(client.bridge("nope", mint(sub)), /unknown_provider/);
    } finally {
      client.dispose();
    }
  });

  test("upgrade makes the guest permanent with the same user id", T, async () => {
    const { client, events } = newClient();
    try {
      const guest = await client.guest();
      const user = await client.upgrade(`up-${Date.now()}@example.com`, PASSWORD);
      assert.equal(user.id, guest.id);
      assert.equal(user.is_guest, false);
      assert.equal(client.user.is_guest, false);
      assert.equal(events.length, 2);
      const { body } = await me(await client.getAccessToken());
      assert.equal(body.user.is_guest, false);
    } finally {
      client.dispose();
    }
  });

  test("whenSignedIn() waits for the sign-in, and resolves at once after it", T, async () => {
    const { client } = newClient();
    try {
      let resolved = null;
      const waiting = client.whenSignedIn().then((s) => { resolved = s; });
      await sleep(50);
      assert.equal(resolved, null);
      const user = await client.guest();
      await waiting;
      assert.equal(resolved.user.id, user.id);
      assert.equal(typeof resolved.accessToken, "string");
      assert.equal((await client.whenSignedIn()).sessionId, client.sessionId);
    } finally {
      client.dispose();
    }
  });

  test("a stored refresh token restores the session at start", T, async () => {
    const first = newClient();
    const user = await first.client.guest();
    first.client.dispose();
    const second = newClient({ storage: first.storage });
    try {
      await second.client.ready;
      assert.equal(second.client.user?.id, user.id);
      assert.deepEqual(second.all.map((e) => [e.type, e.user?.id]), [["initial_session", user.id]]);
      assert.equal((await me(await second.client.getAccessToken())).status, 200);
    } finally {
      second.client.dispose();
    }
  });
});

describe("refresh", () => {
  test("the access token is refreshed before it expires (4 s lifetime, 9 s of use)", T, async () => {
    const { client, fetch, events } = newClient();
    try {
      await client.guest();
      const first = await client.getAccessToken();
      const statuses = [];
      const deadline = Date.now() + 9000;
      while (Date.now() < deadline) {
        // Each check uses the token the client holds right now, without asking for a new one.
        statuses.push((await me(await client.getAccessToken())).status);
        await sleep(300);
      }
      assert.ok(statuses.every((s) => s === 200), `statuses: ${statuses}`);
      assert.notEqual(await client.getAccessToken(), first);
      const refreshes = fetch.count("/v1/token/refresh");
      assert.ok(refreshes >= 2 && refreshes <= 5, `${refreshes} refreshes in 9 s`);
      assert.ok(events.filter((e) => e.type === "refreshed").length >= 2);
    } finally {
      client.dispose();
    }
  });

  test("one refresh in flight: ten concurrent calls make one request", T, async () => {
    const { client, fetch } = newClient();
    try {
      await client.guest();
      const results = await Promise.all(Array.from({ length: 10 }, () => client.refresh()));
      assert.equal(fetch.count("/v1/token/refresh"), 1);
      assert.ok(results.every((r) => r.accessToken === results[0].accessToken));
    } finally {
      client.dispose();
    }
  });

  test("a 401 triggers one refresh and one retry; the app sees the 200", T, async () => {
    const { client, fetch } = newClient();
    try {
      await client.guest();
      let refused = 0;
      fetch.intercept = (url) => {
        if (url.pathname === "/v1/me" && refused === 0) {
          refused++;
          return new Response(JSON.stringify({ error: "invalid_token", error_description: "test" }), {
            status: 401, headers: { "content-type": "application/json" },
          });
        }
        return null;
      };
      const res = await client.fetch(`${stack.url}/v1/me`);
      assert.equal(res.status, 200);
      assert.equal(refused, 1);
      assert.equal(fetch.count("/v1/token/refresh"), 1);
      assert.equal(fetch.count("/v1/me"), 2);
    } finally {
      client.dispose();
    }
  });

  test("after a 401 for an ended session the refresh fails: the app gets the 401, the client signs out", T, async () => {
    const { client, fetch, events } = newClient();
    try {
      const user = await client.guest();
      const revoke = await call(stack, "POST", `/v1/admin/users/${user.id}/revoke-sessions`, { token: stack.adminKey });
      assert.equal(revoke.status, 204);
      const res = await client.fetch(`${stack.url}/v1/me`);
      assert.equal(res.status, 401);
      assert.equal(fetch.count("/v1/token/refresh"), 1);
      assert.equal(client.signedIn, false);
      assert.deepEqual(events.map((e) => e.type), ["signed_in", "signed_out"]);
      assert.equal(events[1].reason, "session_revoked");
    } finally {
      client.dispose();
    }
  });

  test("network failures never sign out; the same refresh token is retried", T, async () => {
    const { client, fetch, storage } = newClient();
    try {
      await client.guest();
      const before = await storage.get();
      let failures = 0;
      fetch.intercept = (url) => {
        if (url.pathname === "/v1/token/refresh" && failures < 2) {
          failures++;
          return Promise.reject(new TypeError("fetch failed"));
        }
        return null;
      };
      const state = await client.refresh();
      assert.equal(failures, 2);
      assert.equal(fetch.count("/v1/token/refresh"), 3);
      assert.ok(state && client.signedIn);
      assert.notEqual(await storage.get(), before);
    } finally {
      client.dispose();
    }
  });
});

describe("two tabs (two clients sharing storage and a BroadcastChannel)", () => {
  function sharedStorage() {
    const s = memoryStorage();
    return { ...s, shared: true };
  }

  test("refreshing at the same moment 25 times: both stay signed in, no refresh_token_reused", T, async () => {
    const storage = sharedStorage();
    const channel = `test-${Math.random()}`;
    const a = newClient({ storage, channel });
    const user = await a.client.guest();
    const b = newClient({ storage, channel });
    try {
      await b.client.ready;
      for (let i = 0; i < 25; i++) {
        const [ra, rb] = await Promise.all([a.client.refresh(), b.client.refresh()]);
        assert.ok(ra && rb, `round ${i}: a=${!!ra} b=${!!rb}`);
      }
      assert.equal(a.client.signedIn && b.client.signedIn, true);
      assert.equal((await me(await a.client.getAccessToken())).status, 200);
      assert.equal((await me(await b.client.getAccessToken())).status, 200);
      const refresh = await call(stack, "POST", "/v1/token/refresh", { body: { refresh_token: await storage.get() } });
      assert.equal(refresh.status, 200, JSON.stringify(refresh.body));
      const types = (await auditEvents(stack, user.id)).map((e) => e.type);
      assert.ok(!types.some((t) => /reuse/.test(t)), `audit: ${types}`);
      assert.ok(![...a.events, ...b.events].some((e) => e.type === "signed_out"));
    } finally {
      a.client.dispose();
      b.client.dispose();
    }
  });

  test("a sign-in in one tab reaches the other, which gets its own token; logging out in one signs out the other", T, async () => {
    const storage = sharedStorage();
    const channel = `test-${Math.random()}`;
    const a = newClient({ storage, channel });
    const b = newClient({ storage, channel });
    try {
      await Promise.all([a.client.ready, b.client.ready]);
      const user = await a.client.guest();
      const signedInB = await eventually(() => b.events.find((e) => e.type === "signed_in"), { what: "b signed in" });
      assert.equal(signedInB.remote, true);
      assert.equal(b.client.user.id, user.id);
      assert.equal(b.client.sessionId, a.client.sessionId);
      // B refreshed with the shared refresh token: its access token is its own.
      assert.equal(b.fetch.count("/v1/token/refresh"), 1);
      const tokenB = await b.client.getAccessToken();
      assert.notEqual(tokenB, await a.client.getAccessToken());
      assert.equal((await me(tokenB)).status, 200);

      // A's refresh is A's business: B keeps its token and does not refresh.
      await a.client.refresh();
      await sleep(100);
      assert.equal(b.fetch.count("/v1/token/refresh"), 1);
      assert.equal(await b.client.getAccessToken(), tokenB);
      assert.ok(await b.client.refresh(), "b refreshes with the token a rotated into the storage");

      await a.client.logOut();
      const out = await eventually(() => b.events.find((e) => e.type === "signed_out"), { what: "b signed out" });
      assert.equal(out.remote, true);
      assert.equal(out.reason, "logout");
      assert.equal(b.client.signedIn, false);
      assert.equal(await b.client.getAccessToken(), null);
    } finally {
      a.client.dispose();
      b.client.dispose();
    }
  });

  test("no message carries a token, and a forged or malformed message changes nothing", T, async () => {
    const storage = sharedStorage();
    const channel = `test-${Math.random()}`;
    const spy = new BroadcastChannel(channel);
    const seen = [];
    spy.onmessage = (e) => seen.push(e.data);
    const a = newClient({ storage, channel });
    const b = newClient({ storage, channel });
    const c = newClient({ channel, restore: false }); // signed out, its own (empty) storage
    const secrets = [];
    const keep = async (x) => secrets.push(await x.client.getAccessToken(), await x.storage.get());
    try {
      await Promise.all([a.client.ready, b.client.ready]);
      await a.client.guest();
      await eventually(() => b.client.signedIn, { what: "b signed in" });
      await keep(a);
      await keep(b);
      await a.client.refresh();
      await keep(a);
      await a.client.upgrade(`chan-${Date.now()}@example.com`, PASSWORD);
      await eventually(() => b.client.user?.is_guest === false, { what: "b sees the upgrade" });
      await keep(a);
      await keep(b);
      await sleep(100);
      assert.ok(seen.length >= 2, JSON.stringify(seen));
      const wire = JSON.stringify(seen);
      for (const secret of secrets.filter(Boolean)) assert.ok(!wire.includes(secret), "a token went over the channel");
      assert.ok(!/token/i.test(wire), wire);

      // A forged sign-in with a token of its choosing, and malformed sign-outs.
      const sessionId = a.client.sessionId;
      spy.postMessage({
        type: "signed_in",
        state: { user: { id: "u", email: null, is_guest: true, created_at: "" }, sessionId: "forged", accessToken: "forged-token", expiresAt: Date.now() + 60_000 },
      });
      for (const junk of [null, "signed_out", 42, [], { type: "signed_out" }, { type: "signed_out", sessionId, reason: 7 },
        { type: "signed_out", sessionId: 5, reason: "x" }, { type: "signed_in", sessionId }, { type: "refreshed", state: null }]) {
        spy.postMessage(junk);
      }
      await sleep(300);
      assert.equal(c.client.signedIn, false);
      assert.equal(await c.client.getAccessToken(), null);
      for (const x of [a, b]) {
        assert.equal(x.client.sessionId, sessionId);
        assert.ok(!x.events.some((e) => e.type === "signed_out"), JSON.stringify(x.events));
        assert.notEqual(await x.client.getAccessToken(), "forged-token");
        assert.equal((await me(await x.client.getAccessToken())).status, 200);
      }
      assert.equal(c.fetch.calls.length, 0, "the forged message made c call sessiond");
    } finally {
      spy.close();
      for (const x of [a, b, c]) x.client.dispose();
    }
  });
});

describe("logging out in bearer mode when the access token is unusable", () => {
  const refusal = () => new Response(JSON.stringify({ error: "invalid_token", error_description: "test" }), {
    status: 401, headers: { "content-type": "application/json" },
  });

  test("a logout refused for the access token revokes the session with the refresh token (RFC 7009)", T, async () => {
    const { client, fetch, storage, events } = newClient();
    try {
      await client.guest();
      const stored = await storage.get();
      fetch.intercept = (url) => (url.pathname === "/v1/logout" ? refusal() : null);
      await client.logOut();
      assert.equal(fetch.count("/v1/revoke"), 1);
      assert.equal(client.signedIn, false);
      assert.equal(await storage.get(), null);
      assert.deepEqual(events.map((e) => [e.type, e.reason]), [["signed_in", undefined], ["signed_out", "logout"]]);
      const refresh = await call(stack, "POST", "/v1/token/refresh", { body: { refresh_token: stored } });
      assert.equal(refresh.status, 401);
      assert.equal(refresh.body.error, "session_revoked");
    } finally {
      client.dispose();
    }
  });

  test("a logout after a failed refresh revokes the session, retrying until sessiond answers", T, async () => {
    const first = newClient();
    const user = await first.client.guest();
    const stored = await first.storage.get();
    first.client.dispose();
    const f = recordingFetch();
    let down = true;
    f.intercept = (url) => (down && ["/v1/token/refresh", "/v1/revoke", "/v1/logout"].includes(url.pathname)
      ? Promise.reject(new TypeError("fetch failed")) : null);
    const second = newClient({ storage: first.storage, fetch: f });
    try {
      await second.client.ready; // the restore could not reach sessiond
      assert.equal(second.client.signedIn, false);
      await second.client.logOut();
      assert.equal(await second.storage.get(), null, "signed out locally at once");
      assert.equal(f.count("/v1/revoke"), 1);
      down = false;
      await eventually(() => f.count("/v1/revoke") === 2, { timeoutMs: 5000, what: "a second revocation" });
      await eventually(async () => (await auditEvents(stack, user.id)).some((e) => /revok/.test(e.type)), {
        what: "the session revoked",
      });
      const refresh = await call(stack, "POST", "/v1/token/refresh", { body: { refresh_token: stored } });
      assert.equal(refresh.status, 401);
      await sleep(1500);
      assert.equal(f.count("/v1/revoke"), 2, "no retry after sessiond answered");
    } finally {
      second.client.dispose();
    }
  });

  test("a revocation sessiond never answered is kept in pendingRevocation and sent at the next start", T, async () => {
    const storage = { ...memoryStorage(), pendingRevocation: memoryStorage() };
    const down = recordingFetch();
    down.intercept = (url) => (url.pathname === "/v1/logout" || url.pathname === "/v1/revoke"
      ? Promise.reject(new TypeError("fetch failed")) : null);
    const first = newClient({ storage, fetch: down });
    await first.client.guest();
    const stored = await storage.get();
    await first.client.logOut();
    first.client.dispose();
    assert.equal(await storage.get(), null);
    assert.equal(await storage.pendingRevocation.get(), stored);

    const second = newClient({ storage });
    try {
      await eventually(() => second.fetch.count("/v1/revoke") === 1, { what: "the revocation sent at start" });
      await eventually(async () => (await storage.pendingRevocation.get()) === null, { what: "the pending revocation cleared" });
      const refresh = await call(stack, "POST", "/v1/token/refresh", { body: { refresh_token: stored } });
      assert.equal(refresh.status, 401);
    } finally {
      second.client.dispose();
    }
  });

  test("localStorageAdapter keeps a pending revocation next to the refresh token", () => {
    const items = new Map();
    globalThis.localStorage = {
      getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, String(v)), removeItem: (k) => items.delete(k),
    };
    try {
      const adapter = localStorageAdapter("app.rt");
      adapter.set("a");
      adapter.pendingRevocation.set("b");
      assert.deepEqual([...items], [["app.rt", "a"], ["app.rt.revoke", "b"]]);
      assert.equal(adapter.shared, true);
      adapter.pendingRevocation.remove();
      assert.equal(adapter.pendingRevocation.get(), null);
    } finally {
      delete globalThis.localStorage;
    }
  });
});

describe("cookie mode on a sessiond whose cookie mode is off", () => {
  test("one console warning naming the fix; the refresh that fails is a quiet sign-out", T, async (t) => {
    const warn = t.mock.method(console, "warn", () => {});
    const error = t.mock.method(console, "error", () => {});
    const client = createClient({ url: stack.url, channel: false, restore: false });
    try {
      await client.signUp(`mismatch-${Date.now()}@example.com`, PASSWORD);
      assert.equal(warn.mock.callCount(), 1);
      const text = String(warn.mock.calls[0].arguments[0]);
      assert.match(text, /cookie mode/i);
      assert.match(text, /\[cookies\] enabled = true/);
      assert.match(text, /mode: "bearer"/);
      await client.guest();
      assert.equal(warn.mock.callCount(), 1, "warned once");
      assert.equal(await client.refresh(), null);
      assert.equal(client.signedIn, false);
      assert.equal(error.mock.callCount(), 0);
    } finally {
      client.dispose();
    }
  });
});

describe("guest upgrade with two clients on one refresh token", () => {
  function sharedStorage() {
    return { ...memoryStorage(), shared: true };
  }

  /** A fetch whose refresh requests wait (already holding their token) until `release()`. */
  function heldRefreshes() {
    const fetch = recordingFetch();
    let release;
    const gate = new Promise((r) => { release = r; });
    const answers = [];
    fetch.intercept = (url, init) => {
      if (url.pathname !== "/v1/token/refresh") return null;
      return gate.then(async () => {
        const res = await globalThis.fetch(url, init);
        answers.push({ status: res.status, body: await res.clone().json() });
        return res;
      });
    };
    return { fetch, release, answers };
  }

  for (const channel of [true, false]) {
    test(`upgrade in A while B refreshes with the old token: B gets the upgrade's token, no reuse (${channel ? "with" : "without"} a BroadcastChannel)`, T, async () => {
      const storage = sharedStorage();
      const name = channel ? `test-${Math.random()}` : false;
      const a = newClient({ storage, channel: name });
      const held = heldRefreshes();
      const b = newClient({ storage, channel: name, fetch: held.fetch, restore: false });
      try {
        const guest = await a.client.guest();
        const old = await storage.get();
        // B starts a refresh with the token A's upgrade is about to spend; it reaches sessiond
        // only after the upgrade.
        const refreshing = b.client.refresh();
        await eventually(() => held.fetch.count("/v1/token/refresh") === 1, { what: "b's refresh sent" });
        const user = await a.client.upgrade(`race-${Date.now()}-${channel}@example.com`, PASSWORD);
        assert.equal(user.id, guest.id);
        assert.equal(user.is_guest, false);
        const upgraded = await storage.get();
        assert.notEqual(upgraded, old);
        assert.equal(a.fetch.count("/v1/token/refresh"), 0, "the upgrade needed no refresh");

        held.release();
        const state = await refreshing;
        assert.ok(state, "b was signed out");
        assert.equal(held.answers[0].status, 200, JSON.stringify(held.answers[0].body));
        // sessiond's grace window handed B the upgrade's own refresh token.
        assert.equal(held.answers[0].body.refresh_token, upgraded);
        assert.equal(held.answers[0].body.user.is_guest, false);
        assert.equal(await storage.get(), upgraded);
        assert.equal(b.client.user.is_guest, false);
        assert.equal(b.client.sessionId, a.client.sessionId);

        // Both keep working, on one chain.
        for (const c of [a, b, a, b]) {
          assert.ok(await c.client.refresh());
          assert.equal((await me(await c.client.getAccessToken())).status, 200);
        }
        assert.equal(a.client.user.is_guest, false);
        assert.equal(b.client.user.is_guest, false);
        assert.ok(![...a.events, ...b.events].some((e) => e.type === "signed_out"));
        const types = (await auditEvents(stack, guest.id)).map((e) => e.type);
        assert.ok(!types.some((t) => /reuse/.test(t)), `audit: ${types}`);
      } finally {
        a.client.dispose();
        b.client.dispose();
      }
    });
  }

  test("upgrade sends the stored refresh token; a refresh token of another session is refused", T, async () => {
    const { client, fetch, storage } = newClient();
    const bodies = [];
    fetch.intercept = (url, init) => {
      if (url.pathname === "/v1/upgrade") bodies.push(JSON.parse(init.body));
      return null;
    };
    try {
      await client.guest();
      const stored = await storage.get();
      await client.upgrade(`sent-${Date.now()}@example.com`, PASSWORD);
      assert.equal(bodies[0].refresh_token, stored);
      // The spent guest token, presented again after the new one was used, is reuse: it
      // proves the upgrade spent it (and so that it was sent).
      assert.ok(await client.refresh());
      const again = await call(stack, "POST", "/v1/token/refresh", { body: { refresh_token: stored } });
      assert.equal(again.status, 401);
      assert.equal(again.body.error, "refresh_token_reused");
    } finally {
      client.dispose();
    }

    const other = newClient();
    const mine = newClient();
    try {
      await other.client.guest();
      await mine.client.guest();
      await mine.storage.set(await other.storage.get());
      await assert.rejects(mine.client.upgrade(`foreign-${Date.now()}@example.com`, PASSWORD), (err) => {
        assert.equal(err.status, 401);
        assert.equal(err.code, "invalid_refresh_token");
        return true;
      });
    } finally {
      other.client.dispose();
      mine.client.dispose();
    }
  });
});

describe("cookie mode (a browser-like fetch: an Origin header and a cookie jar)", () => {
  const ORIGIN = "http://app.example.test";
  let cookieStack;

  before(async () => {
    cookieStack = await startSessiond({ cookies: true, origins: [ORIGIN] });
  }, { timeout: 60_000 });
  after(async () => cookieStack?.stop());

  /**
   * Sends what a browser would add (Origin; the refresh cookie when `credentials: "include"`,
   * taken from the jar at send time) and nothing else: the content type is the client's own.
   */
  function browserFetch(jar = { cookie: null }) {
    const sent = [];
    const f = async (input, init = {}) => {
      const url = new URL(typeof input === "string" ? input : input.url);
      const headers = new Headers(init.headers);
      headers.set("origin", ORIGIN);
      if (init.credentials === "include" && jar.cookie) headers.set("cookie", `${COOKIE_NAME}=${jar.cookie}`);
      sent.push({ path: url.pathname, contentType: headers.get("content-type"), body: init.body ?? null });
      const hold = f.hold?.(url);
      if (hold) await hold;
      const res = await fetch(input, { ...init, headers });
      for (const line of res.headers.getSetCookie()) {
        const [pair, ...attrs] = line.split(";");
        const [name, value] = pair.split("=");
        if (name.trim() !== COOKIE_NAME) continue;
        jar.cookie = attrs.some((a) => /max-age=0$/i.test(a.trim())) || !value ? null : value;
      }
      return res;
    };
    f.sent = sent;
    f.jar = jar;
    return f;
  }

  const COOKIE_PATHS = ["/v1/signup", "/v1/login", "/v1/guest", "/v1/upgrade", "/v1/bridge", "/v1/token/refresh", "/v1/logout"];

  test("every call that uses or sets the cookie is JSON (guest and refresh included), so sessiond lets it through", T, async () => {
    // Without the JSON content type, sessiond refuses the cookie-setting call.
    const bare = await fetch(`${cookieStack.url}/v1/guest`, { method: "POST", headers: { origin: ORIGIN } });
    assert.equal(bare.status, 403);

    const f = browserFetch();
    const client = createClient({ url: cookieStack.url, fetch: f, channel: false });
    try {
      await client.ready; // the start-up refresh without a cookie: signed out
      assert.equal(client.signedIn, false);
      const guest = await client.guest();
      assert.ok(f.jar.cookie, "no refresh cookie");
      assert.ok(await client.refresh());
      const user = await client.upgrade(`cookie-${Date.now()}@example.com`, PASSWORD);
      assert.equal(user.id, guest.id);
      assert.ok(await client.refresh());
      await client.logOut();
      assert.equal(f.jar.cookie, null);
      await client.logIn(user.email, PASSWORD);
      await client.logOut("global");
      const calls = f.sent.filter((c) => COOKIE_PATHS.includes(c.path));
      assert.ok(calls.length >= 8, JSON.stringify(calls));
      for (const c of calls) {
        assert.equal(c.contentType, "application/json", `${c.path}: ${c.contentType}`);
        assert.equal(typeof JSON.parse(c.body), "object", `${c.path}: ${c.body}`);
      }
      // The cookie travels; the refresh token never appears in a body or in the client.
      assert.ok(!f.sent.some((c) => c.body?.includes("refresh_token")), "a body carried a refresh token");
    } finally {
      client.dispose();
    }
  });

  test("upgrade in one tab while another refreshes with the old cookie: both converge, no reuse", T, async () => {
    const jar = { cookie: null };
    const a = browserFetch(jar);
    const b = browserFetch(jar);
    const ca = createClient({ url: cookieStack.url, fetch: a, channel: false, restore: false });
    const cb = createClient({ url: cookieStack.url, fetch: b, channel: false, restore: false });
    try {
      const guest = await ca.guest();
      const old = jar.cookie;
      let release;
      const gate = new Promise((r) => { release = r; });
      b.hold = (url) => (url.pathname === "/v1/token/refresh" ? gate : null);
      const refreshing = cb.refresh(); // carries the old cookie, reaches sessiond after the upgrade
      await eventually(() => b.sent.some((c) => c.path === "/v1/token/refresh"), { what: "b's refresh sent" });
      await ca.upgrade(`cookie-race-${Date.now()}@example.com`, PASSWORD);
      const upgraded = jar.cookie;
      assert.notEqual(upgraded, old);
      release();
      const state = await refreshing;
      assert.ok(state, "b was signed out");
      assert.equal(state.user.is_guest, false);
      assert.equal(jar.cookie, upgraded, "the grace window answers with the upgrade's token");
      b.hold = null;
      for (const c of [ca, cb, ca]) {
        assert.ok(await c.refresh());
        const res = await fetch(`${cookieStack.url}/v1/me`, { headers: { authorization: `Bearer ${await c.getAccessToken()}` } });
        assert.equal(res.status, 200);
      }
      const types = (await auditEvents(cookieStack, guest.id)).map((e) => e.type);
      assert.ok(!types.some((t) => /reuse/.test(t)), `audit: ${types}`);
    } finally {
      ca.dispose();
      cb.dispose();
    }
  });

  test("a 401 that races a logout in another tab makes no refresh request", T, async () => {
    const jar = { cookie: null };
    const channel = `test-${Math.random()}`;
    const fa = browserFetch(jar);
    const fb = browserFetch(jar);
    const a = createClient({ url: cookieStack.url, fetch: fa, channel, restore: false });
    const b = createClient({ url: cookieStack.url, fetch: fb, channel, restore: false });
    try {
      await a.guest();
      await b.whenSignedIn();
      let release;
      const gate = new Promise((r) => { release = r; });
      fb.hold = (url) => (url.pathname === "/v1/me" ? gate : null);
      const pending = b.fetch(`${cookieStack.url}/v1/me`);
      await eventually(() => fb.sent.some((c) => c.path === "/v1/me"), { what: "b's request sent" });
      const refreshes = () => fb.sent.filter((c) => c.path === "/v1/token/refresh").length;
      const before = refreshes();
      await a.logOut();
      await eventually(() => !b.signedIn, { what: "b learned of the logout" });
      release();
      const res = await pending;
      assert.equal(res.status, 401);
      assert.equal(refreshes(), before, "b refreshed a session it knew had ended");
    } finally {
      a.dispose();
      b.dispose();
    }
  });
});

describe("API calls", () => {
  test("wsTicket() returns a one-time ticket the service key redeems", T, async () => {
    const { client } = newClient();
    try {
      const user = await client.guest();
      const ticket = await client.wsTicket();
      const redeem = () => call(stack, "POST", "/v1/ws-tickets/redeem", { body: { ticket }, token: stack.serviceKey });
      const first = await redeem();
      assert.equal(first.body.active, true);
      assert.equal(first.body.sub, user.id);
      assert.equal(first.body.sid, client.sessionId);
      assert.deepEqual((await redeem()).body, { active: false });
    } finally {
      client.dispose();
    }
  });

  test("sessions() lists the devices; revokeSession ends another, or this one (signing out)", T, async () => {
    const email = `cy-${Date.now()}@example.com`;
    const a = newClient();
    const b = newClient();
    try {
      await a.client.signUp(email, PASSWORD);
      await b.client.logIn(email, PASSWORD);
      const sessions = await a.client.sessions();
      assert.equal(sessions.length, 2);
      assert.equal(sessions.find((s) => s.current).id, a.client.sessionId);
      await a.client.revokeSession(b.client.sessionId);
      assert.equal((await me(await b.client.getAccessToken())).status, 401);
      await assert.rejects(a.client.revokeSession("0190c8d1-0000-7000-8000-000000000000"), /not_found/);
      await a.client.revokeSession(a.client.sessionId);
      assert.equal(a.client.signedIn, false);
      assert.equal(a.events.at(-1).type, "signed_out");
    } finally {
      a.client.dispose();
      b.client.dispose();
    }
  });

  test("dispose() stops timers and listeners", T, async () => {
    const { client, fetch, events } = newClient();
    await client.guest();
    client.dispose();
    const count = events.length;
    await sleep(4500); // longer than the 4 s token lifetime: a live client would have refreshed
    assert.equal(fetch.count("/v1/token/refresh"), 0);
    assert.equal(events.length, count);
    assert.throws(() => client.refresh(), /disposed/);
  });

  test("the class is exported and options are checked", () => {
    assert.throws(() => new SessiondClient({}), /url is required/);
    assert.throws(() => new SessiondClient({ url: stack.url, mode: "nope" }), /unknown mode/);
  });
});

describe("start-up events, names, snapshot, Socket.IO helper", () => {
  test("each listener first gets initial_session with the restored state (or null)", T, async () => {
    const first = newClient();
    const user = await first.client.guest();
    const storage = first.storage;
    first.client.dispose();
    const restored = newClient({ storage });
    const empty = newClient();
    try {
      await Promise.all([restored.client.ready, empty.client.ready]);
      assert.deepEqual(restored.all.map((e) => [e.type, e.user?.id, e.sessionId, e.remote]),
        [["initial_session", user.id, restored.client.sessionId, false]]);
      assert.deepEqual(empty.all.map((e) => [e.type, e.user, e.sessionId]), [["initial_session", null, null]]);
      // A listener added later gets the current state first, then the changes.
      const late = [];
      restored.client.onChange((e) => late.push(e.type));
      await sleep(0);
      assert.deepEqual(late, ["initial_session"]);
      await restored.client.refresh();
      assert.deepEqual(late, ["initial_session", "refreshed"]);
    } finally {
      restored.client.dispose();
      empty.client.dispose();
    }
  });

  test("a restore that cannot reach sessiond ends in restore_failed, and a later call tries again", T, async () => {
    const f = recordingFetch();
    let down = true;
    f.intercept = (url) => (down && url.pathname === "/v1/token/refresh" ? Promise.reject(new TypeError("fetch failed")) : null);
    const first = newClient();
    const user = await first.client.guest();
    first.client.dispose();
    const { client, all } = newClient({ storage: first.storage, fetch: f });
    try {
      await client.ready;
      assert.deepEqual(all.map((e) => [e.type, e.user, e.reason]), [["restore_failed", null, "network_error"]]);
      down = false;
      assert.ok(await client.getAccessToken());
      assert.equal(client.user.id, user.id);
      assert.deepEqual(all.map((e) => e.type), ["restore_failed", "signed_in"]);
    } finally {
      client.dispose();
    }
  });

  test("signUp, signIn, signOut; logIn and logOut remain as aliases", T, async () => {
    const email = `names-${Date.now()}@example.com`;
    const { client, events } = newClient();
    try {
      const user = await client.signUp(email, PASSWORD);
      await client.signOut();
      assert.equal((await client.signIn(email, PASSWORD)).id, user.id);
      await client.signOut();
      assert.equal((await client.logIn(email, PASSWORD)).id, user.id);
      await client.logOut();
      assert.deepEqual(events.map((e) => e.type),
        ["signed_in", "signed_out", "signed_in", "signed_out", "signed_in", "signed_out"]);
      assert.equal(client.signedIn, false);
    } finally {
      client.dispose();
    }
  });

  test("getSession() is a synchronous snapshot", T, async () => {
    const { client } = newClient();
    try {
      assert.equal(client.getSession(), null);
      const user = await client.guest();
      const snap = client.getSession();
      assert.equal(snap.user.id, user.id);
      assert.equal(snap.sessionId, client.sessionId);
      assert.equal(snap.accessToken, await client.getAccessToken());
      assert.ok(snap.expiresAt > Date.now());
      snap.user.id = "changed";
      snap.accessToken = "changed";
      assert.equal(client.user.id, user.id);
      assert.notEqual(client.getSession().accessToken, "changed");
      await client.signOut();
      assert.equal(client.getSession(), null);
    } finally {
      client.dispose();
    }
  });

  test("socketAuth() hands each connection attempt a new ticket; bindSocket() disconnects on a sign-out in another tab", T, async () => {
    const storage = { ...memoryStorage(), shared: true };
    const channel = `test-${Math.random()}`;
    const a = newClient({ storage, channel });
    const b = newClient({ storage, channel });
    try {
      await Promise.all([a.client.ready, b.client.ready]);
      const auth = b.client.socketAuth();
      assert.deepEqual(await new Promise((cb) => auth(cb)), {}, "signed out: no ticket");
      await a.client.guest();
      await b.client.whenSignedIn();
      const tickets = [await new Promise((cb) => auth(cb)), await new Promise((cb) => auth(cb))].map((d) => d.ticket);
      assert.equal(typeof tickets[0], "string");
      assert.notEqual(tickets[0], tickets[1]);
      const redeemed = await call(stack, "POST", "/v1/ws-tickets/redeem", { body: { ticket: tickets[1] }, token: stack.serviceKey });
      assert.equal(redeemed.body.sid, b.client.sessionId);

      const socket = { disconnects: 0, disconnect() { this.disconnects++; return this; } };
      const unbind = b.client.bindSocket(socket);
      await a.client.refresh();
      await sleep(100);
      assert.equal(socket.disconnects, 0);
      // Another session replaces this one (a sign-in in the other tab): the socket reconnects
      // (with a new ticket, for the new session).
      socket.connects = 0;
      socket.connect = function () { this.connects++; return this; };
      const sessionBefore = b.client.sessionId;
      await a.client.guest();
      await eventually(() => b.client.sessionId !== sessionBefore && socket.connects === 1, { what: "the socket reconnected" });
      assert.equal(socket.disconnects, 1);
      await a.client.signOut();
      await eventually(() => socket.disconnects === 2, { what: "the socket disconnected" });
      assert.equal(socket.connects, 1);
      unbind();
      await a.client.guest();
      await b.client.whenSignedIn();
      await sleep(100);
      assert.deepEqual([socket.disconnects, socket.connects], [2, 1], "unbound");
    } finally {
      a.client.dispose();
      b.client.dispose();
    }
  });
});
