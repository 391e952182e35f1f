// Passkeys end to end, in a real Chromium against the real sessiond (cookie mode) on SQLite and
// PostgreSQL, with the DevTools WebAuthn virtual authenticator (a CTAP2 platform authenticator
// with resident keys and user verification, one per page): registering a passkey and signing in
// with it on another device, a guest becoming a permanent user by a passkey alone, and the
// step-up before deleting a passkey.
//
// WebAuthn needs the page on a domain: the app's page is opened as http://localhost:<port>
// (sessiond's relying party id "localhost", that origin in webauthn.origins and in the CORS list),
// and the page talks to sessiond as http://localhost:<port> too, so that its refresh cookie is
// same-site. Another device is another browser context with its own authenticator, given a copy
// of the first one's passkeys (WebAuthn.getCredentials / WebAuthn.addCredential).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { startApp } from "./app.js";
import {
  CHROMIUM, CHROMIUM_ARGS, COOKIE_NAME, DATABASES, call, freePort, sleep, startSessiond,
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
/** sessiond's `accounts.fresh_auth_secs` here: short, so that a test can outwait it. */
const FRESH_AUTH_SECS = 3;
/** The virtual authenticator of every page: a platform authenticator that verifies the user. */
const AUTHENTICATOR = {
  protocol: "ctap2",
  transport: "internal",
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The claims of a JWT (not verified: sessiond's introspection is asked too). */
const jwtClaims = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));

for (const db of DATABASES) {
  describe(`passkeys in the browser on ${db}`, () => {
    let stack;
    let app;
    /** The app's origin as the pages see it, and sessiond's URL on the same host. */
    let origin;
    let sessiondUrl;

    before(async () => {
      const port = await freePort();
      origin = `http://localhost:${port}`;
      stack = await startSessiond({
        db,
        cookies: true,
        origins: [origin],
        env: {
          SESSIOND__WEBAUTHN__RP_ID: "localhost",
          SESSIOND__WEBAUTHN__ORIGINS: origin,
          SESSIOND__ACCOUNTS__FRESH_AUTH_SECS: String(FRESH_AUTH_SECS),
          // Shown when a test fails: which requests sessiond answered, and how.
          SESSIOND__LOG__LEVEL: "info",
        },
      });
      sessiondUrl = `http://localhost:${new URL(stack.url).port}`;
      app = await startApp({ port, sessiondUrl, serviceKey: stack.serviceKey, events: false });
    }, { timeout: 60_000 });

    after(async () => {
      await app?.close();
      await stack?.stop();
    });

    /**
     * A page (in a new browser context unless one is given) with its own virtual authenticator
     * (`cdp`, `authenticatorId`) and its errors and warnings collected: all of them in `seen`,
     * except failed requests (those whose answers the test checks), which go to `failed` as
     * `<status> <path>`; the missing favicon is left out.
     */
    async function open(path = "/", context) {
      const ctx = context ?? (await browser.newContext());
      const page = await ctx.newPage();
      page.setDefaultTimeout(WAIT.timeout);
      const cdp = await ctx.newCDPSession(page);
      await cdp.send("WebAuthn.enable", { enableUI: false });
      const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", { options: AUTHENTICATOR });
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
      await page.goto(`${origin}${path}`);
      await page.waitForFunction(() => window.appReady === true, null, WAIT);
      await page.evaluate(() => window.client.ready);
      return { context: ctx, page, cdp, authenticatorId, seen, failed };
    }

    /** The passkeys the tab's authenticator holds (with their private keys). */
    const heldPasskeys = async (tab) =>
      (await tab.cdp.send("WebAuthn.getCredentials", { authenticatorId: tab.authenticatorId })).credentials;

    /** Gives `to`'s authenticator a copy of every passkey of `from`'s: the same passkeys on another device. */
    async function copyPasskeys(from, to) {
      const credentials = await heldPasskeys(from);
      for (const credential of credentials) {
        await to.cdp.send("WebAuthn.addCredential", { authenticatorId: to.authenticatorId, credential });
      }
      return credentials;
    }

    /**
     * Calls `window.client[method](...args)` on the tab's page; resolves with `{ value }`, or with
     * `{ error: { name, code, status, maxAge } }` when it rejects.
     */
    const clientCall = (tab, method, ...args) => tab.page.evaluate(async ([m, a]) => {
      try {
        return { value: await window.client[m](...a) };
      } catch (err) {
        return { error: { name: err.name, code: err.code ?? err.message, status: err.status, maxAge: err.maxAge } };
      }
    }, [method, args]);
    /** As clientCall(), for a call that must succeed: its value. */
    async function clientOk(tab, method, ...args) {
      const result = await clientCall(tab, method, ...args);
      assert.equal(result.error, undefined, `client.${method}() failed: ${JSON.stringify(result.error)}`);
      return result.value;
    }

    const session = (tab) => tab.page.evaluate(() => window.client.getSession());
    const changes = (tab) => tab.page.evaluate(() =>
      window.changes.map((c) => [c.type, c.sessionId, c.user ? c.user.is_guest : null]));
    const apiMe = (tab) => tab.page.evaluate(async () => {
      const res = await window.client.fetch("/api/me");
      return { status: res.status, body: await res.json() };
    });
    /** What sessiond's introspection says of the tab's access token. */
    async function introspect(tab) {
      const token = await tab.page.evaluate(() => window.client.getAccessToken());
      assert.ok(token, "the page has an access token");
      const res = await call(stack, "POST", "/v1/introspect", { body: { token }, token: stack.serviceKey });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return { token, claims: jwtClaims(token), introspected: res.body };
    }

    /** Runs `body`; a failure carries sessiond's output. */
    async function withLogs(body) {
      try {
        await body();
      } catch (err) {
        throw new Error(`${err.stack ?? err}\n\n${stack.logs()}`, { cause: err });
      }
    }

    test("a passkey registered on one device signs in on another: same user, amr hwk+user, acr 2, last_used_at set", { timeout: 30_000 }, () => withLogs(async () => {
      const email = `passkey-${db}-${Date.now()}@example.com`;
      const a = await open(); // the device the passkey is created on
      const b = await open(); // another device, never signed in
      try {
        const user = await clientOk(a, "signUp", email, "a password, long enough");
        const sessionA = (await session(a)).sessionId;

        const passkey = await clientOk(a, "registerPasskey", { name: "Laptop" });
        assert.match(passkey.id, UUID);
        assert.equal(passkey.name, "Laptop");
        // API.md: "Times in objects are RFC 3339 UTC strings".
        assert.equal(typeof passkey.created_at, "string", `created_at ${JSON.stringify(passkey.created_at)}`);
        assert.ok(!Number.isNaN(Date.parse(passkey.created_at)), passkey.created_at);
        assert.deepEqual(await clientOk(a, "listPasskeys"),
          [{ id: passkey.id, name: "Laptop", created_at: passkey.created_at, last_used_at: null }]);
        // The authenticator holds one discoverable passkey for relying party "localhost".
        const held = await heldPasskeys(a);
        assert.equal(held.length, 1);
        assert.equal(held[0].rpId, "localhost");
        assert.equal(held[0].isResidentCredential, true);
        // Registering changed nothing of A's session.
        assert.equal((await session(a)).sessionId, sessionA);

        // Device B: the same passkey (a synced passkey, as a password manager would carry it).
        await copyPasskeys(a, b);
        const signInAt = Date.now();
        const signedIn = await clientOk(b, "signInWithPasskey");
        assert.equal(signedIn.id, user.id);
        assert.equal(signedIn.email, email);
        assert.equal(signedIn.is_guest, false);

        // B's session: a new one, authenticated by a user-verified passkey.
        const sessionB = await session(b);
        assert.equal(sessionB.user.id, user.id);
        assert.notEqual(sessionB.sessionId, sessionA);
        assert.deepEqual(sessionB.amr, ["hwk", "user"]);
        assert.equal(sessionB.acr, "2");
        assert.ok(Math.abs(sessionB.authTime * 1000 - signInAt) < 5000, `auth_time ${sessionB.authTime}`);
        const { claims, introspected } = await introspect(b);
        assert.equal(claims.sub, user.id);
        assert.equal(claims.sid, sessionB.sessionId);
        assert.deepEqual(claims.amr, ["hwk", "user"]);
        assert.equal(claims.acr, "2");
        assert.equal(introspected.active, true);
        assert.equal(introspected.sub, user.id);
        assert.equal(introspected.sid, sessionB.sessionId);
        assert.deepEqual(introspected.amr, ["hwk", "user"]);
        assert.equal(introspected.acr, "2");
        assert.equal(introspected.auth_time, sessionB.authTime);
        assert.deepEqual(await changes(b), [["initial_session", null, null], ["signed_in", sessionB.sessionId, false]]);
        // The app's API accepts it; the refresh cookie is HttpOnly.
        const me = await apiMe(b);
        assert.equal(me.status, 200, JSON.stringify(me.body));
        assert.equal(me.body.sub, user.id);
        assert.equal(me.body.sid, sessionB.sessionId);
        assert.ok((await b.context.cookies(sessiondUrl)).find((c) => c.name === COOKIE_NAME)?.httpOnly);

        // The passkey was used: both devices see when.
        for (const tab of [b, a]) {
          const [listed] = await clientOk(tab, "listPasskeys");
          assert.equal(listed.id, passkey.id);
          assert.ok(listed.last_used_at, `last_used_at is set: ${JSON.stringify(listed)}`);
          assert.equal(typeof listed.last_used_at, "string", `last_used_at ${JSON.stringify(listed.last_used_at)}`);
          const usedAt = Date.parse(listed.last_used_at);
          assert.ok(usedAt >= signInAt - 1000 && usedAt <= Date.now() + 1000, listed.last_used_at);
        }

        // A new page of device B restores the passkey session.
        const b2 = await open("/", b.context);
        assert.equal((await session(b2)).sessionId, sessionB.sessionId);

        for (const tab of [a, b, b2]) {
          assert.deepEqual(tab.seen, []);
          assert.deepEqual(tab.failed, []);
        }
      } finally {
        await a.context.close();
        await b.context.close();
      }
    }));

    test("a guest becomes a permanent user with a passkey and no email, and signs in with it elsewhere", { timeout: 30_000 }, () => withLogs(async () => {
      const a = await open();
      const b = await open();
      try {
        const guest = await clientOk(a, "guest");
        assert.equal(guest.is_guest, true);
        assert.equal(guest.email, null);
        const sessionA = (await session(a)).sessionId;

        const passkey = await clientOk(a, "registerPasskey", { name: "Phone" });
        assert.match(passkey.id, UUID);
        assert.equal(passkey.name, "Phone");

        // The same user and session, no longer a guest, still without an email, announced as a
        // sign-in (as an upgrade is).
        const user = await a.page.evaluate(() => window.client.user);
        assert.equal(user.id, guest.id);
        assert.equal(user.is_guest, false);
        assert.equal(user.email, null);
        const stateA = await session(a);
        assert.equal(stateA.sessionId, sessionA);
        assert.deepEqual(await changes(a),
          [["initial_session", null, null], ["signed_in", sessionA, true], ["signed_in", sessionA, false]]);
        const { claims, introspected } = await introspect(a);
        assert.equal(claims.is_guest, false);
        assert.equal(introspected.active, true);
        assert.equal(introspected.sub, guest.id);
        assert.equal(introspected.is_guest, false);
        const me = await call(stack, "GET", "/v1/me", { token: stateA.accessToken });
        assert.equal(me.status, 200, JSON.stringify(me.body));
        assert.equal(me.body.user.id, guest.id);
        assert.equal(me.body.user.is_guest, false);
        assert.equal(me.body.user.email, null);
        // A reload keeps the permanent user.
        await a.page.reload();
        await a.page.waitForFunction(() => window.appReady === true, null, WAIT);
        await a.page.evaluate(() => window.client.ready);
        const restored = await session(a);
        assert.equal(restored.sessionId, sessionA);
        assert.deepEqual([restored.user.id, restored.user.is_guest, restored.user.email], [guest.id, false, null]);

        // Another device signs in with the passkey as the same user.
        await copyPasskeys(a, b);
        const signedIn = await clientOk(b, "signInWithPasskey");
        assert.equal(signedIn.id, guest.id);
        assert.equal(signedIn.is_guest, false);
        assert.equal(signedIn.email, null);
        const sessionB = await session(b);
        assert.notEqual(sessionB.sessionId, sessionA);
        assert.deepEqual(sessionB.amr, ["hwk", "user"]);
        assert.equal(sessionB.acr, "2");
        const [listed] = await clientOk(b, "listPasskeys");
        assert.equal(listed.id, passkey.id);
        assert.ok(listed.last_used_at, JSON.stringify(listed));

        for (const tab of [a, b]) {
          assert.deepEqual(tab.seen, []);
          assert.deepEqual(tab.failed, []);
        }
      } finally {
        await a.context.close();
        await b.context.close();
      }
    }));

    test("deleting a passkey needs a fresh authentication: step-up error, reauthenticate with a passkey, then deleted; never the last one", { timeout: 30_000 }, () => withLogs(async () => {
      const a = await open();
      try {
        // A passkey-only account: a guest that registered a passkey.
        const guest = await clientOk(a, "guest");
        const first = await clientOk(a, "registerPasskey", { name: "first" });
        assert.equal((await a.page.evaluate(() => window.client.user)).is_guest, false);
        const sessionId = (await session(a)).sessionId;

        // A second passkey, on an authenticator that no longer holds the first (one
        // authenticator keeps one passkey per account: the first would be excluded). Registering
        // needs a fresh authentication: the first passkey gives it.
        const [firstHeld] = await heldPasskeys(a);
        const reauthed = await clientOk(a, "reauthenticate", { passkey: true });
        assert.equal(reauthed.id, guest.id);
        await a.cdp.send("WebAuthn.removeCredential", { authenticatorId: a.authenticatorId, credentialId: firstHeld.credentialId });
        const second = await clientOk(a, "registerPasskey", { name: "second" });
        assert.notEqual(second.id, first.id);
        assert.deepEqual((await clientOk(a, "listPasskeys")).map((p) => p.name).sort(), ["first", "second"]);

        // The session stops being fresh FRESH_AUTH_SECS after its last authentication (sessiond
        // counts whole seconds): wait just past that, a bounded wait.
        const { authTime } = await session(a);
        assert.equal(typeof authTime, "number");
        const staleAt = (authTime + FRESH_AUTH_SECS + 1) * 1000 + 100;
        assert.ok(staleAt - Date.now() <= (FRESH_AUTH_SECS + 2) * 1000, `auth_time ${authTime} is in the future`);
        await sleep(Math.max(0, staleAt - Date.now()));

        // Not fresh: the RFC 9470 challenge, as the client's StepUpRequiredError; nothing deleted.
        // Its maxAge comes from the WWW-Authenticate header, which a page on another origin than
        // sessiond's can read only when sessiond's CORS answer exposes it.
        const refused = await clientCall(a, "deletePasskey", first.id);
        assert.deepEqual(refused.error, {
          name: "StepUpRequiredError", code: "insufficient_user_authentication", status: 401, maxAge: FRESH_AUTH_SECS,
        });
        assert.equal((await clientOk(a, "listPasskeys")).length, 2);
        assert.equal((await session(a)).sessionId, sessionId, "a step-up refusal does not end the session");

        // Step up with a passkey (the second: the one this authenticator holds): the same session,
        // a new auth_time, acr 2.
        const stepUpAt = Date.now();
        const user = await clientOk(a, "reauthenticate", { passkey: true });
        assert.equal(user.id, guest.id);
        const fresh = await session(a);
        assert.equal(fresh.sessionId, sessionId);
        assert.ok(fresh.authTime > authTime, `auth_time ${fresh.authTime} after ${authTime}`);
        assert.ok(Math.abs(fresh.authTime * 1000 - stepUpAt) < 5000, `auth_time ${fresh.authTime}`);
        assert.equal(fresh.acr, "2");
        assert.ok(fresh.amr.includes("hwk"), JSON.stringify(fresh.amr));
        const { introspected } = await introspect(a);
        assert.equal(introspected.sid, sessionId);
        assert.equal(introspected.auth_time, fresh.authTime);
        assert.equal(introspected.acr, "2");

        // Now the first passkey goes.
        assert.deepEqual(await clientCall(a, "deletePasskey", first.id), { value: undefined });
        const left = await clientOk(a, "listPasskeys");
        assert.deepEqual(left.map((p) => p.id), [second.id]);
        assert.ok(left[0].last_used_at, "the second passkey was used for the step-up");

        // The last one cannot: the account would have no way to sign in.
        const last = await clientCall(a, "deletePasskey", second.id);
        assert.equal(last.error?.code, "last_credential", JSON.stringify(last));
        assert.equal(last.error.status, 409);
        assert.deepEqual((await clientOk(a, "listPasskeys")).map((p) => p.id), [second.id]);
        assert.equal((await session(a)).sessionId, sessionId);

        assert.deepEqual(a.seen, []);
        // The only failed requests: the delete that needed a step-up, and the last passkey's.
        assert.deepEqual(a.failed, [`401 /v1/passkeys/${first.id}`, `409 /v1/passkeys/${second.id}`]);
      } finally {
        await a.context.close();
      }
    }));
  });
}
