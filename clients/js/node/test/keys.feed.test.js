// Retiring a signing key on the real sessiond (`sessiond keys retire <kid>`, the CLI on the same
// database): a JWKS-mode verifier following the event feed gets `key.retired` and refuses that
// key's tokens within a second, locally; tokens of the new active key verify. On SQLite and
// PostgreSQL.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Sessiond } from "@sessiond/node";
import { DATABASES, call, eventually, sleep, startSessiond } from "../../test/harness.js";

const T = { timeout: 30_000 };
const kidOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[0], "base64url").toString()).kid;

for (const db of DATABASES) {
  describe(`signing key retirement on ${db}`, () => {
    let stack;
    before(async () => {
      stack = await startSessiond({
        db, scopes: ["introspect", "events"], env: { SESSIOND__EVENTS__KEEPALIVE_SECS: "1" },
      });
    }, { timeout: 60_000 });
    after(async () => stack?.stop());

    const guest = async () => (await call(stack, "POST", "/v1/guest", { body: {} })).body;

    test("the JWKS answer's max-age bounds the verifier's key cache", T, async () => {
      const sessiond = new Sessiond({ url: stack.url, mode: "jwks", events: false });
      try {
        const res = await fetch(`${stack.url}/.well-known/jwks.json`);
        const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get("cache-control"))?.[1]);
        assert.ok(maxAge > 0, res.headers.get("cache-control"));
        const start = Date.now();
        assert.ok(await sessiond.verifyAccessToken((await guest()).access_token));
        assert.ok(sessiond.jwks.expiresAt <= Date.now() + maxAge * 1000, "cached past sessiond's max-age");
        assert.ok(sessiond.jwks.expiresAt > start);
      } finally {
        await sessiond.close();
      }
    });

    test("sessiond keys retire: that key's tokens are refused within 1 s without introspection", T, async () => {
      let introspections = 0;
      const retired = [];
      const sessiond = new Sessiond({
        url: stack.url, serviceKey: stack.serviceKey, mode: "jwks", warn: () => {},
        fetch: (input, init) => {
          if (String(input).endsWith("/v1/introspect")) introspections++;
          return fetch(input, init);
        },
      });
      sessiond.on("key.retired", (e) => retired.push(e.kid));
      try {
        await eventually(() => sessiond.events.live, { what: "feed live" });
        // Tokens issued before the feed was complete are introspected; wait past that margin.
        await sleep(Math.max(0, sessiond.events.liveSince + 6100 - Date.now()));
        const session = await guest();
        const kid = kidOf(session.access_token);
        assert.equal((await sessiond.verifyAccessToken(session.access_token))?.sid, session.session_id);
        assert.equal(introspections, 0, "verified locally");

        await stack.cli("keys", "retire", kid);
        const start = Date.now();
        await eventually(async () => (await sessiond.verifyAccessToken(session.access_token)) === null,
          { timeoutMs: 1000, intervalMs: 20, what: "the retired key's token refused" });
        assert.ok(Date.now() - start <= 1000, `${Date.now() - start} ms`);
        assert.deepEqual(retired, [kid]);
        assert.equal(introspections, 0, "refused locally");

        // The session goes on with a token of the new active key, which verifies at once. (On
        // SQLite the server learns of the CLI's change by polling: wait until its JWKS shows it.)
        await eventually(async () => {
          const { keys } = await (await fetch(`${stack.url}/.well-known/jwks.json`)).json();
          return !keys.some((k) => k.kid === kid);
        }, { what: "the retired key gone from sessiond's JWKS" });
        const refreshed = await call(stack, "POST", "/v1/token/refresh", { body: { refresh_token: session.refresh_token } });
        assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
        assert.notEqual(kidOf(refreshed.body.access_token), kid);
        assert.equal((await sessiond.verifyAccessToken(refreshed.body.access_token))?.sid, session.session_id);
      } finally {
        await sessiond.close();
      }
    });
  });
}
