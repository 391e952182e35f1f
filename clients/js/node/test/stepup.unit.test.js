// Unit tests (no sessiond binary): step-up (RFC 9470) in requireSession({ maxAge, acr }) and
// socketAuth({ maxAge, acr }), and the authentication claims (auth_time, acr, amr) on req.auth
// and socket.data.session. sessiond is scripted with node:http: introspection and ticket
// redemption answer what a test put in `tokens` / `tickets`, and the JWKS holds a key made here
// (JWKS mode verifies tokens signed with it, no feed).
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import express from "express";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { requireSession, socketAuth } from "@sessiond/node";
import { stepUpChallenge, stepUpOptions, stepUpRefusal } from "../dist/esm/stepup.js";
import { HOST } from "../../test/harness.js";
import { connect, socketServer } from "./helpers.js";

const T = { timeout: 15_000 };
const ISSUER = "https://sessiond.example.test";
const now = () => Math.floor(Date.now() / 1000);

/** A scripted sessiond: introspection of `tokens`, redemption of `tickets`, a JWKS of one key. */
async function fakeSessiond() {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  const state = { tokens: new Map(), tickets: new Map(), introspections: 0 };
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const answer = (status, value) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    if (req.headers.authorization !== "Bearer sk_test" && req.url.startsWith("/v1/")) return answer(401, { error: "invalid_client" });
    if (req.url === "/.well-known/jwks.json") return answer(200, { keys: [jwk] });
    if (req.url === "/v1/introspect") {
      state.introspections++;
      const claims = state.tokens.get(new URLSearchParams(body).get("token"));
      return answer(200, claims ? { active: true, token_type: "access_token", ...claims } : { active: false });
    }
    if (req.url === "/v1/ws-tickets/redeem") {
      const { ticket } = JSON.parse(body);
      const claims = state.tickets.get(ticket);
      state.tickets.delete(ticket);
      return answer(200, claims ? { active: true, ...claims } : { active: false });
    }
    answer(404, { error: "not_found" });
  });
  server.listen(0, HOST);
  await once(server, "listening");
  let n = 0;
  return {
    state,
    url: `http://${HOST}:${server.address().port}`,
    /** An opaque token that introspection knows, with these claims. */
    token(claims) {
      const token = `opaque-${++n}`;
      state.tokens.set(token, { sub: "u1", sid: `s${n}`, is_guest: false, email: "a@example.com", ...claims });
      return token;
    },
    ticket(claims) {
      const ticket = `ticket-${++n}`;
      state.tickets.set(ticket, { sub: "u1", sid: `s${n}`, is_guest: false, ...claims });
      return ticket;
    },
    /** An access token signed with the JWKS's key. */
    jwt(claims) {
      const iat = now();
      return new SignJWT({ sid: `s${++n}`, is_guest: false, ...claims })
        .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "k1" })
        .setIssuer(ISSUER).setAudience("sessiond").setSubject("u1")
        .setIssuedAt(iat).setExpirationTime(iat + 900)
        .sign(privateKey);
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

/** An Express app on a free port with a route per middleware, answering `{ auth: req.auth }`. */
async function app(routes) {
  const a = express();
  for (const [path, middleware] of Object.entries(routes)) a.get(path, middleware, (req, res) => res.json({ auth: req.auth }));
  const server = a.listen(0, HOST);
  await once(server, "listening");
  const base = `http://${HOST}:${server.address().port}`;
  return {
    get: async (path, token) => {
      const res = await fetch(`${base}${path}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(5000),
      });
      return { status: res.status, headers: res.headers, body: await res.json() };
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

/** Asserts an RFC 9470 refusal: the contract's body, and a challenge with exactly these parameters. */
function assertStepUp(res, { maxAge, acr, description }) {
  assert.equal(res.status, 401);
  assert.deepEqual(Object.keys(res.body).sort(), ["error", "error_description"]);
  assert.equal(res.body.error, "insufficient_user_authentication");
  if (description) assert.match(res.body.error_description, description);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.equal(res.headers.get("cache-control"), "no-store");
  let expected = `Bearer realm="sessiond", error="insufficient_user_authentication", error_description="${res.body.error_description}"`;
  if (maxAge !== undefined) expected += `, max_age=${maxAge}`;
  if (acr !== undefined) expected += `, acr_values="${acr}"`;
  assert.equal(res.headers.get("www-authenticate"), expected);
}

describe("requireSession({ maxAge, acr })", () => {
  let sessiond;
  let server;
  const middlewares = [];

  before(async () => {
    sessiond = await fakeSessiond();
    const introspect = { url: sessiond.url, serviceKey: "sk_test" };
    const jwks = { url: sessiond.url, mode: "jwks", events: false, issuer: ISSUER };
    const routes = {
      "/plain": requireSession(introspect),
      "/fresh": requireSession({ ...introspect, maxAge: 300 }),
      "/strong": requireSession({ ...introspect, acr: "2" }),
      "/both": requireSession({ ...introspect, maxAge: 60, acr: "2" }),
      "/anonymous-fresh": requireSession({ ...introspect, maxAge: 300, anonymous: true }),
      "/jwks": requireSession(jwks),
      "/jwks-both": requireSession({ ...jwks, maxAge: 300, acr: "2" }),
    };
    middlewares.push(...Object.values(routes));
    server = await app(routes);
  });

  after(async () => {
    await server?.close();
    await Promise.all(middlewares.map((m) => m.sessiond.close()));
    await sessiond?.close();
  });

  test("req.auth carries auth_time, acr and amr from introspection and from the JWT", T, async () => {
    const authTime = now() - 10;
    const claims = { auth_time: authTime, acr: "2", amr: ["pwd", "otp"] };
    const res = await server.get("/plain", sessiond.token(claims));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.auth, { sub: "u1", sid: res.body.auth.sid, is_guest: false, email: "a@example.com", ...claims });
    const local = await server.get("/jwks", await sessiond.jwt(claims));
    assert.equal(local.status, 200);
    assert.equal(local.body.auth.auth_time, authTime);
    assert.equal(local.body.auth.acr, "2");
    assert.deepEqual(local.body.auth.amr, ["pwd", "otp"]);
    // An older sessiond's answer without them: the fields are absent, not made up.
    const bare = await server.get("/plain", sessiond.token({}));
    assert.deepEqual(Object.keys(bare.body.auth).sort(), ["email", "is_guest", "sid", "sub"]);
  });

  test("maxAge: a recent authentication passes; an older one gets 401 insufficient_user_authentication with max_age", T, async () => {
    const fresh = await server.get("/fresh", sessiond.token({ auth_time: now() - 299, acr: "1", amr: ["pwd"] }));
    assert.equal(fresh.status, 200);
    assert.equal(fresh.body.auth.acr, "1");
    const old = await server.get("/fresh", sessiond.token({ auth_time: now() - 1000, acr: "2", amr: ["pwd", "otp"] }));
    assertStepUp(old, { maxAge: 300, description: /within the last 300 seconds/ });
    // No auth_time to judge by: refused as well (never assumed fresh).
    assertStepUp(await server.get("/fresh", sessiond.token({ acr: "1" })), { maxAge: 300 });
  });

  test("acr: a weaker authentication gets acr_values; a strong enough one passes however old", T, async () => {
    const weak = await server.get("/strong", sessiond.token({ auth_time: now(), acr: "1", amr: ["pwd"] }));
    assertStepUp(weak, { acr: "2", description: /stronger authentication/ });
    assertStepUp(await server.get("/strong", sessiond.token({ auth_time: now() })), { acr: "2" });
    const strong = await server.get("/strong", sessiond.token({ auth_time: now() - 86_400, acr: "2", amr: ["hwk", "user"] }));
    assert.equal(strong.status, 200);
  });

  test("maxAge and acr together: the challenge names both, whichever fell short", T, async () => {
    assertStepUp(await server.get("/both", sessiond.token({ auth_time: now() - 120, acr: "2" })),
      { maxAge: 60, acr: "2", description: /within the last 60 seconds/ });
    assertStepUp(await server.get("/both", sessiond.token({ auth_time: now(), acr: "1" })),
      { maxAge: 60, acr: "2", description: /stronger/ });
    assert.equal((await server.get("/both", sessiond.token({ auth_time: now(), acr: "2" }))).status, 200);
  });

  test("JWKS mode judges the token's own claims, without asking sessiond", T, async () => {
    const before = sessiond.state.introspections;
    assert.equal((await server.get("/jwks-both", await sessiond.jwt({ auth_time: now(), acr: "2", amr: ["pwd", "otp"] }))).status, 200);
    assertStepUp(await server.get("/jwks-both", await sessiond.jwt({ auth_time: now() - 301, acr: "2" })), { maxAge: 300, acr: "2" });
    assertStepUp(await server.get("/jwks-both", await sessiond.jwt({ auth_time: now(), acr: "1" })), { maxAge: 300, acr: "2" });
    assertStepUp(await server.get("/jwks-both", await sessiond.jwt({})), { maxAge: 300, acr: "2" });
    assert.equal(sessiond.state.introspections, before);
  });

  test("a bad token is still invalid_token, and anonymous requests without a token still pass", T, async () => {
    const res = await server.get("/fresh", "not-a-token-sessiond-knows");
    assert.equal(res.status, 401);
    assert.equal(res.body.error, "invalid_token");
    assert.match(res.headers.get("www-authenticate"), /error="invalid_token"/);
    const anonymous = await server.get("/anonymous-fresh");
    assert.equal(anonymous.status, 200);
    assert.equal(anonymous.body.auth, null);
    assertStepUp(await server.get("/anonymous-fresh", sessiond.token({ auth_time: now() - 1000 })), { maxAge: 300 });
  });

  test("options are checked at setup", () => {
    const base = { url: "http://x", serviceKey: "k" };
    for (const bad of [{ maxAge: -1 }, { maxAge: "300" }, { maxAge: Number.NaN }, { acr: "high" }, { acr: 2 }, { acr: "0" }]) {
      assert.throws(() => requireSession({ ...base, ...bad }), TypeError, JSON.stringify(bad));
      assert.throws(() => socketAuth({ ...base, events: false, ...bad }), TypeError, JSON.stringify(bad));
    }
  });
});

test("stepUpRefusal: the boundaries of maxAge and acr; stepUpChallenge quotes safely", () => {
  const at = 1_700_000_000;
  const auth = { sub: "u", sid: "s", is_guest: false, email: null, auth_time: at - 300, acr: "2" };
  assert.equal(stepUpRefusal(auth, {}, at), null);
  assert.equal(stepUpRefusal(auth, { maxAge: 300 }, at), null);
  assert.equal(stepUpRefusal(auth, { maxAge: 299 }, at).max_age, 299);
  assert.equal(stepUpRefusal(auth, { acr: "2" }, at), null);
  assert.equal(stepUpRefusal(auth, { acr: "1" }, at), null);
  assert.deepEqual(stepUpRefusal({ ...auth, acr: "1" }, { acr: "2" }, at), {
    error: "insufficient_user_authentication", error_description: "a stronger authentication is required (acr 2)", acr_values: "2",
  });
  assert.equal(stepUpRefusal({ ...auth, acr: "x" }, { acr: "1" }, at).acr_values, "1");
  assert.equal(stepUpRefusal({ ...auth, auth_time: at + 5 }, { maxAge: 0 }, at), null, "a clock a little behind sessiond's");
  assert.deepEqual(stepUpOptions({ maxAge: 300.9, acr: "2", url: "x" }), { maxAge: 300, acr: "2" });
  assert.equal(
    stepUpChallenge('api "v2"', { error: "insufficient_user_authentication", error_description: 'say "hi"', max_age: 5 }),
    'Bearer realm="api v2", error="insufficient_user_authentication", error_description="say hi", max_age=5',
  );
});

describe("socketAuth({ maxAge, acr })", () => {
  let sessiond;
  const servers = [];

  before(async () => {
    sessiond = await fakeSessiond();
  });
  after(async () => {
    for (const { server, auth } of servers) {
      await server.close();
      await auth.close();
    }
    await sessiond?.close();
  });

  async function serve(options) {
    const auth = socketAuth({ url: sessiond.url, serviceKey: "sk_test", events: false, ...options });
    const server = await socketServer(auth);
    servers.push({ server, auth });
    return server.url;
  }

  async function refused(url, options) {
    try {
      const { socket } = await connect(url, options);
      socket.disconnect();
    } catch (err) {
      return err;
    }
    assert.fail("connected");
  }

  test("socket.data.session carries auth_time, acr and amr; a recent, strong enough authentication connects", T, async () => {
    const url = await serve({ maxAge: 300, acr: "2" });
    const claims = { auth_time: now() - 5, acr: "2", amr: ["hwk", "user"] };
    const { socket, hello } = await connect(url, { auth: { token: sessiond.token(claims) } });
    socket.disconnect();
    assert.equal(hello.auth_time, claims.auth_time);
    assert.equal(hello.acr, "2");
    assert.deepEqual(hello.amr, ["hwk", "user"]);
  });

  test("too old: connect_error insufficient_user_authentication with max_age (and acr_values when asked)", T, async () => {
    const fresh = await serve({ maxAge: 300 });
    const old = await refused(fresh, { auth: { token: sessiond.token({ auth_time: now() - 1000, acr: "2" }) } });
    assert.equal(old.message, "an authentication within the last 300 seconds is required");
    assert.deepEqual(old.data, { code: "insufficient_user_authentication", max_age: 300 });

    const both = await serve({ maxAge: 300, acr: "2" });
    const weak = await refused(both, { auth: { token: sessiond.token({ auth_time: now(), acr: "1" }) } });
    assert.equal(weak.message, "a stronger authentication is required (acr 2)");
    assert.deepEqual(weak.data, { code: "insufficient_user_authentication", max_age: 300, acr_values: "2" });
  });

  test("tickets: judged by what redemption says of the session; without auth_time they are refused", T, async () => {
    const url = await serve({ maxAge: 300 });
    const { socket, hello } = await connect(url, { auth: { ticket: sessiond.ticket({ auth_time: now(), acr: "1", amr: ["pwd"] }) } });
    socket.disconnect();
    assert.equal(hello.acr, "1");
    const err = await refused(url, { auth: { ticket: sessiond.ticket({}) } });
    assert.equal(err.data.code, "insufficient_user_authentication");
    // Without step-up options, tickets connect as before.
    const plain = await serve({});
    const ok = await connect(plain, { auth: { ticket: sessiond.ticket({}) } });
    ok.socket.disconnect();
    assert.equal(ok.hello.sub, "u1");
  });
});
