// Unit tests (no sessiond binary): the HTTP contract, src/http.ts, and how the client's calls
// surface sessiond's errors.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SessiondError, createClient } from "@sessiond/client";
import { postJson, readJson, unavailable } from "../dist/esm/http.js";
import { fakeSessiond, json } from "./fakes.js";

test("readJson: the body of a success, null for 204", async () => {
  assert.deepEqual(await readJson(json(200, { a: 1 })), { a: 1 });
  assert.equal(await readJson(json(204)), null);
});

test("readJson: a contract error becomes SessiondError with sessiond's error code and description", async () => {
  const err = await readJson(json(401, { error: "session_revoked", error_description: "the session was revoked" }))
    .then(() => assert.fail("resolved"), (e) => e);
  assert.ok(err instanceof SessiondError);
  assert.ok(err instanceof Error);
  assert.equal(err.name, "SessiondError");
  assert.equal(err.status, 401);
  assert.equal(err.code, "session_revoked");
  assert.equal(err.description, "the session was revoked");
  assert.equal(err.message, "session_revoked: the session was revoked");
});

test("readJson: an error that is not the contract's JSON becomes http_<status> with the status text", async () => {
  const res = new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" });
  const err = await readJson(res).then(() => assert.fail("resolved"), (e) => e);
  assert.ok(err instanceof SessiondError);
  assert.equal(err.code, "http_502");
  assert.equal(err.description, "Bad Gateway");
});

test("unavailable: 5xx and 429 are worth retrying, 4xx are answers", () => {
  assert.deepEqual([500, 503, 429, 401, 400, 200].map((status) => unavailable(new Response(null, { status }))),
    [true, true, true, false, false, false]);
});

test("postJson: a JSON POST with the credentials asked for, and a bearer token only when given", async () => {
  const seen = [];
  const f = async (url, init) => {
    seen.push({ url, init });
    return json(200, {});
  };
  await postJson(f, "http://sessiond/v1/logout", { scope: "global" }, "include", "at-1");
  await postJson(f, "http://sessiond/v1/revoke", { token: "rt" }, "omit");
  assert.equal(seen[0].url, "http://sessiond/v1/logout");
  assert.equal(seen[0].init.method, "POST");
  assert.deepEqual(seen[0].init.headers, { "content-type": "application/json", authorization: "Bearer at-1" });
  assert.equal(seen[0].init.body, '{"scope":"global"}');
  assert.equal(seen[0].init.credentials, "include");
  assert.deepEqual(seen[1].init.headers, { "content-type": "application/json" });
  assert.equal(seen[1].init.credentials, "omit");
});

test("a refused sign-in rejects with SessiondError(invalid_credentials) and leaves the client signed out", async () => {
  const server = fakeSessiond();
  const client = createClient({ url: "http://sessiond/", mode: "bearer", fetch: server.fetchFor(), channel: false });
  try {
    const err = await client.signIn("a@example.com", "wrong").then(() => assert.fail("resolved"), (e) => e);
    assert.ok(err instanceof SessiondError);
    assert.equal(err.status, 401);
    assert.equal(err.code, "invalid_credentials");
    assert.equal(client.signedIn, false);
    // The trailing slash of the URL option is dropped.
    assert.equal(server.calls.at(-1).path, "/v1/login");
    assert.equal(client.url, "http://sessiond");
  } finally {
    client.dispose();
  }
});

test("client.fetch(): bearer token on the request; after a 401, one refresh and one retry with the new token", async () => {
  const server = fakeSessiond();
  const seen = [];
  const base = server.fetchFor();
  const f = async (input, init = {}) => {
    const url = String(input);
    if (!url.startsWith("http://api/")) return base(input, init);
    const auth = new Headers(init.headers).get("authorization");
    seen.push(auth);
    return seen.length === 1 ? json(401, { error: "invalid_token" }) : json(200, { ok: auth });
  };
  const client = createClient({ url: "http://sessiond", mode: "bearer", fetch: f, channel: false });
  try {
    await client.guest();
    const first = client.getSession().accessToken;
    const res = await client.fetch("http://api/data");
    assert.equal(res.status, 200);
    assert.equal(seen.length, 2);
    assert.equal(seen[0], `Bearer ${first}`);
    assert.notEqual(seen[1], seen[0]);
    assert.equal(seen[1], `Bearer ${client.getSession().accessToken}`);
    assert.equal(server.count("/v1/token/refresh"), 1);
  } finally {
    client.dispose();
  }
});

test("wsTicket(): an error answer rejects with SessiondError carrying sessiond's code", async () => {
  const server = fakeSessiond();
  const client = createClient({ url: "http://sessiond", mode: "bearer", fetch: server.fetchFor(), channel: false });
  try {
    await client.guest();
    server.answer("/v1/ws-tickets", () => json(403, { error: "forbidden", error_description: "no tickets for you" }));
    const err = await client.wsTicket().then(() => assert.fail("resolved"), (e) => e);
    assert.ok(err instanceof SessiondError);
    assert.equal(err.code, "forbidden");
    assert.equal(err.status, 403);
  } finally {
    client.dispose();
  }
});
