// JWKS mode against a scripted sessiond (its own signing keys, JWKS, event feed and
// introspection): the key cache lives no longer than the JWKS answer's Cache-Control max-age, and
// a key announced retired on the feed (`key.retired`) stops verifying at once.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { Sessiond } from "@sessiond/node";
import { HOST, eventually, sleep } from "../../test/harness.js";

const T = { timeout: 20_000 };
const ISSUER = "https://sessiond.example.test";

async function signingKey(kid) {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
  const sign = (claims = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ sid: claims.sid ?? "s1", is_guest: false, ...claims })
      .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid })
      .setIssuer(ISSUER).setAudience("sessiond").setSubject(claims.sub ?? "u1")
      .setIssuedAt(now).setExpirationTime(now + 900)
      .sign(privateKey);
  };
  return { kid, jwk, sign };
}

/** A scripted sessiond: JWKS (with `cacheControl`), introspection (always active), and a feed. */
async function fakeSessiond() {
  const state = {
    keys: [], cacheControl: "public, max-age=300", jwksFetches: 0, introspections: 0, stream: null,
  };
  const server = createServer((req, res) => {
    if (req.url === "/.well-known/jwks.json") {
      state.jwksFetches++;
      res.writeHead(200, { "content-type": "application/json", "cache-control": state.cacheControl });
      res.end(JSON.stringify({ keys: state.keys.map((k) => k.jwk) }));
    } else if (req.url === "/v1/introspect") {
      state.introspections++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ active: true, sub: "u1", sid: "s1", is_guest: false }));
    } else if (req.url.startsWith("/v1/events")) {
      res.writeHead(200, { "content-type": "text/event-stream" }).flushHeaders();
      res.write(": connected\n\n");
      state.stream = res;
    } else {
      res.writeHead(404).end();
    }
  });
  server.listen(0, HOST);
  await once(server, "listening");
  return {
    state,
    url: `http://${HOST}:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

describe("JWKS mode", () => {
  let fake;
  let k1;
  let k2;
  before(async () => {
    fake = await fakeSessiond();
    k1 = await signingKey("k1");
    k2 = await signingKey("k2");
  });
  after(async () => fake?.close());

  test("the key cache lasts no longer than the JWKS answer's max-age", T, async () => {
    fake.state.keys = [k1, k2];
    fake.state.cacheControl = "public, max-age=1";
    const sessiond = new Sessiond({ url: fake.url, mode: "jwks", events: false, issuer: ISSUER });
    try {
      const token = await k1.sign();
      assert.equal((await sessiond.verifyAccessToken(token))?.sub, "u1");
      // sessiond stops publishing k1 (e.g. `sessiond keys retire k1`, seen without a feed).
      fake.state.keys = [k2];
      assert.equal((await sessiond.verifyAccessToken(token))?.sub, "u1", "cached for up to 1 s");
      await sleep(1100);
      assert.equal(await sessiond.verifyAccessToken(token), null, "k1 still verified after the JWKS max-age");
      assert.equal((await sessiond.verifyAccessToken(await k2.sign()))?.sub, "u1");
    } finally {
      await sessiond.close();
    }
  });

  test("max-age is read from sessiond's answer, minus Age; no-store or no-cache means no reuse", () => {
    // Through the public API: a 300 s answer is used for at most 300 s.
    const cases = [
      ["public, max-age=300", null, 300], ["max-age=300", "100", 200], ["no-store", null, 0],
      ["no-cache, max-age=60", null, 0], [null, null, 60], ["max-age=5", "9", 0],
    ];
    return Promise.all(cases.map(async ([cacheControl, age, secs]) => {
      fake.state.keys = [k1];
      const server = createServer((req, res) => {
        const headers = { "content-type": "application/json" };
        if (cacheControl) headers["cache-control"] = cacheControl;
        if (age) headers.age = age;
        res.writeHead(200, headers).end(JSON.stringify({ keys: [k1.jwk] }));
      });
      server.listen(0, HOST);
      await once(server, "listening");
      const sessiond = new Sessiond({
        url: `http://${HOST}:${server.address().port}`, mode: "jwks", events: false, issuer: ISSUER,
      });
      try {
        const start = Date.now();
        await sessiond.verifyAccessToken(await k1.sign());
        const lifetime = sessiond.jwks.expiresAt - start;
        assert.ok(lifetime <= secs * 1000 + 500 && lifetime >= secs * 1000 - 1000,
          `${cacheControl} / Age ${age}: ${lifetime} ms, expected about ${secs} s`);
      } finally {
        await sessiond.close();
        server.closeAllConnections();
        server.close();
      }
    }));
  });

  test("key.retired on the feed: that key's tokens are refused at once, without asking sessiond", T, async () => {
    fake.state.keys = [k1, k2];
    fake.state.cacheControl = "public, max-age=300";
    fake.state.stream = null;
    const sessiond = new Sessiond({ url: fake.url, serviceKey: "sk", mode: "jwks", issuer: ISSUER, warn: () => {} });
    const retired = [];
    sessiond.on("key.retired", (e) => retired.push(e.kid));
    try {
      await eventually(() => sessiond.events.live && fake.state.stream, { what: "feed live" });
      // Tokens issued before the feed was complete are introspected; wait past that margin.
      // (iat is in whole seconds: one more.)
      await sleep(Math.max(0, sessiond.events.liveSince + 6100 - Date.now()));
      const token = await k1.sign();
      const other = await k2.sign();
      assert.equal((await sessiond.verifyAccessToken(token))?.sub, "u1");
      assert.equal(fake.state.introspections, 0, "verified locally");
      const fetches = fake.state.jwksFetches;

      fake.state.stream.write(`id: 1\nevent: key.retired\ndata: ${JSON.stringify({
        id: 1, type: "key.retired", at: new Date().toISOString(), kid: "k1",
      })}\n\n`);
      await eventually(() => sessiond.events.lastEventId === "1", { what: "event 1 received" });
      assert.equal(await sessiond.verifyAccessToken(token), null, "a token of the retired key still verified");
      assert.deepEqual(retired, ["k1"]);
      assert.equal(fake.state.introspections, 0, "refused locally");
      assert.equal((await sessiond.verifyAccessToken(other))?.sub, "u1", "the other key still verifies");
      assert.deepEqual(sessiond.jwks.kids, ["k2"]);
      // Even a JWKS answer that still lists it (a cache in between) does not bring it back.
      sessiond.jwks.invalidate();
      assert.equal((await sessiond.verifyAccessToken(other))?.sub, "u1");
      assert.ok(fake.state.jwksFetches > fetches);
      assert.equal(await sessiond.verifyAccessToken(token), null);
    } finally {
      await sessiond.close();
    }
  });
});
