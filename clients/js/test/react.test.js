// @sessiond/react in a real Chromium (React 19 from node_modules, no bundler: see test/app.js)
// against the real sessiond in cookie mode: useSession() follows the restore, sign-ins and
// sign-outs, also another tab's.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { startApp } from "./app.js";
import { CHROMIUM, CHROMIUM_ARGS, HOST, freePort, startSessiond } from "./harness.js";

let stack;
let app;
let browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  const port = await freePort();
  stack = await startSessiond({ cookies: true, origins: [`http://${HOST}:${port}`] });
  app = await startApp({ port, sessiondUrl: stack.url, serviceKey: stack.serviceKey, events: false });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await app?.close();
  await stack?.stop();
});

async function open(context, seen) {
  const page = await context.newPage();
  page.on("pageerror", (e) => seen.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if ((m.type() === "error" || m.type() === "warning") && !m.location().url.endsWith("/favicon.ico")) {
      seen.push(`console ${m.type()}: ${m.location().url}: ${m.text()}`);
    }
  });
  await page.goto(`${app.url}/react`);
  await page.waitForFunction(() => window.appReady === true);
  return page;
}

const shown = (page, text) => page.waitForFunction((t) => document.querySelector("#status")?.textContent === t, text, { timeout: 3000 });

test("useSession(): loading, then the restored state; sign-in, reload, another tab's sign-out", { timeout: 30_000 }, async () => {
  const context = await browser.newContext();
  const seen = [];
  try {
    const a = await open(context, seen);
    await shown(a, "signed_out");
    assert.deepEqual(await a.evaluate(() => window.renders.map((r) => [r.text, r.event])),
      [["loading", null], ["signed_out", "initial_session"]]);

    const user = await a.evaluate(() => window.client.guest());
    await shown(a, `signed_in ${user.id}`);

    const b = await open(context, seen);
    await shown(b, `signed_in ${user.id}`);
    assert.equal(await b.evaluate(() => window.renders.at(-1).event), "initial_session");

    await a.reload();
    await shown(a, `signed_in ${user.id}`);

    await a.evaluate(() => window.client.signOut());
    await shown(a, "signed_out");
    await shown(b, "signed_out");
    assert.deepEqual(seen, []);
  } finally {
    await context.close();
  }
});
