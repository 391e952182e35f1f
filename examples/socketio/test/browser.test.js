// The page in a real Chromium: cross-origin fetches with the HttpOnly refresh cookie, a ticket,
// and the Socket.IO handshake. Chromium must be at /usr/bin/chromium (Debian package
// `chromium`); without it this test fails, it never skips.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { COOKIE_NAME, logs, post, startStack, stopStack } from "./harness.js";

const CHROMIUM = "/usr/bin/chromium";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const T = { timeout: 10_000 };
let stack;
let browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  stack = await startStack();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await stopStack(stack);
});

// A fresh browser profile on the example's page; page errors and console lines are kept.
async function openPage(url = `${stack.exampleUrl}/`) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = [];
  page.on("console", (m) => seen.push(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => seen.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => seen.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(url);
  return { context, page, seen };
}

// Waits for #status to say "connected as <uuid>"; the uuid.
async function connectedSub(page, seen) {
  const status = page.locator("#status");
  try {
    await status.filter({ hasText: "connected as" }).waitFor({ timeout: 7000 });
  } catch (err) {
    const text = await status.textContent();
    throw new Error(`#status is ${JSON.stringify(text)}\n${seen.join("\n")}\n${logs(stack)}`, { cause: err });
  }
  const [, sub] = /connected as (\S+)/.exec(await status.textContent());
  return sub;
}

test("a guest connects from the browser; the refresh cookie stays HttpOnly", T, async () => {
  const { context, page, seen } = await openPage();
  try {
    await page.getByRole("button", { name: "Start as guest" }).click();
    const sub = await connectedSub(page, seen);
    assert.match(sub, UUID);
    assert.match(await page.locator("#status").textContent(), /\(guest\)/);

    // The browser holds the refresh cookie for sessiond's host, HttpOnly...
    const cookies = await context.cookies(stack.sessiondUrl);
    const refresh = cookies.find((c) => c.name === COOKIE_NAME);
    assert.ok(refresh, `no ${COOKIE_NAME} cookie: ${JSON.stringify(cookies)}`);
    assert.equal(refresh.httpOnly, true);
    assert.equal(refresh.sameSite, "Lax");
    // ...and page scripts cannot read it (cookies ignore ports, so it would show up here if
    // it were not HttpOnly: the page and sessiond are both on 127.0.0.1).
    const visible = await page.evaluate(() => document.cookie);
    assert.ok(!visible.includes(COOKIE_NAME), `document.cookie shows ${JSON.stringify(visible)}`);
  } finally {
    await context.close();
  }
});

test("login from the form connects as that user; logout ends the session and the cookie", T, async () => {
  const email = `ann-${Date.now()}@example.com`;
  const password = "correct horse battery staple";
  const account = await post(stack, "/v1/signup", { body: { email, password } });

  const { context, page, seen } = await openPage();
  try {
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Log in" }).click();
    const sub = await connectedSub(page, seen);
    assert.equal(sub, account.user.id);
    assert.match(await page.locator("#status").textContent(), new RegExp(`\\(${email}\\)`));

    await page.getByRole("button", { name: "Log out" }).click();
    await page.locator("#status").filter({ hasText: "logged out" }).waitFor({ timeout: 5000 });
    const cookies = await context.cookies(stack.sessiondUrl);
    assert.equal(cookies.find((c) => c.name === COOKIE_NAME), undefined, JSON.stringify(cookies));
    // Without the cookie there is no way back in.
    const refresh = await page.evaluate(async (url) => {
      const r = await fetch(`${url}/v1/token/refresh`, {
        method: "POST", credentials: "include",
        headers: { "content-type": "application/json" }, body: "{}",
      });
      return r.status;
    }, stack.sessiondUrl);
    // (400 or 401, by sessiond's version: what matters is that it is refused.)
    assert.ok(refresh === 400 || refresh === 401, `refresh without a cookie answered ${refresh}`);
  } finally {
    await context.close();
  }
});

test("the same page from an origin not on sessiond's CORS list cannot sign in", T, async () => {
  // http://localhost:<port> is the same server, but not the listed http://127.0.0.1:<port>.
  const { context, page } = await openPage(`${stack.exampleUrl.replace("127.0.0.1", "localhost")}/`);
  try {
    await page.getByRole("button", { name: "Start as guest" }).click();
    await page.locator("#status").filter({ hasText: "Failed to fetch" }).waitFor({ timeout: 7000 });
    const cookies = await context.cookies(stack.sessiondUrl);
    assert.equal(cookies.find((c) => c.name === COOKIE_NAME), undefined, JSON.stringify(cookies));
  } finally {
    await context.close();
  }
});

test("a second tab follows the first: signed in there, connected here; logged out there, here too", T, async () => {
  const { context, page, seen } = await openPage();
  try {
    const other = await context.newPage();
    await other.goto(`${stack.exampleUrl}/`);
    await page.getByRole("button", { name: "Start as guest" }).click();
    const sub = await connectedSub(page, seen);
    // The other tab learns the sign-in over the BroadcastChannel and opens its own socket.
    assert.equal(await connectedSub(other, seen), sub);
    await page.getByRole("button", { name: "Log out" }).click();
    await other.locator("#status").filter({ hasText: "logged out in another tab" }).waitFor({ timeout: 5000 });
    assert.equal(await other.getByRole("button", { name: "Log out" }).isHidden(), true);
    // A reload of a signed-in page would reconnect from the cookie; after logout it stays out.
    await other.reload();
    await other.waitForTimeout(500);
    assert.equal(await other.locator("#status").textContent(), "not connected");
  } finally {
    await context.close();
  }
});

test("a reload reconnects from the refresh cookie, without signing in again", T, async () => {
  const { context, page, seen } = await openPage();
  try {
    await page.getByRole("button", { name: "Start as guest" }).click();
    const sub = await connectedSub(page, seen);
    await page.reload();
    assert.equal(await connectedSub(page, seen), sub);
  } finally {
    await context.close();
  }
});
