// Password recovery end to end, in a real Chromium against the real sessiond (cookie mode) on
// SQLite and PostgreSQL, with mail through a real SMTP server on 127.0.0.1 (startSmtpServer()):
// "forgot password" on one device, the mail, the link's page (test/app.js's /auth.html, which
// completes the link with client.completeFromUrl()), a new password: that device is signed in,
// and the other device (another browser context) is signed out at its next refresh.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { startApp } from "./app.js";
import {
  CHROMIUM, CHROMIUM_ARGS, COOKIE_NAME, DATABASES, HOST, call, freePort, startSessiond, startSmtpServer,
} from "./harness.js";

let browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
});

/** Bounds every wait on the page (Playwright's default is 30 s). */
const WAIT = { timeout: 3000 };

for (const db of DATABASES) {
  describe(`password recovery in the browser on ${db}`, () => {
    let smtp;
    let stack;
    let app;

    before(async () => {
      smtp = await startSmtpServer();
      const port = await freePort();
      stack = await startSessiond({
        db,
        cookies: true,
        origins: [`http://${HOST}:${port}`],
        mail: { port: smtp.port, linkUrl: `http://${HOST}:${port}/auth.html` },
        // Shown when a test fails: which requests sessiond answered, and how.
        env: { SESSIOND__LOG__LEVEL: "info" },
      });
      app = await startApp({ port, sessiondUrl: stack.url, serviceKey: stack.serviceKey, events: false });
    }, { timeout: 60_000 });

    after(async () => {
      await app?.close();
      await stack?.stop();
      await smtp?.close();
    });

    /**
     * A page (in a new browser context unless one is given) with its errors and warnings
     * collected: all of them in `seen`, except failed requests (those whose answers the test
     * checks), which go to `failed` as `<status> <path>`; the missing favicon is left out.
     */
    async function open(path, context) {
      const ctx = context ?? (await browser.newContext());
      const page = await ctx.newPage();
      page.setDefaultTimeout(WAIT.timeout);
      const seen = [];
      const failed = [];
      page.on("pageerror", (e) => seen.push(`pageerror: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() !== "error" && m.type() !== "warning") return;
        const where = m.location().url;
        if (where.endsWith("/favicon.ico")) return;
        const status = /status of (\d+)/.exec(m.text())?.[1];
        if (m.text().startsWith("Failed to load resource") && status) failed.push(`${status} ${new URL(where).pathname}`);
        else seen.push(`console ${m.type()}: ${where}: ${m.text()}`);
      });
      await page.goto(`${app.url}${path}`);
      await page.waitForFunction(() => window.appReady === true, null, WAIT);
      await page.evaluate(() => window.client.ready);
      return { context: ctx, page, seen, failed };
    }

    const changes = (page) => page.evaluate(() =>
      window.changes.map((c) => ({ type: c.type, sessionId: c.sessionId, remote: c.remote, reason: c.reason })));
    const apiMe = (page) => page.evaluate(async () => {
      const res = await window.client.fetch("/api/me");
      return { status: res.status, body: await res.json() };
    });
    /** Signs in (or tries to) on `page`; resolves with the user, or with the error code. */
    const signIn = (page, email, password) => page.evaluate(async ([e, p]) => {
      try {
        return { user: await window.client.signIn(e, p) };
      } catch (err) {
        return { error: err.code ?? err.message };
      }
    }, [email, password]);

    /**
     * A request to sessiond from the test itself, as the app's origin would send it (in cookie
     * mode sessiond wants an allowed Origin on the requests that may set its cookie).
     */
    const post = (path, body) => call(stack, "POST", path, { body, headers: { origin: app.url } });

    /** Runs `body`; a failure carries sessiond's output and the SMTP conversation. */
    async function withLogs(body) {
      try {
        await body();
      } catch (err) {
        throw new Error(`${err.stack ?? err}\n\n${stack.logs()}\n${smtp.transcript()}`, { cause: err });
      }
    }

    test("forgot password → the mail → the link's page → a new password: signed in there, the other device signed out", { timeout: 30_000 }, () => withLogs(async () => {
      const email = `reset-${db}-${Date.now()}@example.com`;
      const oldPassword = "old password, long enough";
      const newPassword = "a brand-new password 42";
      const a = await open("/"); // the other device
      const b = await open("/"); // this device: its own browser context, never signed in
      try {
        // Device A signs up and is signed in.
        const user = await a.page.evaluate(([e, p]) => window.client.signUp(e, p), [email, oldPassword]);
        assert.equal(user.email, email);
        const sessionA = await a.page.evaluate(() => window.client.sessionId);
        assert.equal((await apiMe(a.page)).status, 200);
        assert.equal(await b.page.evaluate(() => window.client.signedIn), false);

        // Device B: "forgot password".
        await b.page.evaluate((e) => window.client.requestPasswordReset(e), email);

        // The mail: to the address, from the configured sender, with the link to the app's page.
        const [mail] = await smtp.waitFor(email, { timeoutMs: 5000 });
        assert.equal(mail.from, "no-reply@acme.example");
        assert.deepEqual(mail.to, [email]);
        assert.equal(mail.headers.from, "Acme <no-reply@acme.example>");
        assert.equal(mail.headers.to, email);
        const links = mail.text.match(/https?:\/\/\S+/g) ?? [];
        assert.equal(links.length, 1, `one link in the plain-text part:\n${mail.text}`);
        const link = new URL(links[0]);
        assert.equal(`${link.origin}${link.pathname}`, `${app.url}/auth.html`);
        assert.equal(link.searchParams.get("type"), "reset_password");
        const token = link.searchParams.get("token");
        assert.match(token ?? "", /^[\w-]{20,}$/);
        assert.ok(mail.html.includes(token), "the HTML part carries the same token");

        // Device B opens the link: the page reads the token from its own URL.
        await b.page.goto(link.href);
        await b.page.waitForFunction(() => window.appReady === true, null, WAIT);
        await b.page.evaluate(() => window.client.ready);
        assert.equal(b.page.url(), link.href);
        await b.page.fill("#new-password", newPassword);
        await b.page.click("#set-password");
        await b.page.waitForFunction(() => window.completed !== undefined, null, WAIT);
        const completed = await b.page.evaluate(() => window.completed);
        assert.equal(completed.error, undefined, `completeFromUrl failed: ${completed.error}`);
        assert.equal(completed.type, "reset_password");
        assert.equal(completed.user.id, user.id);
        assert.equal(completed.user.email, email);
        assert.equal(await b.page.textContent("#status"), `signed in as ${email}`);

        // B is signed in: the same user, a new session, and the app's API accepts it.
        const sessionB = await b.page.evaluate(() => window.client.getSession());
        assert.equal(sessionB.user.id, user.id);
        assert.equal(sessionB.user.email, email);
        assert.equal(completed.session.sessionId, sessionB.sessionId);
        assert.notEqual(sessionB.sessionId, sessionA);
        assert.deepEqual((await changes(b.page)).map((c) => [c.type, c.sessionId, c.remote]),
          [["initial_session", null, false], ["signed_in", sessionB.sessionId, false]]);
        const me = await apiMe(b.page);
        assert.equal(me.status, 200);
        assert.equal(me.body.sub, user.id);
        assert.equal(me.body.sid, sessionB.sessionId);
        // The token left the address bar; the refresh cookie is HttpOnly.
        assert.equal(await b.page.evaluate(() => location.search), "");
        assert.ok((await b.context.cookies(stack.url)).find((c) => c.name === COOKIE_NAME)?.httpOnly);
        // A new page of device B restores the session.
        const b2 = await open("/", b.context);
        assert.equal(await b2.page.evaluate(() => window.client.sessionId), sessionB.sessionId);

        // Device A's next refresh: sessiond answers session_revoked, and the client signs out.
        assert.equal(await a.page.evaluate(() => window.client.signedIn), true, "A is signed out only at its next refresh");
        assert.equal(await a.page.evaluate(async () => (await window.client.refresh()) === null), true,
          "A's refresh resolves null: the session is over");
        assert.deepEqual((await changes(a.page)).at(-1),
          { type: "signed_out", sessionId: sessionA, remote: false, reason: "session_revoked" });
        assert.equal(await a.page.evaluate(() => window.client.signedIn), false);
        assert.equal(await a.page.evaluate(() => window.client.getAccessToken()), null);
        assert.equal((await apiMe(a.page)).status, 401);
        // B is not affected by A's sign-out (another browser, another session).
        assert.equal(await b.page.evaluate(() => window.client.sessionId), sessionB.sessionId);
        assert.equal((await apiMe(b.page)).status, 200);

        // The old password no longer logs in; the new one does (on device A, and over the API).
        assert.deepEqual(await signIn(a.page, email, oldPassword), { error: "invalid_credentials" });
        assert.equal((await post("/v1/login", { email, password: oldPassword })).status, 401);
        const again = await signIn(a.page, email, newPassword);
        assert.equal(again.user?.id, user.id, JSON.stringify(again));
        assert.equal((await apiMe(a.page)).status, 200);
        const login = await post("/v1/login", { email, password: newPassword });
        assert.equal(login.status, 200, JSON.stringify(login.body));
        assert.equal(login.body.user.id, user.id);

        // The link works once.
        const reused = await post("/v1/password/reset", { token, new_password: "yet another password" });
        assert.equal(reused.status, 400, JSON.stringify(reused.body));
        assert.equal(reused.body.error, "invalid_grant");

        assert.equal(smtp.to(email).length, 1, "one mail");
        for (const tab of [a, b, b2]) assert.deepEqual(tab.seen, []);
        // The only failed requests: A's refresh of its ended session, the app's API refusing A
        // once signed out, and A's try with the old password.
        assert.deepEqual(a.failed, ["401 /v1/token/refresh", "401 /api/me", "401 /v1/login"]);
        for (const tab of [b, b2]) assert.deepEqual(tab.failed, []);
      } finally {
        await a.context.close();
        await b.context.close();
      }
    }));
  });
}
