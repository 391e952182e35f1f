// With sessiond's session event feed (GET /v1/events, service key scope `events`): logging out in
// one tab signs out the other AND the server closes the other tab's socket (telling it why)
// within a second.
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
  stack = await startSessiond({ cookies: true, origins: [`http://${HOST}:${port}`], scopes: ["introspect", "events"] });
  app = await startApp({ port, sessiondUrl: stack.url, serviceKey: stack.serviceKey });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await app?.close();
  await stack?.stop();
});

test("logging out in one tab signs out the other and closes its socket", { timeout: 20_000 }, async () => {
  const context = await browser.newContext();
  try {
    const tabs = [];
    for (let i = 0; i < 2; i++) {
      const page = await context.newPage();
      await page.goto(`${app.url}/`);
      await page.waitForFunction(() => window.appReady === true);
      tabs.push(page);
    }
    const [a, b] = tabs;
    await a.evaluate(() => window.client.guest());
    await b.evaluate(() => window.client.whenSignedIn());
    const hello = await b.evaluate(() => window.connectSocket());
    const sid = await b.evaluate(() => window.client.sessionId);
    assert.equal(hello.sid, sid);

    const start = Date.now();
    await a.evaluate(() => window.client.logOut());
    await b.waitForFunction(() => window.socketEvents.some((e) => e.type === "disconnect"), null, { timeout: 3000 });
    const events = await b.evaluate(() => window.socketEvents);
    assert.equal(events[0].type, "session_ended");
    assert.equal(events[0].reason, "logout");
    assert.equal(events[0].session_id, sid);
    assert.equal(events[1].reason, "io server disconnect");
    assert.ok(events[1].at - start < 1000, `closed after ${events[1].at - start} ms`);
    assert.equal(await b.evaluate(() => window.client.signedIn), false);
  } finally {
    await context.close();
  }
});
