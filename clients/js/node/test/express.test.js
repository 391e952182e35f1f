// requireSession() in a real Express app against the real sessiond, on SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import express from "express";
import { Sessiond, requireSession } from "@sessiond/node";
import { DATABASES, HOST, call, startSessiond } from "../../test/harness.js";

const T = { timeout: 15_000 };

/** An Express app on a free port with routes guarded by the given middlewares. */
async function app(routes) {
  const a = express();
  for (const [path, middleware] of Object.entries(routes)) {
    a.get(path, middleware, (req, res) => res.json({ auth: req.auth }));
  }
  const server = a.listen(0, HOST);
  await once(server, "listening");
  const base = `http://${HOST}:${server.address().port}`;
  return {
    base,
    get: async (path, headers = {}) => {
      const res = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(5000) });
      return { status: res.status, headers: res.headers, body: await res.json() };
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

const bearer = (token) => ({ authorization: `Bearer ${token}` });

function assertRefused(res, description) {
  assert.equal(res.status, 401);
  assert.deepEqual(Object.keys(res.body).sort(), ["error", "error_description"]);
  assert.equal(res.body.error, "invalid_token");
  if (description) assert.match(res.body.error_description, description);
  const challenge = res.headers.get("www-authenticate");
  assert.match(challenge, /^Bearer /);
  assert.match(challenge, /error="invalid_token"/);
}

for (const db of DATABASES) {
  describe(`requireSession on ${db}`, () => {
    let stack;
    let server;
    const closers = [];
    let introspections = 0;
    const countingFetch = (input, init) => {
      if (String(input).endsWith("/v1/introspect")) introspections++;
      return fetch(input, init);
    };

    before(async () => {
      stack = await startSessiond({ db });
      const options = { url: stack.url, serviceKey: stack.serviceKey };
      const strict = requireSession(options);
      const anonymous = requireSession({ ...options, anonymous: true });
      // JWKS, local only: no feed, no introspection.
      const local = requireSession({ url: stack.url, mode: "jwks", events: false, fetch: countingFetch });
      // JWKS with the feed (the default). Without a feed to vouch for a token (this key has no
      // `events` scope) every token is introspected, so logouts are still seen at once.
      const jwks = requireSession({ ...options, mode: "jwks", fetch: countingFetch, warn: () => {} });
      const wrongAudience = requireSession({ url: stack.url, mode: "jwks", events: false, audience: "other" });
      const down = requireSession({ url: "http://127.0.0.1:9", serviceKey: "sk_nothing", timeoutMs: 1000 });
      // Step-up: a recent authentication (both modes), and a two-factor one.
      const fresh = requireSession({ ...options, maxAge: 300 });
      const localFresh = requireSession({ url: stack.url, mode: "jwks", events: false, maxAge: 300 });
      const strong = requireSession({ ...options, maxAge: 300, acr: "2" });
      closers.push(strict, anonymous, local, jwks, wrongAudience, down, fresh, localFresh, strong);
      server = await app({
        "/strict": strict, "/anonymous": anonymous, "/local": local, "/jwks": jwks,
        "/wrong-audience": wrongAudience, "/down": down, "/fresh": fresh, "/local-fresh": localFresh, "/strong": strong,
      });
    }, { timeout: 60_000 });

    after(async () => {
      await server?.close();
      await Promise.all(closers.map((m) => m.sessiond.close()));
      await stack?.stop();
    });

    async function guest() {
      const { status, body } = await call(stack, "POST", "/v1/guest", { body: {} });
      assert.equal(status, 201);
      return body;
    }

    /** `auth` without its authentication claims, after checking those against `amr` (just signed in). */
    function identity(auth, amr) {
      const { auth_time, acr, amr: methods, ...rest } = auth;
      assert.ok(Math.abs(auth_time - Date.now() / 1000) < 60, `auth_time ${auth_time}`);
      assert.equal(acr, "1");
      assert.deepEqual(methods, amr);
      return rest;
    }

    test("a valid access token: req.auth = { sub, sid, is_guest, email, auth_time, acr, amr }", T, async () => {
      const session = await guest();
      const res = await server.get("/strict", bearer(session.access_token));
      assert.equal(res.status, 200);
      assert.deepEqual(identity(res.body.auth, ["guest"]),
        { sub: session.user.id, sid: session.session_id, is_guest: true, email: null });
      const local = await server.get("/local", bearer(session.access_token));
      assert.deepEqual(local.body.auth, res.body.auth, "the JWT's claims are introspection's");

      const email = `dee-${Date.now()}@example.com`;
      const signup = await call(stack, "POST", "/v1/signup", { body: { email, password: "correct horse battery staple" } });
      const res2 = await server.get("/strict", bearer(signup.body.access_token));
      assert.deepEqual(identity(res2.body.auth, ["pwd"]),
        { sub: signup.body.user.id, sid: signup.body.session_id, is_guest: false, email });
    });

    test("step-up: a fresh one-factor session passes maxAge; acr 2 asks for more with the RFC 9470 challenge", T, async () => {
      const session = await guest();
      assert.equal((await server.get("/fresh", bearer(session.access_token))).status, 200);
      assert.equal((await server.get("/local-fresh", bearer(session.access_token))).status, 200);
      const res = await server.get("/strong", bearer(session.access_token));
      assert.equal(res.status, 401);
      assert.deepEqual(res.body, {
        error: "insufficient_user_authentication", error_description: "a stronger authentication is required (acr 2)",
      });
      assert.equal(res.headers.get("www-authenticate"),
        'Bearer realm="sessiond", error="insufficient_user_authentication", ' +
        'error_description="a stronger authentication is required (acr 2)", max_age=300, acr_values="2"');
    });

    test("no token, a malformed header, a made-up token: 401 in the contract's shape", T, async () => {
      assertRefused(await server.get("/strict"), /required/);
      assertRefused(await server.get("/strict", { authorization: "Basic Zm9vOmJhcg==" }), /Bearer/);
      assertRefused(await server.get("/strict", bearer("eyJhbGciOiJub25lIn0.e30.")), /invalid/);
      assert.equal((await server.get("/strict")).headers.get("content-type"), "application/json");
    });

    test("introspection sees a logout at once", T, async () => {
      const session = await guest();
      assert.equal((await server.get("/strict", bearer(session.access_token))).status, 200);
      const logout = await call(stack, "POST", "/v1/logout", { token: session.access_token, body: {} });
      assert.equal(logout.status, 204);
      assertRefused(await server.get("/strict", bearer(session.access_token)));
    });

    test("anonymous mode: no header passes with req.auth = null; a bad token is still refused", T, async () => {
      const res = await server.get("/anonymous");
      assert.equal(res.status, 200);
      assert.equal(res.body.auth, null);
      assertRefused(await server.get("/anonymous", bearer("not.a.token")));
      const session = await guest();
      assert.equal((await server.get("/anonymous", bearer(session.access_token))).body.auth.sid, session.session_id);
    });

    test("JWKS mode without the feed verifies locally (no introspection) and cannot see a logout", T, async () => {
      const session = await guest();
      const before = introspections;
      const res = await server.get("/local", bearer(session.access_token));
      assert.equal(res.status, 200);
      assert.equal(res.body.auth.sub, session.user.id);
      await call(stack, "POST", "/v1/logout", { token: session.access_token, body: {} });
      // The documented limit of local-only verification: valid until it expires.
      assert.equal((await server.get("/local", bearer(session.access_token))).status, 200);
      assert.equal(introspections, before);
      assertRefused(await server.get("/local", bearer(`${session.access_token.slice(0, -4)}AAAA`)));
      assertRefused(await server.get("/wrong-audience", bearer(session.access_token)));
    });

    test("JWKS mode with no feed to vouch falls back to introspection: a logout is seen at once", T, async () => {
      const session = await guest();
      const before = introspections;
      assert.equal((await server.get("/jwks", bearer(session.access_token))).status, 200);
      assert.ok(introspections > before);
      await call(stack, "POST", "/v1/logout", { token: session.access_token, body: {} });
      assertRefused(await server.get("/jwks", bearer(session.access_token)));
    });

    test("sessiond unreachable: 503 unavailable with Retry-After, not 401", T, async () => {
      const res = await server.get("/down", bearer("a.b.c"));
      assert.equal(res.status, 503);
      assert.equal(res.body.error, "unavailable");
      assert.equal(res.headers.get("retry-after"), "1");
    });
  });
}

test("options are checked", () => {
  assert.throws(() => requireSession({ url: "http://x" }), /serviceKey/);
  assert.throws(() => new Sessiond({ url: "http://x", mode: "jwks" }), /events: false/);
  assert.throws(() => new Sessiond({ url: "http://x", mode: "magic", serviceKey: "k" }), /unknown mode/);
});
