// server.js follows sessiond's session event feed (GET /v1/events): a logout on one device closes
// the socket of the same user's session on another device within a second, and the page says why.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { logs, post, startStack, stopStack } from "./harness.js";

const CHROMIUM = "/usr/bin/chromium";
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

test("logout everywhere on one device closes the socket on the other within 1 s", { timeout: 20_000 }, async () => {
  const email = `feed-${Date.now()}@example.com`;
  const password = "correct horse battery staple";
  await post(stack, "/v1/signup", { body: { email, password } });
  const devices = [];
  try {
    for (let i = 0; i < 2; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${stack.exampleUrl}/`);
      await page.getByLabel("Email").fill(email);
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.locator("#status").filter({ hasText: "connected as" }).waitFor({ timeout: 7000 });
      devices.push({ context, page });
    }
    const [a, b] = devices;
    const start = Date.now();
    await a.page.evaluate(async () => {
      // The page's client is module-scoped; log out everywhere with its cookie, as a settings page would.
      const res = await fetch(`${window.SESSIOND_URL}/v1/logout`, {
        method: "POST", credentials: "include",
        headers: { "content-type": "application/json" }, body: JSON.stringify({ scope: "global" }),
      });
      if (res.status !== 204) throw new Error(`logout: ${res.status}`);
    });
    await b.page.locator("#status").filter({ hasText: "session ended: logout" }).waitFor({ timeout: 3000 })
      .catch((err) => { throw new Error(`${err.message}\n${logs(stack)}`); });
    assert.ok(Date.now() - start < 1500, `took ${Date.now() - start} ms`);
  } finally {
    for (const d of devices) await d.context.close();
  }
});
