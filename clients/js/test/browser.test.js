// @sessiond/client in a real Chromium (playwright-core, /usr/bin/chromium) against the real
// sessiond in cookie mode with a 5-second access-token lifetime, with the Express API and
// Socket.IO server of test/app.js. Fails, never skips, without Chromium.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { startApp } from "./app.js";
import {
  CHROMIUM, CHROMIUM_ARGS, COOKIE_NAME, HOST, auditEvents, bridgeProvider, freePort, sleep, startSessiond,
} from "./harness.js";

const { provider, mint } = bridgeProvider();
let stack;
let app;
/** The same app without sessiond's event feed: its sockets are closed by the client only. */
let quietApp;
let browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  const port = await freePort();
  const quietPort = await freePort();
  stack = await startSessiond({
    cookies: true, origins: [`http://${HOST}:${port}`, `http://${HOST}:${quietPort}`], accessTtlSecs: 5, bridge: provider,
    scopes: ["introspect", "events"],
  });
  app = await startApp({ port, sessiondUrl: stack.url, serviceKey: stack.serviceKey });
  quietApp = await startApp({ port: quietPort, sessiondUrl: stack.url, serviceKey: stack.serviceKey, events: false });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await app?.close();
  await quietApp?.close();
  await stack?.stop();
});

/**
 * A tab on the app's page (in `context`, or a new profile), with its errors and warnings
 * collected: all of them in `seen`, except failed requests (the missing favicon; requests whose
 * answers the tests check), which go to `failed`.
 */
async function openTab(context, { url = app.url } = {}) {
  const ctx = context ?? (await browser.newContext());
  const page = await ctx.newPage();
  const seen = [];
  const failed = [];
  page.on("pageerror", (e) => seen.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    if (m.text().startsWith("Failed to load resource")) failed.push(`${m.location().url}: ${m.text()}`);
    else seen.push(`console ${m.type()}: ${m.text()}`);
  });
  await page.goto(`${url}/`);
  await page.waitForFunction(() => window.appReady === true);
  await page.evaluate(() => window.client.ready);
  return { context: ctx, page, seen, failed };
}

/** Reloads a tab and waits for the client's restore. */
async function reload(page) {
  await page.reload();
  await page.waitForFunction(() => window.appReady === true);
  await page.evaluate(() => window.client.ready);
}

const changes = (page) => page.evaluate(() => window.changes.map((c) => ({ type: c.type, remote: c.remote, reason: c.reason })));
const apiMe = (page) => page.evaluate(async () => {
  const res = await window.client.fetch("/api/me");
  return { status: res.status, body: await res.json() };
});

test("cookie mode: the page never holds the refresh token; a reload restores the session", { timeout: 20_000 }, async () => {
  const { context, page, seen } = await openTab();
  try {
    const user = await page.evaluate(() => window.client.guest());
    assert.equal(user.is_guest, true);
    const cookie = (await context.cookies(stack.url)).find((c) => c.name === COOKIE_NAME);
    assert.ok(cookie?.httpOnly, "the refresh cookie is HttpOnly");
    const visible = await page.evaluate(() => ({
      cookie: document.cookie, local: { ...localStorage }, session: sessionStorage.length,
    }));
    // Only the flag that says there is a session to restore; no secret.
    assert.deepEqual(visible, { cookie: "", local: { sessiond_session: "1" }, session: 0 });
    assert.deepEqual((await apiMe(page)).body.sub, user.id);

    await page.reload();
    await page.waitForFunction(() => window.appReady === true);
    await page.evaluate(() => window.client.ready);
    assert.equal(await page.evaluate(() => window.client.user?.id), user.id);
    assert.equal((await apiMe(page)).status, 200);
    assert.deepEqual(seen, []);
  } finally {
    await context.close();
  }
});

test("two tabs refreshing at the same moment, 20 times: both stay signed in, no refresh_token_reused", { timeout: 60_000 }, async () => {
  const a = await openTab();
  const b = await openTab(a.context);
  try {
    const user = await a.page.evaluate(() => window.client.guest());
    await b.page.evaluate(() => window.client.whenSignedIn());
    assert.equal(await b.page.evaluate(() => window.client.user.id), user.id);
    // Both tabs start a refresh at the same wall-clock instant (the same machine's clock).
    const refreshAt = (page, at) => page.evaluate(async (when) => {
      await new Promise((r) => setTimeout(r, Math.max(0, when - Date.now())));
      try {
        const state = await window.client.refresh();
        return state ? "ok" : "signed out";
      } catch (err) {
        return `error: ${err.message}`;
      }
    }, at);
    for (let round = 0; round < 20; round++) {
      const at = Date.now() + 150;
      const results = await Promise.all([refreshAt(a.page, at), refreshAt(b.page, at)]);
      assert.deepEqual(results, ["ok", "ok"], `round ${round}`);
    }
    for (const tab of [a, b]) {
      assert.equal((await apiMe(tab.page)).status, 200);
      assert.ok(!(await changes(tab.page)).some((c) => c.type === "signed_out"));
      assert.deepEqual(tab.seen, []);
    }
    const types = (await auditEvents(stack, user.id)).map((e) => e.type);
    assert.ok(!types.includes("refresh_reuse_detected"), `audit: ${types}`);
  } finally {
    await a.context.close();
  }
});

test("5-second access tokens: a page keeps working for 30 s without a 401 reaching the app", { timeout: 60_000 }, async () => {
  const { context, page, seen } = await openTab();
  try {
    await page.evaluate(() => window.client.guest());
    const refusedBefore = app.stats.refused;
    const result = await page.evaluate(async () => {
      const statuses = {};
      const end = Date.now() + 30_000;
      while (Date.now() < end) {
        const res = await window.client.fetch("/api/me");
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        await new Promise((r) => setTimeout(r, 200));
      }
      return { statuses, refreshed: window.changes.filter((c) => c.type === "refreshed").length };
    });
    const total = Object.values(result.statuses).reduce((x, y) => x + y, 0);
    assert.deepEqual(Object.keys(result.statuses), ["200"], JSON.stringify(result));
    assert.ok(total >= 100, `only ${total} requests`);
    // 30 s of 5 s tokens: at least 6 refreshes, and the API never had to refuse a stale token.
    assert.ok(result.refreshed >= 6, `${result.refreshed} refreshes`);
    assert.equal(app.stats.refused - refusedBefore, 0, "the API answered 401 to the page");
    assert.deepEqual(seen, []);
  } finally {
    await context.close();
  }
});

test("logging out in one tab signs out the other", { timeout: 20_000 }, async () => {
  const a = await openTab();
  const b = await openTab(a.context);
  try {
    await a.page.evaluate(() => window.client.guest());
    await b.page.evaluate(() => window.client.whenSignedIn());
    assert.equal((await apiMe(b.page)).status, 200);
    await a.page.evaluate(() => window.client.logOut());
    await b.page.waitForFunction(() => window.changes.some((c) => c.type === "signed_out"), null, { timeout: 2000 });
    const out = (await changes(b.page)).find((c) => c.type === "signed_out");
    assert.deepEqual(out, { type: "signed_out", remote: true, reason: "logout" });
    assert.equal(await b.page.evaluate(() => window.client.getAccessToken()), null);
    assert.equal((await apiMe(b.page)).status, 401);
    assert.equal((await a.context.cookies(stack.url)).find((c) => c.name === COOKIE_NAME), undefined);
    // A reload of the other tab stays signed out: the cookie went with the session.
    await b.page.reload();
    await b.page.waitForFunction(() => window.appReady === true);
    await b.page.evaluate(() => window.client.ready);
    assert.equal(await b.page.evaluate(() => window.client.signedIn), false);
  } finally {
    await a.context.close();
  }
});

test("a bridge sign-in followed at once by a socket connects on the first try", { timeout: 20_000 }, async () => {
  for (let i = 0; i < 3; i++) {
    const { context, page, seen } = await openTab();
    try {
      const sub = `ext-${Date.now()}-${i}`;
      const hello = await page.evaluate(async (jwt) => {
        await window.client.bridge("testauth", jwt);
        return window.connectSocket();
      }, mint(sub));
      const userId = await page.evaluate(() => window.client.user.id);
      assert.equal(hello.sub, userId);
      assert.equal(hello.sid, await page.evaluate(() => window.client.sessionId));
      assert.equal(hello.is_guest, false);
      assert.deepEqual(seen, []);
    } finally {
      await context.close();
    }
    await sleep(10);
  }
});

test("a signed-out page load sends no refresh request and logs nothing; nor does one after a logout", { timeout: 20_000 }, async () => {
  const { context, page, seen, failed } = await openTab(undefined);
  const refreshes = [];
  context.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/v1/token/refresh")) refreshes.push(r.url()); });
  try {
    await reload(page);
    assert.equal(await page.evaluate(() => window.client.signedIn), false);
    assert.deepEqual(await page.evaluate(() => window.changes.map((c) => [c.type, c.user])), [["initial_session", null]]);
    assert.deepEqual(refreshes, []);

    const user = await page.evaluate(() => window.client.guest());
    await reload(page);
    assert.equal(await page.evaluate(() => window.client.user?.id), user.id);
    assert.deepEqual(await page.evaluate(() => window.changes.map((c) => [c.type, c.user?.id])), [["initial_session", user.id]]);
    assert.equal(refreshes.length, 1);

    await page.evaluate(() => window.client.signOut());
    await reload(page);
    assert.equal(await page.evaluate(() => window.client.signedIn), false);
    assert.equal(refreshes.length, 1);
    assert.deepEqual(seen, []);
    assert.deepEqual(failed.filter((f) => !f.includes("favicon")), []);
  } finally {
    await context.close();
  }
});

test("sessionHint: false restores a session the page has no flag for", { timeout: 20_000 }, async () => {
  const { context, page } = await openTab();
  try {
    const user = await page.evaluate(() => window.client.guest());
    await page.evaluate(() => localStorage.clear()); // as on another origin sharing the cookie
    await reload(page);
    assert.equal(await page.evaluate(() => window.client.signedIn), false, "no flag: not restored");
    await page.goto(`${app.url}/?nohint`);
    await page.waitForFunction(() => window.appReady === true);
    await page.evaluate(() => window.client.ready);
    assert.equal(await page.evaluate(() => window.client.user?.id), user.id);
  } finally {
    await context.close();
  }
});

test("tabs share no token over the BroadcastChannel: each refreshes for its own", { timeout: 20_000 }, async () => {
  const a = await openTab();
  const b = await openTab(a.context);
  try {
    await a.page.evaluate(() => window.client.guest());
    await b.page.evaluate(() => window.client.whenSignedIn());
    await a.page.evaluate(() => window.client.refresh());
    const tokens = await Promise.all([a, b].map((t) => t.page.evaluate(() => window.client.getAccessToken())));
    assert.notEqual(tokens[0], tokens[1]);
    for (const tab of [a, b]) assert.equal((await apiMe(tab.page)).status, 200);
    await a.page.evaluate(() => window.client.signOut());
    await b.page.waitForFunction(() => !window.client.signedIn, null, { timeout: 2000 });
    for (const tab of [a, b]) {
      const wire = JSON.stringify(await tab.page.evaluate(() => window.channelMessages));
      assert.ok(!tokens.some((t) => wire.includes(t)) && !/token/i.test(wire), wire);
      assert.deepEqual(tab.seen, []);
    }
    assert.ok(JSON.parse(JSON.stringify(await b.page.evaluate(() => window.channelMessages))).some((m) => m.type === "signed_out"));
  } finally {
    await a.context.close();
  }
});

test("socketAuth() and bindSocket(): a logout in another tab disconnects this tab's socket (no event feed)", { timeout: 20_000 }, async () => {
  const a = await openTab(undefined, { url: quietApp.url });
  const b = await openTab(a.context, { url: quietApp.url });
  try {
    await a.page.evaluate(() => window.client.guest());
    await b.page.evaluate(() => window.client.whenSignedIn());
    const hello = await b.page.evaluate(() => window.connectSocket({ bind: true }));
    assert.equal(hello.sid, await b.page.evaluate(() => window.client.sessionId));
    await a.page.evaluate(() => window.client.signOut());
    await b.page.waitForFunction(() => window.socketEvents.some((e) => e.type === "disconnect"), null, { timeout: 2000 });
    assert.deepEqual(await b.page.evaluate(() => window.socketEvents.map((e) => [e.type, e.reason])),
      [["disconnect", "io client disconnect"]]);
    assert.deepEqual(b.seen, []);
  } finally {
    await a.context.close();
  }
});
